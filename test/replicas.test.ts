// Three `zava-mcp serve` replicas on one PostgreSQL database and one Redis, behind a real nginx (Debian's package,
// run as this test's own process with a generated configuration on free loopback ports, the directives of
// deploy/nginx/zava-mcp.conf): calls spread round robin over the replicas, rate limits count across them, and a
// replica killed with SIGKILL costs no call that had not reached it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { STORES } from '../src/data/stores.js';
import { createTestDatabase, REQUIRE_SERVICES, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { NGINX_MISSING, startNginx, type Nginx } from './support/nginx.js';
import { connectHttp, query, startHttpServer, type HttpServerProcess } from './mcp-harness.js';

const skip = (await serverUnavailableReason()) ?? (NGINX_MISSING && !REQUIRE_SERVICES ? 'nginx is not installed (Debian package nginx)' : false);

async function callsServed(http: HttpServerProcess): Promise<number> {
  const text = await (await fetch(new URL('/metrics', http.url))).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('zava_tool_calls_total{') && line.includes('tool="execute_sales_query"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('replicas behind nginx', { skip }, () => {
  let t: TestDatabase;
  let nginx: Nginx;
  let url: string;
  const replicas: HttpServerProcess[] = [];
  const prefix = `zava-test-${process.pid}-${Date.now()}`;

  before(async () => {
    t = await createTestDatabase('server', { customers: 40 });
    for (let i = 0; i < 3; i++) {
      replicas.push(
        await startHttpServer(t.flags, { REDIS_URL: 'redis://127.0.0.1:6379', ZAVA_RATE_LIMIT_PREFIX: prefix, ZAVA_RATE_LIMIT_PER_MINUTE: '12', ZAVA_RATE_LIMIT_BURST: '0' }),
      );
    }
    nginx = await startNginx(replicas.map((r) => new URL(r.url).host));
    url = nginx.url;
  });
  after(async () => {
    await nginx?.stop();
    await Promise.all(replicas.map((r) => r.stop()));
    await t?.cleanup();
  });

  test('calls spread over the three replicas; the rate limit counts across them', { timeout: 120_000 }, async () => {
    const before_ = await Promise.all(replicas.map(callsServed));
    const client = await connectHttp(url, STORES[0]!.managerId);
    try {
      const answers = [];
      for (let i = 0; i < 14; i++) answers.push(await query(client, 'SELECT count(*) FROM retail.orders'));
      const ok = answers.filter((a) => !a.isError);
      assert.equal(ok.length, 12, 'twelve calls a minute for this identity, counted across every replica');
      const limited = answers.filter((a) => a.isError);
      assert.ok(limited.every((a) => a.result.code === 'RATE_LIMITED'), JSON.stringify(limited.map((a) => a.result)));
      assert.equal(new Set(ok.map((a) => JSON.stringify(a.result.r))).size, 1, 'every replica gives the same answer');
    } finally {
      await client.close();
    }
    const served = (await Promise.all(replicas.map(callsServed))).map((n, i) => n - before_[i]!);
    assert.equal(served.reduce((a, b) => a + b, 0), 14);
    assert.ok(served.every((n) => n >= 3), `round robin: ${served.join(', ')}`);
  });

  test('a replica killed with SIGKILL: the calls after it go to the others, none fails', { timeout: 120_000 }, async () => {
    const client = await connectHttp(url, STORES[1]!.managerId);
    try {
      assert.equal((await query(client, 'SELECT 1 AS one')).isError, false);
      replicas[0]!.process.kill('SIGKILL');
      await new Promise((resolve) => replicas[0]!.process.once('exit', resolve));
      const after_ = [];
      for (let i = 0; i < 9; i++) after_.push(await query(client, 'SELECT 1 AS one'));
      assert.deepEqual(after_.map((a) => a.isError), Array(9).fill(false), 'nginx skips the dead replica (connection refused is retried)');
    } finally {
      await client.close();
    }
  });
});
