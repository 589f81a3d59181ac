// Redis stopped mid-run (issue 12, Tests: "Redis stopped mid-run (your own redis-server on a free port)"): a
// spawned server counts its per-tool and edge limits in a Redis of this test's own; the Redis is killed while
// calls flow and started again. Calls keep succeeding (the limits count in the process meanwhile), each limiter
// says so in one log line (not one per call), /ready names Redis as failing while it is gone (the issue's
// readiness rule: "Redis reachable when configured"), and within seconds of its return the limits count in Redis
// again and /ready reports Redis ok. Revocation does not use Redis (it reads the database), so it is untouched here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { serverUnavailableReason } from './support/databases.js';
import { serverWithOwnRedis, type OwnRedis } from './support/redis.js';
import { connectHttp, query, type Client, type HttpServerProcess } from './mcp-harness.js';

const occurrences = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).length;

describe('Redis stopped and started mid-run (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let redis: OwnRedis;
  let http: HttpServerProcess;
  let client: Client;
  let cleanup: () => Promise<void> = async () => undefined;
  const prefix = `zava-outage-${process.pid}-${Date.now()}`;
  before(async () => {
    ({ redis, http, cleanup } = await serverWithOwnRedis({ ZAVA_RATE_LIMIT_PREFIX: prefix }));
    client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await cleanup();
  });

  // The embeddings component fails on purpose here (no provider: NO_EMBEDDING_ENV), so /ready is 503 throughout;
  // what this suite reads is the Redis component, and that the database stays ok.
  const redisStatus = async () => {
    const response = await fetch(new URL('/ready', http.url));
    const body = (await response.json()) as { components: Record<string, { status: string; detail?: string }> };
    return { status: response.status, redis: body.components['redis']?.status, database: body.components['database']?.status };
  };

  test('calls keep succeeding without Redis, one log line per limiter, /ready names Redis, all back within seconds', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 3; i++) assert.equal((await query(client, 'SELECT 1 AS one')).isError, false);
    assert.ok((await redis.keys(`${prefix}:m`)) > 0, 'the per-tool limit counts in Redis');
    assert.ok((await redis.keys(`${prefix}:edge`)) > 0, 'the edge limit counts in Redis');
    assert.equal((await redisStatus()).redis, 'ok');

    await redis.stop();
    for (let i = 0; i < 20; i++) {
      const answer = await query(client, `SELECT ${i} AS n`);
      assert.equal(answer.isError, false, answer.text);
      assert.deepEqual(answer.result.r, [[i]]);
    }
    // /ready's answer is shared for a second (health.ts), so the one before the stop may still be served: poll.
    let down = await redisStatus();
    for (const deadline = Date.now() + 5_000; down.redis !== 'failing' && Date.now() < deadline; down = await redisStatus()) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(down.status, 503);
    assert.equal(down.redis, 'failing');
    assert.equal(down.database, 'ok', 'the database is fine');
    const log = http.stderr();
    assert.equal(occurrences(log, /rate limits: Redis unavailable/), 1, 'one line for the per-tool limits, not one per call');
    assert.equal(occurrences(log, /HTTP request limit: Redis unavailable/), 1, 'one line for the edge limit');

    await redis.start(); // empty: no counts survive, as after a crash
    const back = Date.now();
    let readyAfter: number | undefined;
    let countingAfter: number | undefined;
    while (Date.now() - back < 15_000 && (readyAfter === undefined || countingAfter === undefined)) {
      assert.equal((await query(client, 'SELECT 1 AS one')).isError, false);
      if (countingAfter === undefined && (await redis.keys(`${prefix}:m`)) > 0 && (await redis.keys(`${prefix}:edge`)) > 0) countingAfter = Date.now() - back;
      if (readyAfter === undefined && (await redisStatus()).redis === 'ok') readyAfter = Date.now() - back;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(countingAfter !== undefined && countingAfter <= 5_000, `limits counted in Redis again ${countingAfter} ms after it returned`);
    assert.ok(readyAfter !== undefined && readyAfter <= 5_000, `/ready's Redis component ok again ${readyAfter} ms after it returned`);
    assert.match(http.stderr(), /rate limits: Redis is back/);
  });
});
