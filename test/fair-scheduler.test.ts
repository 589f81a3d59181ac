// The fair scheduler on its own: per-identity share, round robin between identities, wait timeout, queue
// bound and cancellation. The backends' hostile-load suites drive it through real databases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FairScheduler } from '../src/db/fair-scheduler.js';
import { CallCancelledError, QueueTimeoutError, TooManyCallsError } from '../src/infra/errors.js';

/** A piece of work that runs until released, recording when it started. */
function gate(log: string[], name: string): { work: () => Promise<string>; release: () => void } {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    work: async () => {
      log.push(name);
      await done;
      return name;
    },
    release: () => release(),
  };
}

test('one identity runs at most its share; another identity starts at once beside it', async () => {
  const scheduler = new FairScheduler({ capacity: 4, perKey: 2, maxWaitMs: 5_000, maxQueuedPerKey: 10 });
  const log: string[] = [];
  const attacker = Array.from({ length: 6 }, (_, i) => gate(log, `a${i}`));
  const runs = attacker.map((g) => scheduler.run('attacker', g.work));
  await sleep(5);
  assert.deepEqual(log, ['a0', 'a1'], 'only two of the attacker calls run');
  const victim = gate(log, 'v0');
  const victimRun = scheduler.run('victim', victim.work);
  await sleep(5);
  assert.deepEqual(log, ['a0', 'a1', 'v0'], 'the victim does not wait behind the attacker queue');
  victim.release();
  assert.equal(await victimRun, 'v0');
  for (const g of attacker) g.release();
  assert.deepEqual(await Promise.all(runs), ['a0', 'a1', 'a2', 'a3', 'a4', 'a5']);
  assert.deepEqual(scheduler.stats, { running: 0, waiting: 0, identitiesWaiting: 0 });
});

test('freed slots go to waiting identities in turn', async () => {
  const scheduler = new FairScheduler({ capacity: 1, perKey: 1, maxWaitMs: 5_000, maxQueuedPerKey: 10 });
  const log: string[] = [];
  const first = gate(log, 'a0');
  const running = scheduler.run('a', first.work);
  const gates = ['a1', 'a2', 'b0', 'b1', 'c0'].map((name) => gate(log, name));
  const runs = gates.map((g) => scheduler.run(g === gates[2] || g === gates[3] ? 'b' : g === gates[4] ? 'c' : 'a', g.work));
  for (const g of gates) g.release();
  first.release();
  await Promise.all([running, ...runs]);
  // a0 runs; then a, b and c alternate although a queued first.
  assert.deepEqual(log, ['a0', 'a1', 'b0', 'c0', 'a2', 'b1']);
});

test('a call that waits too long fails with its own error, and a flood is refused at the queue bound', async () => {
  const scheduler = new FairScheduler({ capacity: 1, perKey: 1, maxWaitMs: 50, maxQueuedPerKey: 2 });
  const log: string[] = [];
  const blocker = gate(log, 'x');
  const running = scheduler.run('a', blocker.work);
  const waiting = [scheduler.run('a', async () => 'late'), scheduler.run('a', async () => 'late')];
  await assert.rejects(scheduler.run('a', async () => 'refused'), TooManyCallsError);
  for (const call of waiting) await assert.rejects(call, (error: unknown) => error instanceof QueueTimeoutError && /busy/.test(error.message));
  blocker.release();
  await running;
  assert.equal(await scheduler.run('a', async () => 'after'), 'after', 'the scheduler serves again once free');
});

test('an aborted signal takes a waiting call out of the queue at once', async () => {
  const scheduler = new FairScheduler({ capacity: 1, perKey: 1, maxWaitMs: 5_000, maxQueuedPerKey: 5 });
  const log: string[] = [];
  const blocker = gate(log, 'x');
  const running = scheduler.run('a', blocker.work);
  const controller = new AbortController();
  let ran = false;
  const waiting = scheduler.run('b', async () => (ran = true), controller.signal);
  controller.abort();
  await assert.rejects(waiting, CallCancelledError);
  assert.equal(scheduler.stats.waiting, 0);
  blocker.release();
  await running;
  assert.equal(ran, false);
  await assert.rejects(scheduler.run('b', async () => 1, controller.signal), CallCancelledError, 'an already-aborted call never starts');
});

test('a failing call frees its slot', async () => {
  const scheduler = new FairScheduler({ capacity: 1, perKey: 1, maxWaitMs: 1_000, maxQueuedPerKey: 5 });
  await assert.rejects(scheduler.run('a', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await scheduler.run('a', async () => 'ok'), 'ok');
});
