// Malformed tool arguments (issue 12: "every error a client sees carries a stable code … and is counted by that
// code"): the SDK no longer refuses them before the pipeline, so each one is a tool error with VALIDATION_ERROR in
// the tool's own error shape, counted in /metrics and recorded in the audit trail; tools/list still advertises
// each tool's real input schema. Both SDK generations, over HTTP and stdio, against a spawned server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { NO_EMBEDDING_ENV } from './support/tokens.js';
import { CLIENT_KINDS, connectHttp, connectStdio, startHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';

/** Calls with arguments their tool's schema refuses, and how each tool shapes its refusal. */
const MALFORMED: ReadonlyArray<{ tool: string; args: Record<string, unknown>; shape: 'compact' | 'typed' | 'structured'; mentions: RegExp }> = [
  { tool: 'execute_sales_query', args: { postgresql_query: 42 }, shape: 'compact', mentions: /postgresql_query/ },
  { tool: 'execute_sales_query', args: {}, shape: 'compact', mentions: /postgresql_query/ },
  { tool: 'semantic_search_products', args: { query_description: 'paint', max_rows: 1000 }, shape: 'compact', mentions: /max_rows/ },
  { tool: 'get_multiple_table_schemas', args: { table_names: 'retail.stores' }, shape: 'structured', mentions: /table_names/ },
  { tool: 'sales_summary', args: { period: 'last_quarter', limit: 'many' }, shape: 'typed', mentions: /limit/ },
  { tool: 'get_current_utc_date', args: { table_names: Array.from({ length: 1200 }, (_, i) => i) }, shape: 'structured', mentions: /more than 1000 elements/ },
];

/** The stable code of a tool error, wherever its tool puts it. */
function codeOf(result: { structuredContent?: unknown; _meta?: Record<string, unknown> | undefined }): unknown {
  return (result.structuredContent as { code?: unknown } | undefined)?.code ?? result._meta?.['zava/code'];
}

async function callMalformed(client: Client): Promise<void> {
  for (const call of MALFORMED) {
    const result = await client.callTool({ name: call.tool, arguments: call.args });
    const where = `${client.kind} ${call.tool} ${JSON.stringify(call.args).slice(0, 60)}`;
    assert.equal(result.isError, true, where);
    assert.equal(codeOf(result), 'VALIDATION_ERROR', `${where}: ${JSON.stringify(result).slice(0, 300)}`);
    assert.match(textOf(result), /invalid arguments for/, where);
    assert.match(textOf(result), call.mentions, where);
    if (call.shape === 'compact') {
      const compact = result.structuredContent as { err?: string; n?: number; r?: unknown[] };
      assert.match(compact.err ?? '', call.mentions, where);
      assert.deepEqual([compact.n, compact.r], [0, []], where);
    }
    if (call.shape === 'typed') assert.equal(result.structuredContent, undefined, `${where}: a typed tool's error has no structuredContent`);
  }
}

/** One value of a Prometheus counter line. */
function counter(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((label) => l.includes(label)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('malformed tool arguments get VALIDATION_ERROR, a metric and an audit row (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  let http: HttpServerProcess;
  before(async () => {
    t = await createTestDatabase('server', { customers: 40, embeddings: false });
    http = await startHttpServer(t.flags, { ...NO_EMBEDDING_ENV, ZAVA_AUDIT_QUEUE_LIMIT: '1000' });
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
  });

  test('tools/list still shows each real input schema', async () => {
    for (const kind of CLIENT_KINDS) {
      const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID, kind);
      try {
        const tools = new Map((await client.listTools()).tools.map((tool) => [tool.name, tool.inputSchema as { required?: string[]; properties?: Record<string, { type?: string; maximum?: number }> }]));
        assert.deepEqual(tools.get('execute_sales_query')?.required, ['postgresql_query'], kind);
        assert.equal(tools.get('execute_sales_query')?.properties?.['postgresql_query']?.type, 'string', kind);
        assert.equal(tools.get('semantic_search_products')?.properties?.['max_rows']?.maximum, 100, kind);
        assert.equal(tools.get('get_multiple_table_schemas')?.properties?.['table_names']?.type, 'array', kind);
      } finally {
        await client.close();
      }
    }
  });

  test('over HTTP, both SDK generations: each malformed call is coded, counted by code, and audited', { timeout: 60_000 }, async () => {
    const metrics = async () => (await fetch(new URL('/metrics', http.url))).text();
    const before_ = await metrics();
    for (const kind of CLIENT_KINDS) {
      const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID, kind);
      try {
        await callMalformed(client);
        // Well-formed arguments still run, with the schema's defaults filled in.
        const good = await client.callTool({ name: 'semantic_search_products', arguments: { query_description: 'paint' } });
        assert.notEqual(codeOf(good), 'VALIDATION_ERROR', textOf(good));
        const sql = await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: 'SELECT 1 AS one' } });
        assert.equal(sql.isError, undefined, textOf(sql));
      } finally {
        await client.close();
      }
    }
    const after_ = await metrics();
    for (const tool of new Set(MALFORMED.map((call) => call.tool))) {
      const expected = MALFORMED.filter((call) => call.tool === tool).length * CLIENT_KINDS.length;
      const labels = `tool="${tool}",code="VALIDATION_ERROR"`;
      assert.equal(counter(after_, 'zava_tool_calls_total', labels) - counter(before_, 'zava_tool_calls_total', labels), expected, labels);
    }
    // The audit queue is flushed on a clean stop; then the rows are read as the owner.
    assert.equal(await http.stop(), 0);
    const { rows } = await t.db.ownerQuery(`SELECT tool, outcome, error_class, refusal FROM zava_audit.tool_calls WHERE error_class = 'input' ORDER BY id`);
    assert.equal(rows.length, MALFORMED.length * CLIENT_KINDS.length, JSON.stringify(rows));
    for (const [i, row] of rows.entries()) {
      const call = MALFORMED[i % MALFORMED.length]!;
      assert.equal(row[0], call.tool);
      assert.equal(row[1], 'refused');
      assert.match(String(row[3]), call.mentions);
    }
  });

  test('over stdio, both SDK generations: the same coded refusals', { timeout: 60_000 }, async () => {
    for (const kind of CLIENT_KINDS) {
      const stdio = await connectStdio(t.flags, HEAD_OFFICE_USER_ID, { ...NO_EMBEDDING_ENV, ZAVA_AUDIT: 'off' }, kind);
      try {
        await callMalformed(stdio.client);
      } finally {
        await stdio.close();
      }
    }
  });
});
