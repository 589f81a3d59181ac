// The protocol edge over Streamable HTTP, as the wire shows it: the 2026-07-28 revision (server/discover, the
// Mcp-Method/Mcp-Name headers checked against the body, cache hints with private scope on lists a caller acts
// on, OpenTelemetry trace context in _meta) beside 2025-era requests, and the edge's refusals (JSON-RPC batches,
// a foreign Host, control characters in text arguments), plus the schema answer's retailer-made names marked as data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { unmarkData } from '../src/analytics/format.js';
import { SEARCH_COLUMNS } from '../src/analytics/product-search.js';
import { STORES } from '../src/data/stores.js';
import { CACHE_HINTS } from '../src/protocol/server.js';
import type { TestDatabase } from './support/databases.js';
import { connectHttp, startEmbeddedHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';

const SEATTLE = STORES[0]!;
const MODERN = '2026-07-28';
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'zava-mcp-tests', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

interface Answer {
  status: number;
  body: { result?: Record<string, unknown>; error?: { code: number; message: string } };
}

/** One JSON-RPC POST; `modern` adds the 2026-07-28 envelope and the standard headers (unless `headers` overrides them). */
async function rpc(url: string, method: string, params: Record<string, unknown>, options: { modern?: boolean; headers?: Record<string, string>; id?: number } = {}): Promise<Answer> {
  const modern = options.modern ?? true;
  const standard: Record<string, string> = modern ? { 'mcp-protocol-version': MODERN, 'mcp-method': method } : {};
  const name = typeof params.name === 'string' ? params.name : undefined;
  if (modern && name !== undefined) standard['mcp-name'] = name;
  const body = { jsonrpc: '2.0', id: options.id ?? 1, method, params: modern ? { ...params, _meta: { ...ENVELOPE, ...((params._meta as object) ?? {}) } } : params };
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-rls-user-id': SEATTLE.managerId, ...standard, ...options.headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as Answer['body'] };
}

/** A POST with a Host header of our choosing (fetch does not let one set Host). */
function postWithHost(url: string, host: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { host, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the MCP protocol edge over Streamable HTTP', () => {
  let t: TestDatabase;
  let http: HttpServerProcess;
  let client: Client;

  before(async () => {
    ({ t, http } = await startEmbeddedHttpServer());
    client = await connectHttp(http.url, SEATTLE.managerId, 'v2');
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await http?.stop();
    await t?.cleanup();
  });

  test('server/discover: the v2 client settles on 2026-07-28; the answer names the server, its tools capability and a public cache hint', async () => {
    assert.equal(client.era(), 'modern');
    const discover = await rpc(http.url, 'server/discover', {});
    assert.equal(discover.status, 200, JSON.stringify(discover.body));
    const result = discover.body.result!;
    assert.ok((result.supportedVersions as string[]).includes(MODERN), JSON.stringify(result));
    assert.ok((result.capabilities as Record<string, unknown>).tools);
    assert.match(String(result.instructions), /Zava Retail/);
    assert.equal((result._meta as Record<string, { name: string }>)['io.modelcontextprotocol/serverInfo']!.name, 'zava-mcp');
    assert.equal(result.cacheScope, 'public');
    assert.equal(result.ttlMs, CACHE_HINTS['server/discover'].ttlMs);
  });

  test('tools/list carries a private cache hint on 2026-07-28 and none on 2025-era requests', async () => {
    const modern = await rpc(http.url, 'tools/list', {});
    assert.equal(modern.status, 200);
    assert.equal(modern.body.result!.cacheScope, 'private');
    assert.equal(modern.body.result!.ttlMs, 300_000);
    assert.equal((modern.body.result!.tools as unknown[]).length, 10, "the four compatible tools and the six typed ones");
    const legacy = await rpc(http.url, 'tools/list', {}, { modern: false });
    assert.equal(legacy.status, 200);
    assert.equal(legacy.body.result!.cacheScope, undefined);
    assert.equal(legacy.body.result!.ttlMs, undefined);
    assert.equal((legacy.body.result!.tools as unknown[]).length, 10);
  });

  test('Mcp-Method and Mcp-Name are required on 2026-07-28 requests and must agree with the body', async () => {
    const args = { name: 'get_current_utc_date', arguments: {} };
    const ok = await rpc(http.url, 'tools/call', args);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.match(String((ok.body.result!.content as Array<{ text: string }>)[0]!.text), /^\d{4}-\d{2}-\d{2}T/);
    for (const [what, headers] of [
      ['no Mcp-Method', { 'mcp-method': '' }],
      ['a wrong Mcp-Method', { 'mcp-method': 'tools/list' }],
      ['no Mcp-Name', { 'mcp-name': '' }],
      ['a wrong Mcp-Name', { 'mcp-name': 'execute_sales_query' }],
    ] as const) {
      const refused = await rpc(http.url, 'tools/call', args, { headers });
      assert.equal(refused.status, 400, `${what}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error?.code, -32020, what);
    }
  });

  test('OpenTelemetry trace context in _meta is accepted', async () => {
    const traced = await rpc(http.url, 'tools/call', {
      name: 'execute_sales_query',
      arguments: { postgresql_query: 'SELECT count(*) AS n FROM retail.stores' },
      _meta: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'zava=1', baggage: 'tenant=zava' },
    });
    assert.equal(traced.status, 200, JSON.stringify(traced.body));
    assert.notEqual(traced.body.result!.isError, true, JSON.stringify(traced.body.result));
    assert.deepEqual((traced.body.result!.structuredContent as { r: unknown[] }).r, [[STORES.length]]);
  });

  test('JSON-RPC batches are refused with a clear error, whatever they hold', async () => {
    for (const batch of [
      [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'ping' }],
      [{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_current_utc_date', arguments: {} } }],
      [],
    ]) {
      const response = await fetch(http.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(batch),
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as Answer['body'];
      assert.equal(body.error?.code, -32600);
      assert.match(body.error!.message, /batches are not supported.*2025-06-18/);
    }
  });

  test('bound to loopback: a foreign Host is refused (DNS rebinding); loopback names pass', async () => {
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const port = new URL(http.url).port;
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `192.168.1.10:${port}`]) {
      const refused = await postWithHost(http.url, host, ping);
      assert.equal(refused.status, 403, host);
      assert.match(JSON.parse(refused.body).error.message, /forbidden: Invalid Host/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost']) {
      const allowed = await postWithHost(http.url, host, ping);
      assert.equal(allowed.status, 200, `${host}: ${allowed.body}`);
    }
  });

  test('control characters in text arguments are refused at the edge with a clear message', async () => {
    for (const [name, args] of [
      ['semantic_search_products', { query_description: 'paint\u0000buckets' }],
      ['semantic_search_products', { query_description: 'paint\u001bbuckets' }],
      ['execute_sales_query', { postgresql_query: 'SELECT 1\u0000' }],
      ['get_multiple_table_schemas', { table_names: ['retail.stores\u0000'] }],
    ] as const) {
      const result = await client.callTool({ name, arguments: args });
      assert.equal(result.isError, true, `${name} ${JSON.stringify(args)}`);
      assert.match(textOf(result), /invalid arguments for .*must not contain control characters/s);
    }
    // Tabs and line breaks are ordinary text.
    const multiline = await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: 'SELECT\t1 AS one\r\nFROM retail.stores\nLIMIT 1' } });
    assert.notEqual(multiline.isError, true, textOf(multiline));
    const search = await client.callTool({ name: 'semantic_search_products', arguments: { query_description: 'paint\tbuckets' } });
    assert.notEqual(search.isError, true, textOf(search));
    assert.deepEqual((search.structuredContent as { c: string[] }).c.slice(0, 3), SEARCH_COLUMNS.slice(0, 3));
  });

  test('the schema answer prints store, category and type names only between per-call data markers', async () => {
    const result = await client.callTool({ name: 'get_multiple_table_schemas', arguments: { table_names: ['retail.stores', 'retail.categories', 'retail.product_types'] } });
    assert.notEqual(result.isError, true, textOf(result));
    const text = textOf(result);
    const json = unmarkData(text);
    assert.ok(json !== undefined, 'the values are marked as data');
    const values = JSON.parse(json) as Record<string, Record<string, string[]>>;
    assert.ok(values['retail.stores']!.store_name!.includes(SEATTLE.name));
    assert.ok(values['retail.categories']!.category_name!.length >= 5);
    assert.ok(values['retail.product_types']!.type_name!.length >= 10);
    const outside = text.replace(/<(zava-data-[0-9a-f]{16})>[\s\S]*<\/\1>/, '');
    assert.doesNotMatch(outside, new RegExp(SEATTLE.name), 'no retailer-made name outside the markers');
    for (const name of values['retail.categories']!.category_name!) assert.ok(!outside.includes(`"${name}"`), name);
    assert.match(outside, /Table retail\.stores/, 'the structure stays readable text');
    assert.match(outside, /store_name/);
  });
});
