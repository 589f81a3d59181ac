// One PGlite instance in its own worker thread, as the main thread sees it: calls with a timeout and an abort
// signal, and a clear end. A call that times out or is cancelled terminates the worker (PostgreSQL cannot be
// interrupted inside WebAssembly any other way); so does an error the engine reports as its own failure. A
// worker that dies by itself (an uncaught error, an exit) fails only its own pending calls and tells its owner,
// which replaces it. Nothing here throws outside a call.
import { Worker } from 'node:worker_threads';
import { CallCancelledError, DatabaseUnavailableError, QueryError, QueryTimeoutError } from '../../infra/errors.js';
import type { OpenSettings, WorkerReply, WorkerRequest } from './protocol.js';

/**
 * PostgreSQL's recursion (deep expressions) runs on the worker's stack as WebAssembly frames. With the default
 * 4 MB, V8 overflows before PostgreSQL's own max_stack_depth check can raise a clean error, and the overflow
 * leaves PGlite in a broken state; with 64 MB the check fires first.
 */
const WORKER_STACK_MB = 64;

interface Pending {
  readonly op: WorkerRequest['op'];
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

export interface CallOptions {
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Why an engine ended, for its owner. */
export type EngineEnd = 'stopped' | 'timeout' | 'cancelled' | 'unsound' | 'crashed';

export class EngineWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private endReason: EngineEnd | undefined;
  private readonly ended: Promise<EngineEnd>;
  private markEnded!: (reason: EngineEnd) => void;
  private readonly exited: Promise<void>;
  backendPid = 0;
  /** The WebAssembly heap after the last call. */
  heapBytes = 0;

  private constructor(private readonly worker: Worker) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (reply: WorkerReply) => this.onReply(reply));
    // An error thrown in the worker outside any call (or an exit nobody asked for) ends only this engine.
    worker.on('error', (error) => this.end('crashed', new DatabaseUnavailableError(`embedded database worker failed: ${error.message}`)));
    worker.on('messageerror', (error) => this.end('crashed', new DatabaseUnavailableError(`embedded database worker failed: ${error.message}`)));
    worker.on('exit', () => this.end('crashed', new DatabaseUnavailableError('embedded database worker stopped')));
  }

  /**
   * Starts a worker and opens `settings.dataDir` in it; a failure terminates the worker and rejects, and so does
   * `signal` aborting while it opens (a pool that closes does not wait for a reader it will not use).
   */
  static async start(settings: OpenSettings, signal?: AbortSignal): Promise<EngineWorker> {
    const engine = new EngineWorker(
      new Worker(new URL('./worker.js', import.meta.url), { resourceLimits: { stackSizeMb: WORKER_STACK_MB } }),
    );
    try {
      const opened = (await engine.call({ op: 'open', settings }, { signal })) as { backendPid: number };
      engine.backendPid = opened.backendPid;
      return engine;
    } catch (error) {
      await engine.kill('stopped');
      throw error;
    }
  }

  get alive(): boolean {
    return this.endReason === undefined;
  }

  /** Resolves when the engine has ended (its calls failed, no new ones accepted), with the reason. */
  get whenEnded(): Promise<EngineEnd> {
    return this.ended;
  }

  /**
   * Resolves when the thread is gone. It may still run for a moment after the engine ended, so nothing may reuse
   * its directory before this.
   */
  get whenExited(): Promise<void> {
    return this.exited;
  }

  /**
   * Sends one request. A timeout rejects with QueryTimeoutError and an aborted signal with CallCancelledError;
   * both terminate the engine at once. An engine failure reported by the worker terminates it too and rejects
   * with a clean QueryError.
   */
  call(request: WorkerRequest, options: CallOptions = {}): Promise<unknown> {
    if (!this.alive) return Promise.reject(new QueryError('the statement was stopped: the database session it ran in has ended'));
    if (options.signal?.aborted) return Promise.reject(new CallCancelledError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.pending.delete(id);
        settle();
        reject(new CallCancelledError());
        void this.kill('cancelled');
      };
      const settle = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, {
        op: request.op,
        resolve: (value) => (settle(), resolve(value)),
        reject: (error) => (settle(), reject(error)),
      });
      if (options.timeoutMs !== undefined) {
        const timeoutMs = options.timeoutMs;
        timer = setTimeout(() => {
          this.pending.delete(id);
          settle();
          reject(new QueryTimeoutError(timeoutMs));
          void this.kill('timeout');
        }, timeoutMs);
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.worker.postMessage({ id, request });
    });
  }

  /** Closes PGlite cleanly (a checkpoint), then ends the worker. */
  async stop(): Promise<void> {
    if (this.alive) await this.call({ op: 'close' }, { timeoutMs: 10_000 }).catch(() => undefined);
    await this.kill('stopped');
  }

  /**
   * Test-only: the worker dies as if by accident — an error thrown in it outside any call ('throw'), or the
   * thread ending without being asked to by this engine ('terminate').
   */
  crashForTests(how: 'throw' | 'terminate'): void {
    if (how === 'throw') void this.call({ op: 'crash' }).catch(() => undefined);
    else void this.worker.terminate();
  }

  /** Ends the worker now, failing whatever it still had pending. */
  async kill(reason: EngineEnd): Promise<void> {
    this.end(reason, new QueryError('the statement was stopped: the database session it ran in has ended'));
    await this.worker.terminate().catch(() => undefined);
  }

  private end(reason: EngineEnd, error: Error): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
    this.markEnded(reason);
  }

  private onReply(reply: WorkerReply): void {
    this.heapBytes = reply.heapBytes;
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.ok) {
      waiter.resolve(reply.value);
      return;
    }
    const { message, code, unsound, ...info } = reply.error;
    if (unsound && waiter.op !== 'open') {
      // The engine failed under this statement (a statement so large or deep that it overflowed the
      // WebAssembly stack surfaces as a lost prepared statement, or worse): PGlite is not sound after that.
      waiter.reject(
        new QueryError('the statement is too large or too deeply nested for the embedded database', {
          sqlState: '54001',
          hint: 'Simplify the expression or split the query.',
        }),
      );
      void this.kill('unsound');
      return;
    }
    waiter.reject(new QueryError(message, { ...info, ...(code ? { sqlState: code } : {}) }));
    if (unsound) void this.kill('unsound');
  }
}
