// Liveness and readiness as a load balancer and a container health check see them: /health answers without the
// database, /ready names each component with its status and latency and turns 503 when one fails (the schema
// behind or ahead of the server, products without embeddings), and `zava-mcp health` exits accordingly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from './support/cluster.js';
import { readinessUrl } from '../src/cli/health.js';
import { Readiness, redisCheck } from '../src/infra/health.js';
import { SlowQueryLog, type SlowQueryEvent } from '../src/db/slow-queries.js';
import { ServerMetrics } from '../src/infra/metrics.js';
import { loadConfig } from '../src/infra/config.js';
import { startMetricsServer } from '../src/protocol/metrics-http.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { runCli as run } from './support/cli.js';
import { connectHttp, query, startHttpServer, type HttpServerProcess } from './mcp-harness.js';
import { STORES } from '../src/data/stores.js';

const SEATTLE = STORES[0]!;

/** A series' value in Prometheus text, whatever the order of its labels (`name{a="1",b="2"}`); 0 when absent. */
function value(text: string, series: string): number {
  const parse = (s: string) => {
    const match = /^([a-z_:][\w:]*)(?:\{(.*)\})?$/.exec(s);
    const labels = [...(match?.[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}=${m[2]}`).sort();
    return `${match?.[1]}|${labels.join(',')}`;
  };
  const wanted = parse(series);
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ');
    if (space > 0 && !line.startsWith('#') && parse(line.slice(0, space)) === wanted) return Number(line.slice(space + 1));
  }
  return 0;
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('readiness checks', () => {
  test('components run side by side, each within its time limit; a failure or a hang is named, not thrown', async () => {
    const readiness = new Readiness(
      new Map([
        ['fine', async () => 'all good'],
        ['broken', async () => Promise.reject(new Error('refused'))],
        ['stuck', () => new Promise<string>(() => undefined)],
      ]),
      200,
    );
    const started = Date.now();
    const report = await readiness.check();
    assert.ok(Date.now() - started < 1_000, 'the hang costs its time limit, not more');
    assert.equal(report.status, 'not ready');
    assert.equal(report.components.fine!.status, 'ok');
    assert.equal(report.components.fine!.detail, 'all good');
    assert.deepEqual([report.components.broken!.status, report.components.broken!.detail], ['failing', 'refused']);
    assert.deepEqual([report.components.stuck!.status, report.components.stuck!.detail], ['failing', 'no answer within 200 ms']);
    assert.equal(await readiness.check(), await readiness.check(), 'answers within a second are shared');
  });

  test('Redis as a component: PONG from the service, a clear failure within the limit from a port nobody serves', async () => {
    const up = redisCheck('redis://127.0.0.1:6379');
    const port = await freePort(); // nothing listens there
    const down = redisCheck(`redis://127.0.0.1:${port}`);
    try {
      const report = await new Readiness(new Map([['redis', up], ['gone', down]]), 1_500).check();
      assert.deepEqual([report.components.redis!.status, report.components.redis!.detail], ['ok', 'PONG']);
      assert.equal(report.components.gone!.status, 'failing');
      assert.ok(report.components.gone!.latencyMs < 1_600);
      // Checked again: one connection each, no listener piling up.
      for (let i = 0; i < 12; i++) await up(new AbortController().signal);
    } finally {
      up.close();
      down.close();
    }
  });

  test('the health command finds /ready from a base URL, the /mcp URL or the configuration', () => {
    assert.equal(readinessUrl({ host: '127.0.0.1', port: 8000 }, 'http://10.0.0.5:9000/mcp').href, 'http://10.0.0.5:9000/ready');
    assert.equal(readinessUrl({ host: '0.0.0.0', port: 8123 }).href, 'http://127.0.0.1:8123/ready');
    assert.equal(readinessUrl({ host: '::1', port: 8123 }).href, 'http://[::1]:8123/ready');
    assert.throws(() => readinessUrl({ host: '127.0.0.1', port: 1 }, 'ftp://x'), /http\(s\) URL/);
  });
});

describe('/health and /ready on a running server', async () => {
  const skip = (await serverUnavailableReason()) ?? false;
  let t: TestDatabase;
  let http: HttpServerProcess;
  let base: string;
  before(async () => {
    if (skip) return;
    t = await createTestDatabase('server', { customers: 40 });
    http = await startHttpServer(t.flags, { ZAVA_SLOW_QUERY_MS: '5' });
    base = new URL(http.url).origin;
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
  });

  test('ready: every component ok with its latency; health alive', { skip }, async () => {
    const health = await getJson(`${base}/health`);
    assert.deepEqual(health, { status: 200, body: { status: 'ok' } });
    const ready = await getJson(`${base}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
    assert.deepEqual(Object.keys(ready.body.components).sort(), ['database', 'embeddings']);
    for (const component of Object.values(ready.body.components) as { status: string; latencyMs: number }[]) {
      assert.equal(component.status, 'ok');
      assert.ok(component.latencyMs >= 0 && component.latencyMs < 2_000);
    }
    assert.match(ready.body.components.embeddings.detail, /^608 products embedded with zava-local-/);
    const cli = await run(['health', '--url', http.url]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /: ready\n\s+database\s+ok\s+[\d.]+ ms\s+schema version \d+/);
    // The operators' view on the command line (dev mode: loopback, no token asked).
    const detail = await run(['health', '--url', http.url, '--detail']);
    assert.equal(detail.code, 0, detail.stdout + detail.stderr);
    const shown = JSON.parse(/\ndetail:\n([\s\S]*)$/.exec(detail.stdout)![1]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(shown).filter((k) => ['slowQueries', 'cache'].includes(k)).sort(), ['cache', 'slowQueries']);
    assert.equal((shown.slowQueries as { thresholdMs: number }).thresholdMs, 5, 'the server sets ZAVA_SLOW_QUERY_MS=5');
  });

  test('not ready, naming the component, when products lack embeddings or the schema is ahead; ready again after', { skip }, async () => {
    const saved = await t.db.ownerQuery('SELECT count(*) FROM retail.product_description_embeddings WHERE product_id = 1');
    assert.equal(Number(saved.rows[0]![0]), 1);
    await t.db.withAdminTransaction(async (session) => {
      await session.exec('CREATE TABLE zava_meta.saved_embedding AS SELECT * FROM retail.product_description_embeddings WHERE product_id = 1');
      await session.exec('DELETE FROM retail.product_description_embeddings WHERE product_id = 1');
      await session.exec(`INSERT INTO zava_meta.schema_migrations (version, name) VALUES (9999, 'from a newer server')`);
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the answer cache
      const ready = await getJson(`${base}/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, 'not ready');
      assert.equal(ready.body.components.embeddings.status, 'failing');
      assert.match(ready.body.components.embeddings.detail, /1 of 608 products have no zava-local-\S+ embedding/);
      assert.match(ready.body.components.database.detail, /schema at version 9999 is newer than this server/);
      const cli = await run(['health', '--url', base]);
      assert.equal(cli.code, 1);
      assert.match(cli.stdout, /not ready\n[\s\S]*embeddings\s+failing/);
      assert.equal((await fetch(`${base}/health`)).status, 200, 'still alive');
    } finally {
      await t.db.withAdminTransaction(async (session) => {
        await session.exec('INSERT INTO retail.product_description_embeddings SELECT * FROM zava_meta.saved_embedding');
        await session.exec('DROP TABLE zava_meta.saved_embedding');
        await session.exec('DELETE FROM zava_meta.schema_migrations WHERE version = 9999');
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    assert.equal((await getJson(`${base}/ready`)).status, 200);
  });

  test('a slow statement is logged normalized (no literal reaches the log) and listed in the operators\' view', { skip }, async () => {
    const client = await connectHttp(http.url, SEATTLE.managerId);
    try {
      const slow = `SELECT count(*) FROM generate_series(1, 90000) g, retail.customers c WHERE c.email <> 'secret.person@example.com' AND g % 97 = c.customer_id % 97`;
      const answer = await query(client, slow);
      assert.equal(answer.isError, false, JSON.stringify(answer.result));
    } finally {
      await client.close();
    }
    const deadline = Date.now() + 5_000;
    while (!/slow query/.test(http.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const line = http.stderr().split('\n').find((l) => l.includes('slow query') && l.includes('generate_series'));
    assert.ok(line, http.stderr().slice(-2000));
    const event = JSON.parse(line) as Record<string, unknown>;
    assert.equal(event.level, 40, 'warn');
    assert.equal(event.role, 'store_manager');
    assert.equal(event.stores, 1);
    assert.equal(event.outcome, 'ok');
    assert.ok(Number(event.ms) >= 5);
    assert.match(String(event.statement), /c\.email <> \$\d+/);
    assert.doesNotMatch(http.stderr(), /secret\.person@example\.com/, 'the literal never reaches the log');
    const detail = await getJson(`${base}/health?detail=1`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.slowQueries.thresholdMs, 5);
    const listed = (detail.body.slowQueries.slowest as { fingerprint: string; statement: string; count: number; maxMs: number }[]).find((q) => q.fingerprint === event.fingerprint);
    assert.ok(listed && listed.count >= 1 && listed.maxMs >= 5, JSON.stringify(detail.body.slowQueries));
    assert.equal(detail.body.breaker, 'closed');
    assert.ok(detail.body.poolMax >= 1 && detail.body.pools.query.total >= 1);
    assert.deepEqual((await getJson(`${base}/health`)).body, { status: 'ok' }, 'no detail unless asked');
  });

  test('GET /metrics: Prometheus text with exact statement counts after a known set of calls, pools, breaker, process', { skip }, async () => {
    const scrape = async () => {
      const response = await fetch(`${base}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return response.text();
    };
    const series = 'zava_db_statement_duration_seconds_count{role="head_office",outcome="ok",backend="server"}';
    const before_ = value(await scrape(), series);
    const client = await connectHttp(http.url, '00000000-0000-0000-0000-000000000000');
    try {
      for (const sql of ['SELECT 1 AS one', 'SELECT count(*) FROM retail.stores', 'SELECT store_name FROM retail.stores ORDER BY 1 LIMIT 2']) {
        assert.equal((await query(client, sql)).isError, false);
      }
      assert.equal((await query(client, 'SELECT no_such_column FROM retail.stores')).isError, true);
    } finally {
      await client.close();
    }
    const after_ = await scrape();
    assert.equal(value(after_, series) - before_, 3, 'three statements answered as head office');
    assert.ok(value(after_, 'zava_db_statement_duration_seconds_count{role="head_office",outcome="failed",backend="server"}') >= 1);
    assert.ok(value(after_, 'zava_db_pool_total{pool="query",backend="server"}') >= 1, 'pool gauge');
    assert.equal(value(after_, 'zava_db_circuit_breaker_state{backend="server"}'), 0, 'breaker closed');
    assert.match(after_, /^zava_process_cpu_user_seconds_total\{backend="server"\} [\d.e+-]+$/m, 'process metrics');
    assert.match(after_, /^zava_audit_queue_depth\{backend="server"\} \d+$/m, 'the audit queue');
    assert.equal(value(after_, 'zava_tool_calls_total{tool="execute_sales_query",code="OK",backend="server"}') >= 3, true, 'tool calls counted by the pipeline');
    assert.doesNotMatch(after_, /SELECT|retail\.stores|00000000-0000/, 'no SQL or identity in any label');
  });

  test('ZAVA_METRICS=off: nothing is counted, /metrics is a 404, calls are answered as before', { skip }, async () => {
    const quiet = await startHttpServer(t.flags, { ZAVA_METRICS: 'off' });
    try {
      const origin = new URL(quiet.url).origin;
      const client = await connectHttp(quiet.url, '00000000-0000-0000-0000-000000000000');
      try {
        const answer = await query(client, 'SELECT count(*) AS n FROM retail.stores');
        assert.equal(answer.isError, false, JSON.stringify(answer.result));
      } finally {
        await client.close();
      }
      assert.equal((await fetch(`${origin}/metrics`)).status, 404);
      assert.equal((await getJson(`${origin}/health`)).status, 200);
    } finally {
      await quiet.stop();
    }
    assert.throws(() => loadConfig({}, { ZAVA_METRICS: 'maybe' }), /ZAVA_METRICS must be on or off/);
  });

  test('the health command exits 1 when nothing answers', async () => {
    const port = await freePort(); // nothing listens there
    const cli = await run(['health', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, /not answering \(ECONNREFUSED\)/);
  });
});

describe('the slow-query record', () => {
  const identity = { userId: '00000000-0000-0000-0000-000000000000', role: 'head_office', storeIds: 'all' } as const;

  test('counts slow statements per fingerprint, the slowest first; fast ones are not recorded', async () => {
    const events: SlowQueryEvent[] = [];
    const log = new SlowQueryLog(100, (event) => events.push(event));
    await new Promise((resolve) => setTimeout(resolve, 200)); // the parser module loads
    log.observe(`SELECT * FROM retail.customers WHERE email = 'a@b.c'`, 150, 1, identity, false);
    log.observe(`SELECT * FROM retail.customers WHERE email = 'x@y.z'`, 300, 0, identity, false);
    log.observe('SELECT 1', 99, 1, identity, false);
    log.observe('SELECT count(*) FROM retail.orders', 120, null, identity, true);
    assert.equal(events.length, 3);
    assert.equal(events[0]!.fingerprint, events[1]!.fingerprint, 'other constants, one fingerprint');
    assert.equal(events[0]!.statement, 'SELECT * FROM retail.customers WHERE email = $1');
    assert.deepEqual(events.map((e) => e.outcome), ['ok', 'ok', 'failed']);
    const top = log.top();
    assert.deepEqual(top.map((q) => [q.count, q.maxMs, q.totalMs]), [[2, 300, 450], [1, 120, 120]]);
  });

  test('an unparsable statement is recorded by hash, its text never kept', async () => {
    const events: SlowQueryEvent[] = [];
    const log = new SlowQueryLog(0, (event) => events.push(event));
    await new Promise((resolve) => setTimeout(resolve, 200));
    log.observe(`SELEC broken 'secret@example.com'`, 5, null, identity, true);
    assert.match(events[0]!.fingerprint, /^text:[0-9a-f]{8}$/);
    assert.doesNotMatch(JSON.stringify(events), /secret@example\.com/);
  });
});

describe('metrics on a port of their own', () => {
  test('serves /metrics and nothing else', async () => {
    const metrics = new ServerMetrics('embedded');
    metrics.toolCall({ tool: 'execute_sales_query', code: 'OK', durationMs: 12 });
    metrics.toolCall({ tool: 'execute_sales_query', code: 'RATE_LIMITED', durationMs: 1 });
    const server = await startMetricsServer(metrics, '127.0.0.1', 0);
    try {
      const text = await (await fetch(server.url)).text();
      assert.equal(value(text, 'zava_tool_calls_total{tool="execute_sales_query",code="OK",backend="embedded"}'), 1);
      assert.equal(value(text, 'zava_rate_limited_total{tool="execute_sales_query",backend="embedded"}'), 1);
      assert.equal(value(text, 'zava_tool_call_duration_seconds_count{tool="execute_sales_query",backend="embedded"}'), 2);
      assert.equal((await fetch(new URL('/mcp', server.url))).status, 404);
    } finally {
      await server.close();
    }
  });
});
