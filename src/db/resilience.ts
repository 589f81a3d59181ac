// What a tool call does when the PostgreSQL server fails under it (cockatiel's retry and circuit breaker).
//
// - Transient failures — the connection refused, reset or lost, the server shutting down or starting up, too
//   many connections, a serialization failure or deadlock of a read — are retried: a call's work is read-only,
//   so running it again is safe. Attempts are few and close together (exponential backoff with jitter, well
//   under a second in all), inside the call's own time budget.
// - After FAILURES_TO_OPEN failed calls in a row the breaker opens: calls are answered at once with
//   DATABASE_UNAVAILABLE and a retry hint instead of each waiting out connection attempts, so a database outage
//   costs callers no time and the database no connection storm when it returns. After HALF_OPEN_AFTER_MS one
//   call probes; its success closes the breaker, so service resumes within seconds of the database returning.
// - Everything else (a query's own error, a timeout, a cancellation) passes through untouched and counts as
//   neither failure nor success for the breaker: a bad query must not open it for everyone.
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  circuitBreaker,
  halfJitterGenerator,
  handleWhen,
  retry,
  wrap,
} from 'cockatiel';
import { CallCancelledError, DatabaseUnavailableError, QueryError } from '../infra/errors.js';

export const FAILURES_TO_OPEN = 5;
export const HALF_OPEN_AFTER_MS = 2_000;
const MAX_ATTEMPTS = 3;

/** SQLSTATEs of a read worth running again: serialization failure, deadlock, conflict with recovery on a standby. */
const RETRYABLE_QUERY_STATES = new Set(['40001', '40P01']);

/** Whether a failed read may succeed if run again (the connection or server, not the query, failed). */
export function isTransient(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  return error instanceof QueryError && RETRYABLE_QUERY_STATES.has(String(error.sqlState));
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface ResilienceOptions {
  readonly failuresToOpen?: number;
  readonly halfOpenAfterMs?: number;
  readonly maxAttempts?: number;
  /** Told when the breaker opens, closes or half-opens (for the log and metrics). */
  readonly onStateChange?: (state: BreakerState) => void;
}

export class DatabaseResilience {
  private readonly breaker;
  private readonly policy;
  private readonly halfOpenAfterMs: number;

  constructor(options: ResilienceOptions = {}) {
    this.halfOpenAfterMs = options.halfOpenAfterMs ?? HALF_OPEN_AFTER_MS;
    this.breaker = circuitBreaker(handleWhen(isTransient), {
      halfOpenAfter: this.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(options.failuresToOpen ?? FAILURES_TO_OPEN),
    });
    const retries = retry(handleWhen(isTransient), {
      maxAttempts: (options.maxAttempts ?? MAX_ATTEMPTS) - 1,
      // Half jitter: each wait is between half and all of 100, 200, 400 ms. Cockatiel's default (decorrelated
      // jitter) can wait under 5 ms, which is a retry storm against a database that is restarting, not a backoff.
      backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 800, generator: halfJitterGenerator }),
    });
    // Retries outside the breaker: each attempt counts, and an open breaker (not transient) ends the retries.
    this.policy = wrap(retries, this.breaker);
    if (options.onStateChange) {
      const notify = options.onStateChange;
      this.breaker.onStateChange((state) => notify(stateName(state)));
    }
  }

  get state(): BreakerState {
    return stateName(this.breaker.state);
  }

  /** Runs a read with retries behind the breaker; an open breaker answers at once. */
  async execute<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      // Cockatiel's retry does not look at the signal after its wait: a call cancelled during the backoff must
      // not start another attempt.
      return await this.policy.execute(() => (signal?.aborted ? Promise.reject(new CallCancelledError()) : work()), signal);
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw new DatabaseUnavailableError(
          `the database is unavailable: ${FAILURES_TO_OPEN}+ calls in a row could not reach it, so calls are refused at once for now. Try again in ${Math.ceil(this.halfOpenAfterMs / 1000)} s.`,
        );
      }
      if (error instanceof TaskCancelledError) throw new CallCancelledError();
      throw error;
    }
  }
}

function stateName(state: CircuitState): BreakerState {
  switch (state) {
    case CircuitState.Closed:
      return 'closed';
    case CircuitState.HalfOpen:
      return 'half-open';
    default:
      return 'open';
  }
}
