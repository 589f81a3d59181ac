// Fair sharing of the database between identities.
//
// The pool (server backend) or the reader workers (embedded) are a handful of slots. Without a scheduler, one
// identity sending as many slow queries as there are slots (one POST can carry many calls) holds every slot and
// every other manager's call waits until it fails. So:
// - each identity runs at most `perKey` calls at once (well below the capacity), the rest of its calls wait;
// - a freed slot goes to the identities with waiting calls in turn (round robin), never to the one that sent
//   the most, so a flood from one identity delays another identity's call by at most one statement;
// - a waiting call gives up after `maxWaitMs` with its own error (QueueTimeoutError), and an identity may have
//   at most `maxQueuedPerKey` calls waiting (TooManyCallsError at once), so a flood cannot grow memory;
// - a waiting call whose signal aborts (client gone) leaves the queue at once.
// The slot is held until `work` has settled, which for the backends means until the connection or worker is
// free again.
import { CallCancelledError, QueueTimeoutError, TooManyCallsError } from '../infra/errors.js';

export interface FairSchedulerOptions {
  /** Calls that may run at once in total (the pool size, or the number of workers). */
  readonly capacity: number;
  /** Calls one identity may run at once. */
  readonly perKey: number;
  /** Longest a call waits for its turn before it fails. */
  readonly maxWaitMs: number;
  /** Calls one identity may have waiting; more are refused at once. */
  readonly maxQueuedPerKey: number;
}

interface Waiter {
  readonly start: () => void;
  readonly fail: (error: Error) => void;
}

export interface SchedulerStats {
  readonly running: number;
  readonly waiting: number;
  readonly identitiesWaiting: number;
}

export class FairScheduler {
  private running = 0;
  private readonly runningByKey = new Map<string, number>();
  /** Waiting calls per identity, in arrival order; the map's order is the round-robin order of identities. */
  private readonly queues = new Map<string, Waiter[]>();
  private waiting = 0;

  constructor(private readonly options: FairSchedulerOptions) {
    if (options.capacity < 1 || options.perKey < 1) throw new Error('scheduler capacity and per-identity share must be at least 1');
  }

  get stats(): SchedulerStats {
    return { running: this.running, waiting: this.waiting, identitiesWaiting: this.queues.size };
  }

  /** Runs `work` when `key` has a free share and a slot is free; see the file comment for the rules. */
  async run<T>(key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new CallCancelledError();
    if (!this.canStart(key) || this.queues.size > 0) await this.wait(key, signal);
    else this.take(key);
    try {
      return await work();
    } finally {
      this.release(key);
    }
  }

  private canStart(key: string): boolean {
    return this.running < this.options.capacity && (this.runningByKey.get(key) ?? 0) < Math.min(this.options.perKey, this.options.capacity);
  }

  private take(key: string): void {
    this.running++;
    this.runningByKey.set(key, (this.runningByKey.get(key) ?? 0) + 1);
  }

  private release(key: string): void {
    this.running--;
    const mine = (this.runningByKey.get(key) ?? 1) - 1;
    if (mine === 0) this.runningByKey.delete(key);
    else this.runningByKey.set(key, mine);
    this.dispatch();
  }

  private wait(key: string, signal: AbortSignal | undefined): Promise<void> {
    const queue = this.queues.get(key) ?? [];
    if (queue.length >= this.options.maxQueuedPerKey) {
      throw new TooManyCallsError(
        `too many calls at once: ${this.runningByKey.get(key) ?? 0} of yours are running and ${queue.length} are waiting. Wait for answers before sending more.`,
      );
    }
    const started = Date.now();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const list = this.queues.get(key);
        const index = list?.indexOf(waiter) ?? -1;
        if (list && index >= 0) {
          list.splice(index, 1);
          this.waiting--;
          if (list.length === 0) this.queues.delete(key);
        }
      };
      const waiter: Waiter = {
        start: () => {
          leave();
          this.take(key);
          resolve();
        },
        fail: (error) => {
          leave();
          reject(error);
        },
      };
      const onAbort = () => waiter.fail(new CallCancelledError());
      timer = setTimeout(() => waiter.fail(new QueueTimeoutError(Date.now() - started)), this.options.maxWaitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
      this.waiting++;
      if (!this.queues.has(key)) this.queues.set(key, queue);
      this.dispatch();
    });
  }

  /** Hands free slots to waiting identities in turn: the first in the ring that may start goes, then moves to the back. */
  private dispatch(): void {
    while (this.running < this.options.capacity && this.queues.size > 0) {
      let started = false;
      for (const [key, queue] of this.queues) {
        if (!this.canStart(key)) continue;
        // Move this identity to the back of the ring before starting its call, so the next slot goes to another.
        this.queues.delete(key);
        this.queues.set(key, queue);
        queue[0]!.start();
        started = true;
        break;
      }
      if (!started) return;
    }
  }
}
