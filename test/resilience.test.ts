// What a tool call does when PostgreSQL fails under it: transient failures retried, a breaker that answers at
// once while the database is down, and a server that stays up and serves again within seconds of the database
// returning (a cluster of this test's own, stopped and started; the shared service is never touched).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseResilience, isTransient } from '../src/db/resilience.js';
import { CallCancelledError, DatabaseUnavailableError, QueryError, QueryTimeoutError } from '../src/infra/errors.js';
import { STORES } from '../src/data/stores.js';
import { serverUnavailableReason } from './support/databases.js';
import { OwnCluster } from './support/cluster.js';
import { connectHttp, query, startHttpServer, type Client, type HttpServerProcess } from './mcp-harness.js';

const unavailable = () => new DatabaseUnavailableError('the connection to the database was lost');

describe('retries and the circuit breaker', () => {
  test('only failures of the connection or server are transient', () => {
    assert.equal(isTransient(unavailable()), true);
    assert.equal(isTransient(new QueryError('could not serialize access', { sqlState: '40001' })), true);
    assert.equal(isTransient(new QueryError('syntax error', { sqlState: '42601' })), false, 'a bad query is not retried');
    assert.equal(isTransient(new QueryTimeoutError(1000)), false);
    assert.equal(isTransient(new CallCancelledError()), false);
  });

  test('a transient failure is retried and the call succeeds; a query error is not retried', async () => {
    const resilience = new DatabaseResilience({ failuresToOpen: 10 });
    let attempts = 0;
    const started = performance.now();
    assert.equal(await resilience.execute(async () => (++attempts < 3 ? Promise.reject(unavailable()) : 'rows')), 'rows');
    assert.equal(attempts, 3);
    assert.ok(performance.now() - started >= 145, 'the attempts are spaced out (at least 50 ms, then 100 ms)');
    attempts = 0;
    await assert.rejects(resilience.execute(async () => (attempts++, Promise.reject(new QueryError('no such column', { sqlState: '42703' })))), QueryError);
    assert.equal(attempts, 1);
  });

  test('calls failing in a row open the breaker, which then answers at once; a probe that succeeds closes it', async () => {
    const states: string[] = [];
    const resilience = new DatabaseResilience({ failuresToOpen: 3, halfOpenAfterMs: 300, maxAttempts: 1, onStateChange: (s) => states.push(s) });
    for (let i = 0; i < 3; i++) await assert.rejects(resilience.execute(() => Promise.reject(unavailable())), DatabaseUnavailableError);
    assert.equal(resilience.state, 'open');
    let ran = false;
    const started = performance.now();
    await assert.rejects(
      resilience.execute(async () => ((ran = true), 'rows')),
      (e: unknown) => e instanceof DatabaseUnavailableError && /refused at once.*Try again in 1 s/.test(e.message),
    );
    assert.ok(performance.now() - started < 20, 'no waiting while open');
    assert.equal(ran, false, 'the work never ran');
    // Query errors while open do not count either way; after the pause one probe runs and closes it.
    await new Promise((resolve) => setTimeout(resolve, 350));
    assert.equal(await resilience.execute(async () => 'rows'), 'rows');
    assert.equal(resilience.state, 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'closed']);
  });

  test('a cancelled call stops retrying', async () => {
    const resilience = new DatabaseResilience({ failuresToOpen: 10, maxAttempts: 5 });
    const abort = new AbortController();
    let attempts = 0;
    const pending = resilience.execute(async () => {
      attempts++;
      if (attempts === 1) setTimeout(() => abort.abort(), 10);
      throw unavailable();
    }, abort.signal);
    await assert.rejects(pending, CallCancelledError);
    assert.equal(attempts, 1, 'no attempt starts after the cancellation, even when its wait was already under way');
  });
});

describe('a server whose PostgreSQL stops and starts again (own cluster)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let cluster: OwnCluster;
  let http: HttpServerProcess;
  let client: Client;
  const SEATTLE = STORES[0]!;
  const COUNT = 'SELECT count(*) AS n FROM retail.orders';

  before(async () => {
    cluster = await OwnCluster.create();
    await cluster.seed();
    http = await startHttpServer(['--database-url', cluster.url()], { ZAVA_POOL_CONNECT_TIMEOUT_MS: '1000' });
    client = await connectHttp(http.url, SEATTLE.managerId);
  });
  after(async () => {
    await client?.close().catch(() => undefined);
    await http?.stop();
    cluster?.destroy();
  });

  test('calls fail fast with DATABASE_UNAVAILABLE while it is down, the process stays up, and service resumes within 5 s of its return', { timeout: 120_000 }, async () => {
    const before_ = await query(client, COUNT);
    assert.equal(before_.isError, false, JSON.stringify(before_.result));
    cluster.stop('fast');
    // Down: every call answers with an error (retried first, then refused at once by the open breaker).
    const outage: number[] = [];
    for (let i = 0; i < 8; i++) {
      const started = performance.now();
      const answer = await query(client, COUNT);
      outage.push(performance.now() - started);
      assert.equal(answer.isError, true);
      assert.match(answer.result.err!, /database/i);
    }
    assert.ok(Math.min(...outage.slice(-3)) < 200, `refused at once once the breaker is open: ${outage.map((ms) => Math.round(ms)).join(', ')} ms`);
    assert.equal(http.process.exitCode, null, 'the server is still running');
    const health = await fetch(new URL('/health', http.url));
    assert.equal(health.status, 200, 'alive');
    const ready = await fetch(new URL('/ready', http.url));
    assert.equal(ready.status, 503, 'not ready while the database is down');

    cluster.start();
    const back = Date.now();
    let recoveredAfter: number | undefined;
    while (Date.now() - back < 15_000) {
      const answer = await query(client, COUNT);
      if (!answer.isError) {
        recoveredAfter = Date.now() - back;
        assert.deepEqual(answer.result.r, before_.result.r);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(recoveredAfter !== undefined && recoveredAfter <= 5_000, `served again ${recoveredAfter} ms after the database returned`);
  });
});
