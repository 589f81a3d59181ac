// OpenTelemetry traces as a collector receives them: a local OTLP/HTTP endpoint of the test's own takes what a
// spawned server exports when OTEL_EXPORTER_OTLP_ENDPOINT is set — a span per tool call, with the cache lookup, the guard, the
// statement and the query embedding as its children — and the call's log lines carry its trace id. Without the
// setting nothing is exported and no log line has a trace id.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { connectHttp, query, startHttpServer, type HttpServerProcess } from './mcp-harness.js';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
}

describe('OpenTelemetry traces', () => {
  let t: TestDatabase;
  let collector: Server;
  let endpoint: string;
  const spans: OtlpSpan[] = [];
  let http: HttpServerProcess;

  before(async () => {
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const payload = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
          for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', () => resolve()));
    endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
    t = await createTestDatabase('embedded', { customers: 40, open: false }); // the spawned server opens it
    http = await startHttpServer(t.flags, { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' });
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
    await new Promise((resolve) => collector?.close(resolve));
  });

  test('a span per tool call with the guard, statement and embedding spans as its children; log lines carry the trace id', { timeout: 120_000 }, async () => {
    const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
    try {
      assert.equal((await query(client, 'SELECT count(*) FROM retail.stores')).isError, false);
      const search = await client.callTool({ name: 'semantic_search_products', arguments: { query_description: 'containers for paint', max_rows: 3 } });
      assert.equal(search.isError ?? false, false);
      assert.equal((await query(client, 'DELETE FROM retail.stores')).isError, true, 'refused by the guard, which logs it');
    } finally {
      await client.close();
    }
    const deadline = Date.now() + 15_000;
    const named = (name: string) => spans.filter((s) => s.name === name);
    while ((named('tools/call execute_sales_query').length < 2 || named('tools/call semantic_search_products').length === 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const call = named('tools/call execute_sales_query')[0];
    assert.ok(call, `spans: ${spans.map((s) => s.name).join(', ')}`);
    const children = spans.filter((s) => s.parentSpanId === call.spanId).map((s) => s.name).sort();
    assert.deepEqual(children, ['cache', 'db.statement', 'sql.guard'], 'the result cache lookup (a miss) has a span of its own');
    for (const child of spans.filter((s) => s.parentSpanId === call.spanId)) assert.equal(child.traceId, call.traceId);
    const searchCall = named('tools/call semantic_search_products')[0]!;
    const searchChildren = spans.filter((s) => s.parentSpanId === searchCall.spanId).map((s) => s.name);
    assert.ok(searchChildren.includes('embedding.query') && searchChildren.includes('db.statement'), searchChildren.join(', '));
    assert.doesNotMatch(JSON.stringify(spans), /SELECT count/, 'no SQL text in any span');
    // The refused call's log line carries the trace id of its span.
    const refusal = http
      .stderr()
      .split('\n')
      .filter((l) => l.includes('query refused by the SQL guard'))
      .map((l) => JSON.parse(l) as { trace_id?: string });
    const refusedCall = named('tools/call execute_sales_query').find((s) => !spans.some((c) => c.parentSpanId === s.spanId && c.name === 'db.statement'));
    assert.ok(refusedCall && refusal.length === 1 && refusal[0]!.trace_id === refusedCall.traceId, 'the log line names the trace of its call');
  });
});

describe('without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  test('nothing is exported and log lines have no trace id', { timeout: 120_000 }, async () => {
    const t = await createTestDatabase('embedded', { customers: 40, open: false }); // the spawned server opens it
    const http = await startHttpServer(t.flags);
    try {
      const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
      await query(client, 'DELETE FROM retail.stores');
      await client.close();
      assert.ok(http.stderr().includes('query refused by the SQL guard'));
      assert.doesNotMatch(http.stderr(), /trace_id/);
      assert.doesNotMatch(http.stderr(), /OpenTelemetry/);
    } finally {
      await http.stop();
      await t.cleanup();
    }
  });
});
