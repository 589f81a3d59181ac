// Three `zava-mcp serve` replicas on one PostgreSQL database and one Redis, behind a real nginx (Debian's package,
// run as this test's own process with a generated configuration on free loopback ports, the directives of
// deploy/nginx/zava-mcp.conf): calls spread round robin over the replicas, rate limits count across them, and a
// replica killed with SIGKILL costs no call: the calls it held are sent once more, to another replica.
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

/** Pairs (a, b) of 1..100000 × 1..200 with a + b ≤ i (the rows the slow call's filter drops). */
function countAtMost(i: number): number {
  let pairs = 0;
  for (let b = 1; b <= 200; b++) pairs += Math.max(0, Math.min(100_000, i - b));
  return pairs;
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

  test('a replica killed with SIGKILL under calls: the calls it held are answered by another replica', { timeout: 120_000 }, async () => {
    // Slow enough to be in flight on every replica when one dies (each call its own constant: no shared work).
    const slow = (i: number) => `SELECT count(*) AS n FROM generate_series(1, 100000) a, generate_series(1, 200) b WHERE a + b > ${i}`;
    const clients = await Promise.all(Array.from({ length: 6 }, () => connectHttp(url, STORES[2]!.managerId)));
    try {
      const before_ = await Promise.all(replicas.map(callsServed));
      const calls = clients.map((client, i) => query(client, slow(i)));
      // Every call running in PostgreSQL (so each replica holds its share of them) before one replica dies.
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 20))) {
        const active = await t.db.ownerQuery(
          `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%generate_series(1, 200) b WHERE%'`,
        );
        if (Number(active.rows[0]![0]) >= 6) break;
      }
      const victim = replicas[1]!;
      const heldByVictim = (await callsServed(victim)) === before_[1]; // counted when finished: none finished yet
      victim.process.kill('SIGKILL');
      const answers = await Promise.all(calls);
      assert.deepEqual(answers.map((a) => a.isError), Array(6).fill(false), JSON.stringify(answers.filter((a) => a.isError).map((a) => a.result)));
      answers.forEach((answer, i) => assert.equal(Number(answer.result.r[0]![0]), 20_000_000 - countAtMost(i), `call ${i}`));
      assert.ok(heldByVictim, 'the killed replica had not finished any of its calls');
      assert.match(await nginx.errorLog(), /upstream prematurely closed|reset by peer/, 'nginx saw the replica die under calls and sent them on');
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
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
