// The local model on a pool of worker threads, for the server. Embedding a query costs milliseconds of CPU (up
// to ~20 ms for the costliest 1,000 characters, see MAX_QUERY_CORRECTIONS) and fitting the catalog most of a
// second; on the main thread a flood of searches froze every call, /health included. Here:
// - every worker holds its own fitted model: fit() only names the model (a hash of the catalog, the same name the
//   fit gives); the first task that needs that catalog sends it to every worker, which fits it there. A server
//   whose stored embeddings are current thus starts without fitting (about 3 s of CPU per worker on a busy 2-core
//   machine), and the first search after a start or a catalog change waits for the fit. Queries keep the fit
//   they were called with (workers keep the last few), so a query vector always matches the model name read
//   with it;
// - queries and document batches are shared between identities by a FairScheduler (src/db/fair-scheduler.ts)
//   whose capacity is the number of workers: one identity runs at most its share at once, the others' queries
//   are taken in turn, a query waits at most the queue timeout, and a query whose caller is gone leaves the
//   queue. A query already in a worker runs to its end (bounded in cost), and its caller stops before the
//   database;
// - a worker that dies (an error outside a task, out of memory) fails only the tasks it held, is replaced at
//   once and refitted with the current catalog; the server keeps serving.
// The workers keep the normal thread priority: a lower one (nice 5 and 10, per thread on Linux) was tried, and on
// a busy machine it starved the workers behind every other process (start-up embedding did not finish in 60 s),
// while with a core to spare (the default worker count) the event loop needs no help.
// Not piscina or workerpool: every worker must hold the fitted state (a broadcast to each thread, resent to a
// replacement), and the queue must be fair per identity, which the FairScheduler in front already is; what is
// left (post a message, match the answer) is the small part below.
import { Worker } from 'node:worker_threads';
import { FairScheduler } from '../db/fair-scheduler.js';
import { QueueTimeoutError } from '../infra/errors.js';
import { corpusDigest, localModelName } from './local.js';
import { type EmbedQueryOptions, EmbeddingError, type EmbeddingProvider, type ProductDocument } from './provider.js';
import type { PoolReply, PoolRequest } from './embedding-worker.js';

const WORKER_URL = new URL('./embedding-worker.js', import.meta.url);
/** Fits a worker keeps (embedding-worker.ts evicts the oldest beyond them; the pool mirrors it to know what to send). */
export const KEPT_FITS = 3;
/** Key of document batches (start-up embedding) in the scheduler: one more "identity", never a real UUID. */
const DOCUMENTS_KEY = '\u0000documents';

export interface EmbeddingPoolOptions {
  /** Worker threads (and the scheduler's capacity). */
  readonly workers: number;
  readonly dimensions: number;
  /** Queries one identity may have in the workers at once. */
  readonly perKey: number;
  /** Longest a query waits for a worker before it fails. */
  readonly maxWaitMs: number;
  /** Queries one identity may have waiting; more are refused at once. */
  readonly maxQueuedPerKey: number;
  /** Told when a worker dies (it is replaced); for the server's log. */
  readonly onWorkerError?: ((error: Error) => void) | undefined;
}

interface Pending {
  readonly resolve: (reply: PoolReply & { ok: true }) => void;
  readonly reject: (error: Error) => void;
}

interface Slot {
  /** Started by the slot's first task: a server that never searches boots no thread (about 0.2 s of CPU each). */
  worker: Worker | undefined;
  readonly pending: Map<number, Pending>;
  /** Deaths since this slot's worker last answered: a worker that cannot even start is not restarted forever. */
  deaths: number;
  /** The fits sent to this slot's worker, oldest first, as it keeps them; `done` settles when it has fitted. */
  fits: { readonly digest: string; readonly done: Promise<void> }[];
}

/** Deaths in a row, without one answer between them, after which a slot gives up (the pool answers with an error). */
const MAX_DEATHS_IN_A_ROW = 3;

interface Fit {
  readonly digest: string;
  readonly model: string;
  readonly corpus: readonly ProductDocument[];
}

export class WorkerEmbeddingProvider implements EmbeddingProvider {
  readonly kind = 'local' as const;
  readonly batchSize = 128;
  readonly needsCorpus = true;
  readonly dimensions: number;
  private readonly slots: Slot[] = [];
  private readonly scheduler: FairScheduler;
  private current: Fit | undefined;
  private nextId = 0;
  private closed = false;
  /** Set when a worker cannot be kept running: every task fails with it. */
  private broken: EmbeddingError | undefined;

  constructor(private readonly options: EmbeddingPoolOptions) {
    if (options.workers < 1) throw new Error('the embedding pool needs at least one worker');
    this.dimensions = options.dimensions;
    this.scheduler = new FairScheduler({
      capacity: options.workers,
      perKey: options.perKey,
      maxWaitMs: options.maxWaitMs,
      maxQueuedPerKey: options.maxQueuedPerKey,
    });
    for (let i = 0; i < options.workers; i++) {
      this.slots.push({ worker: undefined, pending: new Map(), deaths: 0, fits: [] });
    }
  }

  get workers(): number {
    return this.slots.length;
  }

  get model(): string {
    return this.requireFit().model;
  }

  /**
   * Makes `corpus` the catalog of the next tasks. Hashing it is the only part done here (a few milliseconds at
   * the default catalog); each worker fits it before its first task for it (withFit).
   */
  async fit(corpus: readonly ProductDocument[]): Promise<void> {
    const digest = corpusDigest(corpus, this.dimensions);
    if (this.current?.digest === digest) return;
    this.current = { digest, model: localModelName(corpus, this.dimensions), corpus };
  }

  /**
   * Runs `request` on the slot's worker once it holds `fit`: the first task of a catalog sends it to every
   * worker that lacks it, so they fit side by side (messages are handled in order: a task sent later waits).
   */
  private async withFit(slot: Slot, fit: Fit, request: PoolRequest): Promise<PoolReply & { ok: true }> {
    for (;;) {
      for (const other of this.slots) if (!other.fits.some((f) => f.digest === fit.digest)) this.sendFit(other, fit);
      const entry = slot.fits.find((f) => f.digest === fit.digest)!;
      await entry.done; // a worker that dies meanwhile rejects it
      // Still held: the worker was not replaced since (a replacement holds no fit, and is sent it again).
      if (slot.fits.includes(entry)) return this.post(slot, request);
    }
  }

  private sendFit(slot: Slot, fit: Fit): void {
    const posted = this.post(slot, { type: 'fit', digest: fit.digest, dimensions: this.dimensions, corpus: fit.corpus });
    const worker = slot.worker; // the one posted to (post starts a slot's first)
    const entry = {
      digest: fit.digest,
      done: posted.then(
        (reply) => {
          if ('model' in reply && reply.model !== fit.model) throw new EmbeddingError(`the local model's worker named the model ${reply.model}, not ${fit.model}`);
        },
        (error: unknown) => {
          // Not fitted: the next task for this catalog sends it again (a replaced worker starts with none).
          if (slot.worker === worker) slot.fits = slot.fits.filter((f) => f !== entry);
          throw error;
        },
      ),
    };
    entry.done.catch(() => undefined); // awaited by the slot's own tasks; a fit sent ahead for another slot's task may fail unseen
    slot.fits.push(entry);
    while (slot.fits.length > KEPT_FITS) slot.fits.shift();
  }

  async embedQuery(text: string, options: EmbedQueryOptions = {}): Promise<number[]> {
    return (await this.embedQueryWithCoverage(text, options)).vector;
  }

  async embedQueryWithCoverage(text: string, options: EmbedQueryOptions = {}): Promise<{ vector: number[]; coverage: number }> {
    // The fit is read now, with the model name the caller reads: a refit finishing meanwhile changes neither.
    const fit = this.requireFit();
    try {
      return await this.scheduler.run(
        options.key ?? '',
        async () => {
          const reply = await this.withFit(this.leastBusy(), fit, { type: 'query', digest: fit.digest, text });
          return { vector: vectorsOf(reply, this.dimensions)[0]!, coverage: 'coverage' in reply && typeof reply.coverage === 'number' ? reply.coverage : 1 };
        },
        options.signal,
      );
    } catch (error) {
      if (error instanceof QueueTimeoutError) {
        throw new QueueTimeoutError(
          error.waitedMs,
          `the server is busy: this search waited ${error.waitedMs} ms for the embedding model and was not run. Try again shortly, and send fewer searches at once.`,
        );
      }
      throw error;
    }
  }

  /** Embeds documents in one chunk per worker, side by side, through the same scheduler as queries. */
  async embedDocuments(documents: readonly ProductDocument[]): Promise<number[][]> {
    const fit = this.requireFit();
    const size = Math.ceil(documents.length / this.slots.length);
    const chunks: (readonly ProductDocument[])[] = [];
    for (let i = 0; i < documents.length; i += size) chunks.push(documents.slice(i, i + size));
    const parts = await Promise.all(
      chunks.map((chunk) =>
        this.scheduler.run(DOCUMENTS_KEY, async () => vectorsOf(await this.withFit(this.leastBusy(), fit, { type: 'documents', digest: fit.digest, documents: chunk }), this.dimensions)),
      ),
    );
    return parts.flat();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((slot) => slot.worker?.terminate()));
  }

  private requireFit(): Fit {
    if (!this.current) throw new Error('the local embedding provider has not been fitted to a catalog yet');
    return this.current;
  }

  /** The scheduler admits at most one task per worker, so this finds an idle one; fits queue behind tasks. */
  private leastBusy(): Slot {
    let best = this.slots[0]!;
    for (const slot of this.slots) if (slot.pending.size < best.pending.size) best = slot;
    return best;
  }

  private start(slot: Slot): Worker {
    const worker = new Worker(WORKER_URL);
    slot.worker = worker;
    slot.fits = []; // a new worker holds no fit: its first task sends the one it needs
    worker.unref(); // only pending tasks keep the process alive (see post)
    worker.on('message', (reply: PoolReply) => {
      const pending = slot.pending.get(reply.id);
      if (!pending) return;
      slot.pending.delete(reply.id);
      slot.deaths = 0;
      if (slot.pending.size === 0) worker.unref();
      if (reply.ok) pending.resolve(reply);
      else pending.reject(new EmbeddingError(`the local model failed: ${reply.message}`));
    });
    const died = (error: Error) => {
      if (slot.worker !== worker) return; // already replaced
      const failure = new EmbeddingError(`the local model's worker stopped (${error.message}); try again`, { cause: error });
      for (const pending of slot.pending.values()) pending.reject(failure);
      slot.pending.clear();
      if (this.closed) return;
      this.options.onWorkerError?.(error);
      void worker.terminate().catch(() => undefined);
      if (++slot.deaths >= MAX_DEATHS_IN_A_ROW) {
        this.broken = new EmbeddingError(`the local model's worker threads keep stopping (${error.message}); restart the server`, { cause: error });
        return;
      }
      this.start(slot); // fitted before its first task (withFit)
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exited with code ${code}`)));
    return worker;
  }

  private post(slot: Slot, request: PoolRequest): Promise<PoolReply & { ok: true }> {
    if (this.closed) return Promise.reject(new EmbeddingError('the local model is shut down'));
    if (this.broken) return Promise.reject(this.broken);
    const id = ++this.nextId;
    const worker = slot.worker ?? this.start(slot);
    return new Promise((resolve, reject) => {
      if (slot.pending.size === 0) worker.ref();
      slot.pending.set(id, { resolve, reject });
      worker.postMessage({ id, request });
    });
  }
}

function vectorsOf(reply: PoolReply & { ok: true }, dimensions: number): number[][] {
  if (!('vectors' in reply)) throw new EmbeddingError('the local model answered without vectors');
  const out: number[][] = [];
  for (let i = 0; i < reply.count; i++) out.push(Array.from(reply.vectors.subarray(i * dimensions, (i + 1) * dimensions)));
  return out;
}
