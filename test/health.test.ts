// Liveness and readiness as a load balancer and a container health check see them: /health answers without the
// database, /ready names each component with its status and latency and turns 503 when one fails (the schema
// behind or ahead of the server, products without embeddings), and `zava-mcp health` exits accordingly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { readinessUrl } from '../src/cli/health.js';
import { Readiness } from '../src/infra/health.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { runCli as run } from './support/cli.js';
import { startHttpServer, type HttpServerProcess } from './mcp-harness.js';

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
    http = await startHttpServer(t.flags);
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

  test('the health command exits 1 when nothing answers', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const cli = await run(['health', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, /not answering \(ECONNREFUSED\)/);
  });
});
