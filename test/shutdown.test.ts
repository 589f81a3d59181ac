// A graceful shutdown as a load balancer sees it (issue 12: "stop taking new work when /ready fails, and close
// Redis and exporters cleanly"): on SIGTERM /ready turns 503 at once and names the shutdown, requests that still
// arrive are served for ZAVA_SHUTDOWN_DELAY_MS, then the server stops accepting, drains and exits 0 having closed
// its Redis connections (the limits' and readiness's) without a warning.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { serverUnavailableReason } from './support/databases.js';
import { serverWithOwnRedis, type OwnRedis } from './support/redis.js';
import { connectHttp, query, type HttpServerProcess } from './mcp-harness.js';

const DELAY_MS = 3_000;

/** Connections Redis holds from clients named by nobody but the server (this test's own probe excluded). */
async function serverConnections(redis: OwnRedis): Promise<number> {
  const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  try {
    const list = (await probe.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes('addr=') && !line.includes('cmd=client')).length;
  } finally {
    probe.disconnect();
  }
}

describe('SIGTERM: /ready first, then no new work, then a clean exit (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let redis: OwnRedis;
  let http: HttpServerProcess;
  let cleanup: () => Promise<void> = async () => undefined;
  before(async () => {
    ({ redis, http, cleanup } = await serverWithOwnRedis({ ZAVA_SHUTDOWN_DELAY_MS: String(DELAY_MS) }));
  });
  after(() => cleanup());

  test('withdraws from /ready, serves during the delay, refuses afterwards, exits 0 with Redis closed', { timeout: 60_000 }, async () => {
    const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
    assert.equal((await query(client, 'SELECT 1 AS one')).isError, false);
    // No shutdown component before the signal (the embeddings component fails on purpose: no provider here).
    const before_ = (await (await fetch(new URL('/ready', http.url))).json()) as { components: Record<string, { status: string }> };
    assert.equal(before_.components['shutdown'], undefined);
    assert.equal(before_.components['database']?.status, 'ok');
    assert.ok((await serverConnections(redis)) >= 3, 'per-tool limits, edge limit and readiness each hold a connection');

    const signalled = Date.now();
    http.process.kill('SIGTERM');
    let withdrawnAfter: number | undefined;
    while (Date.now() - signalled < DELAY_MS) {
      const ready = await fetch(new URL('/ready', http.url));
      const body = (await ready.json()) as { status: string; components: Record<string, { status: string; detail?: string }> };
      if (body.components['shutdown']) {
        withdrawnAfter = Date.now() - signalled;
        assert.equal(ready.status, 503);
        assert.equal(body.status, 'not ready');
        assert.match(body.components['shutdown']?.detail ?? '', /shutting down/);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(withdrawnAfter !== undefined && withdrawnAfter < DELAY_MS / 2, `/ready 503 ${withdrawnAfter} ms after SIGTERM`);
    // Still serving what arrives during the delay.
    const during = await query(client, 'SELECT 2 AS two');
    assert.equal(during.isError, false, during.text);
    assert.ok(Date.now() - signalled < DELAY_MS, 'that call was answered within the delay');
    // After the delay: no new work (503 with Retry-After while draining, or the port closed).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, DELAY_MS - (Date.now() - signalled)) + 100));
    const late = await fetch(http.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then(
      (response) => response.status,
      () => 'refused',
    );
    assert.ok(late === 503 || late === 'refused', `after the delay: ${late}`);
    const child = http.process;
    const code = child.exitCode ?? (await new Promise<number | null>((resolve) => child.once('exit', (exit) => resolve(exit))));
    assert.equal(code, 0, `a clean exit: ${http.stderr().slice(-500)}`);
    await client.close().catch(() => undefined);
    assert.equal(await serverConnections(redis), 0, 'no connection left behind');
    const log = http.stderr();
    assert.match(log, /zava-mcp stopped/);
    assert.doesNotMatch(log, /Redis unavailable/, 'Redis connections were closed, not lost');
  });
});
