// Polling for a condition that another process or thread makes true in its own time (a server logs, a standby
// replays, a reader reopens). One helper for every suite: the failure names what was awaited.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** How long to wait before the test fails (default 20 s). */
  readonly ms?: number;
  /** Pause between checks (default 50 ms). */
  readonly everyMs?: number;
  /** Count a check that throws as "not yet" (a service that is down answers with errors), instead of failing. */
  readonly ignoreErrors?: boolean;
}

/**
 * Checks `check` until it holds and resolves with the milliseconds that took; fails the test with `what` (a
 * function is called at the failure, for a message with the state at that moment) when `ms` pass first.
 */
export async function waitFor(what: string | (() => string), check: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<number> {
  const { ms = 20_000, everyMs = 50, ignoreErrors = false } = options;
  const started = Date.now();
  for (;;) {
    const holds = ignoreErrors ? await Promise.resolve().then(check).catch(() => false) : await check();
    if (holds) return Date.now() - started;
    if (Date.now() - started >= ms) assert.fail(`${typeof what === 'function' ? what() : what}: not within ${ms} ms`);
    await sleep(everyMs);
  }
}
