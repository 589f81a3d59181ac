// The result cache across processes and faults (issues 12 and 15), on the server backend:
// - two replicas sharing one database and one Redis of this test's own: an answer stored by one is served by the
//   other, and `zava-mcp db seed --replace` run beside them makes both stop serving the old answer;
// - that Redis stopped mid-run: calls keep succeeding, one log line per replica, and the shared tier comes back
//   by itself when Redis returns;
// - a hot standby with replay paused (replication lag): a data change on the primary makes the newest version
//   one the standby has not replayed, and what the standby computes meanwhile is returned but never stored under
//   the new version; once replay resumes the new answer is stored and served.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { CACHE_META } from '../src/infra/cache/result-cache.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { OwnCluster } from './support/cluster.js';
import { OwnRedis } from './support/redis.js';
import { runCli } from './support/cli.js';
import { NO_EMBEDDING_ENV } from './support/tokens.js';
import { connectHttp, startHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';
import { waitFor } from './support/wait.js';

const skip = (await serverUnavailableReason()) ?? false;

async function ask(client: Client, sql: string): Promise<{ rows: unknown[][]; tier: string }> {
  const result = (await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: sql } })) as CallToolResult;
  assert.notEqual(result.isError, true, textOf(result));
  return { rows: (result.structuredContent as { r: unknown[][] }).r, tier: (result._meta?.[CACHE_META] as { tier?: string } | undefined)?.tier ?? 'none' };
}

async function metric(server: HttpServerProcess, name: string): Promise<number> {
  const text = await (await fetch(new URL('/metrics', server.url))).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** A check that throws (a service that is down) counts as "not yet". */
const patiently = (ms = 20_000) => ({ ms, everyMs: 200, ignoreErrors: true });

const COUNT_SQL = 'SELECT count(*)::int AS customers FROM retail.customers';
const countLines = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).length;

describe('two replicas, one database, one Redis: sharing, invalidation by a seed, Redis stopped mid-run', { skip }, () => {
  let t: TestDatabase;
  let redis: OwnRedis;
  let a: HttpServerProcess;
  let b: HttpServerProcess;
  let ca: Client;
  let cb: Client;
  const prefix = `zava-test-cache-${randomBytes(4).toString('hex')}`;

  before(async () => {
    t = await createTestDatabase('server', { customers: 40, embeddings: false });
    await t.db.close();
    redis = await OwnRedis.start();
    const env = { ...NO_EMBEDDING_ENV, REDIS_URL: redis.url, ZAVA_CACHE_PREFIX: prefix, ZAVA_RATE_LIMIT_PER_MINUTE: '0' };
    [a, b] = await Promise.all([startHttpServer(t.flags, env), startHttpServer(t.flags, env)]);
    [ca, cb] = await Promise.all([connectHttp(a.url, HEAD_OFFICE_USER_ID), connectHttp(b.url, HEAD_OFFICE_USER_ID)]);
  });
  after(async () => {
    await ca?.close().catch(() => undefined);
    await cb?.close().catch(() => undefined);
    await a?.stop();
    await b?.stop();
    await redis?.stop();
    await t?.cleanup();
  });

  test('an answer stored by one replica is served by the other; `db seed --replace` beside them invalidates it for both', { timeout: 120_000 }, async () => {
    const first = await ask(ca, COUNT_SQL);
    assert.equal(first.tier, 'none');
    assert.ok((await redis.keyNames(`${prefix}:*`)).length >= 1, 'stored in Redis');
    const shared = await ask(cb, COUNT_SQL);
    assert.deepEqual(shared, { rows: first.rows, tier: 'redis' }, 'the other replica answers from Redis');
    const seeded = await runCli(['db', 'seed', ...t.flags, '--customers', '25', '--seed', '3', '--end-date', '2026-06-30', '--replace'], NO_EMBEDDING_ENV);
    // The seed commits its data, then embeds the catalog, which this test's provider refuses at once (exit 1 after the data).
    assert.match(seeded.stderr, /embedding request to Ollama .* failed/, seeded.stderr);
    const truth = await ownerCount(t.config.databaseUrl!);
    assert.notDeepEqual([[truth]], first.rows, 'the seed changed the answer');
    // Each replica learns of the seed from its notification (milliseconds after the commit, long before the CLI ends).
    for (const client of [ca, cb]) {
      const now = await ask(client, COUNT_SQL);
      assert.deepEqual(now.rows, [[truth]], 'no replica serves the old answer');
    }
    assert.equal((await ask(ca, COUNT_SQL)).tier, 'memory');
    assert.ok((await metric(a, 'zava_cache_hits_total')) >= 1);
    assert.ok((await metric(a, 'zava_cache_misses_total')) >= 2);
  });

  test('Redis stopped mid-run: calls still succeed, one log line per replica; the shared tier returns by itself', { timeout: 120_000 }, async () => {
    await redis.stop();
    const warned = /result cache: Redis unavailable/;
    for (let i = 0; i < 6; i++) {
      for (const client of [ca, cb]) {
        const answer = await ask(client, `SELECT store_id, count(*)::int FROM retail.orders WHERE store_id > ${i % 3} GROUP BY 1 ORDER BY 1`);
        assert.ok(answer.rows.length >= 1);
      }
    }
    // The line comes when a replica's Redis client reports the lost connection, which may be just after these calls.
    await waitFor('each replica logs the outage', async () => [a, b].every((server) => countLines(server.stderr(), warned) >= 1), patiently(10_000));
    for (const server of [a, b]) assert.equal(countLines(server.stderr(), warned), 1, server.stderr().slice(-2000));
    assert.ok((await metric(a, 'zava_cache_redis_errors_total')) >= 1);
    await redis.start(); // the same port, empty
    await waitFor('the replicas reconnect', async () => /Redis answers again/.test(a.stderr()) && /Redis answers again/.test(b.stderr()), patiently());
    const sql = 'SELECT store_id, sum(quantity)::int AS units FROM retail.order_items GROUP BY 1 ORDER BY 1';
    const stored = await ask(ca, sql);
    await waitFor('the answer reaches the new Redis', async () => (await redis.keyNames(`${prefix}:*`)).length >= 1, patiently(5_000));
    assert.deepEqual(await ask(cb, sql), { rows: stored.rows, tier: 'redis' });
    for (const server of [a, b]) assert.equal(countLines(server.stderr(), warned), 1, 'still one line');
    const detail = (await (await fetch(new URL('/health?detail=1', a.url))).json()) as { cache: { hitRatio: number; redis: string } };
    assert.equal(detail.cache.redis, 'up');
    assert.ok(detail.cache.hitRatio > 0 && detail.cache.hitRatio < 1, JSON.stringify(detail.cache));
  });
});

async function ownerCount(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query('SELECT count(*)::int AS n FROM zava_data.customers')).rows[0].n as number;
  } finally {
    await client.end();
  }
}

describe('replication lag: a standby that has not replayed the newest data version', { skip }, () => {
  let primary: OwnCluster;
  let standby: OwnCluster;
  let http: HttpServerProcess;
  let client: Client;
  const prefix = `zava-test-lag-${randomBytes(4).toString('hex')}`;
  const sqlOn = async (url: string, text: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(text)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  const version = async (url: string) => Number((await sqlOn(url, 'SELECT version FROM zava_cache.data_version'))[0]!.version);
  const customers = async (url: string) => Number((await sqlOn(url, 'SELECT count(*) AS n FROM zava_data.customers'))[0]!.n);

  before(async () => {
    primary = await OwnCluster.create();
    await primary.seed();
    standby = await OwnCluster.standbyOf(primary);
    const expected = await version(primary.url());
    await waitFor('the standby replays the seed', async () => (await version(standby.url())) === expected, patiently());
    http = await startHttpServer(['--database-url', primary.url()], {
      ...NO_EMBEDDING_ENV,
      ZAVA_READ_REPLICA_URLS: standby.url('postgres', 'zava_query'),
      REDIS_URL: 'redis://127.0.0.1:6379',
      ZAVA_CACHE_PREFIX: prefix,
      ZAVA_RATE_LIMIT_PER_MINUTE: '0',
    });
    client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await http?.stop();
    await sqlOn(standby.url(), 'SELECT pg_wal_replay_resume()').catch(() => undefined);
    standby?.destroy();
    primary?.destroy();
    const redis = new Redis('redis://127.0.0.1:6379');
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  test('what the lagging standby computes is returned, never stored under the new version; after replay the new answer is', { timeout: 120_000 }, async () => {
    const redisKeys = async (v: number) => {
      const redis = new Redis('redis://127.0.0.1:6379');
      try {
        return await redis.keys(`${prefix}:v${v}:*`);
      } finally {
        redis.disconnect();
      }
    };
    const old = await version(primary.url());
    const before_ = await ask(client, COUNT_SQL);
    assert.deepEqual(before_.rows, [[await customers(primary.url())]]);
    assert.equal((await redisKeys(old)).length, 1, 'stored under the current version');

    await sqlOn(standby.url(), 'SELECT pg_wal_replay_pause()');
    await sqlOn(primary.url(), `INSERT INTO zava_data.customers (first_name, last_name, email, primary_store_id) VALUES ('Lag', 'Test', 'lag@example.com', 1)`);
    const bumped = await version(primary.url());
    assert.ok(bumped > old);
    await waitFor('replay is paused', async () => (await sqlOn(standby.url(), 'SELECT pg_get_wal_replay_pause_state() AS s'))[0]!.s === 'paused', patiently());
    assert.equal(await version(standby.url()), old, 'the standby has not replayed the bump');

    const stale0 = await metric(http, 'zava_cache_stale_answers_total');
    for (let i = 0; i < 3; i++) {
      const lagging = await ask(client, COUNT_SQL);
      assert.equal(lagging.tier, 'none', 'the old entry is not served under the new version');
      assert.deepEqual(lagging.rows, before_.rows, "the standby's answer (it lags): returned to the caller");
    }
    assert.deepEqual(await redisKeys(bumped), [], 'nothing stored under the new version while the standby lags');
    assert.equal((await metric(http, 'zava_cache_stale_answers_total')) - stale0, 3);

    await sqlOn(standby.url(), 'SELECT pg_wal_replay_resume()');
    await waitFor('the standby replays the change', async () => (await version(standby.url())) === bumped, patiently());
    const fresh = await ask(client, COUNT_SQL);
    assert.deepEqual(fresh.rows, [[Number(before_.rows[0]![0]) + 1]]);
    assert.equal((await redisKeys(bumped)).length, 1, 'stored under the new version once computed at it');
    assert.deepEqual(await ask(client, COUNT_SQL), { rows: fresh.rows, tier: 'memory' });
  });
});
