// The audit trail's writer (issue 11): every tool call is recorded, written asynchronously in batches, never on
// the call's own path.
//
// Design decisions:
// - record() only appends to an in-memory queue and returns: a slow or failing audit store never fails or delays
//   a call. The queue is bounded (ZAVA_AUDIT_QUEUE_LIMIT); past it the oldest entries are dropped, counted and
//   logged (once per overflow episode, with the running count), so memory stays bounded however long the store
//   is down.
// - One batch in flight at a time, up to BATCH_SIZE entries, written as one INSERT (db/audit.ts). A batch is
//   written once the first entry has lingered briefly (lingerMs) and the previous write finished; under load
//   batches grow instead of writes multiplying.
// - A failed write (database restarting, unreachable) puts the batch back at the head of the queue and retries
//   with exponential backoff (capped), logging the first failure of a streak and the recovery; entries are
//   dropped only by the queue bound. The store may see a batch twice if a write committed but its reply was lost
//   (at-least-once); the request id tells duplicates apart.
// - close() flushes what is queued within a deadline (graceful shutdown), then gives up and says how many were lost.
import type { Logger } from './logger.js';

export type AuditOutcome = 'ok' | 'error' | 'refused';

/** One tool call, as the audit trail keeps it. Personal data never goes in here beyond the caller's own SQL. */
export interface AuditEntry {
  readonly at: Date;
  /** The authenticated subject (a token's sub; the manager UUID in dev mode). */
  readonly sub?: string | undefined;
  /** The effective identity the call ran as (manager UUID), when it resolved. */
  readonly userId?: string | undefined;
  readonly role?: string | undefined;
  /** '*' for every store, else store ids joined by '-'. */
  readonly storeScope?: string | undefined;
  readonly pii?: boolean | undefined;
  readonly tool: string;
  /** The SQL of execute_sales_query, the search text of semantic_search_products, the table names asked for. */
  readonly text?: string | undefined;
  readonly outcome: AuditOutcome;
  readonly rows?: number | undefined;
  readonly truncated?: boolean | undefined;
  /** Why a call was refused (guard reason, unknown identity, ...). */
  readonly refusal?: string | undefined;
  /** What kind of failure: timeout, query_error, unavailable, busy, cancelled, internal. */
  readonly errorClass?: string | undefined;
  readonly durationMs: number;
  readonly requestId?: string | undefined;
  readonly clientName?: string | undefined;
}

/** Where tool calls are recorded. */
export interface AuditSink {
  record(entry: AuditEntry): void;
}

export interface AuditStats {
  readonly queued: number;
  readonly written: number;
  readonly dropped: number;
  readonly failedWrites: number;
}

export interface AuditWriterOptions {
  /** Entries waiting at most; past it the oldest are dropped. */
  readonly queueLimit: number;
  readonly log: Logger;
  /** Entries per INSERT at most (default 500). */
  readonly batchSize?: number;
  /**
   * How long a first entry waits for others to share its write (default 250 ms): one INSERT per linger at most, so
   * at a few dozen calls a second the audit costs a few INSERTs a second, not one per call (measured on the
   * shared machine: a one-row batch INSERT 7–10 ms of wall time, a 100-row one 14–17 ms).
   */
  readonly lingerMs?: number;
  /** Longest pause between retries of a failing write (default 5 s). */
  readonly maxBackoffMs?: number;
  /** Retention prune, run now and then (default: every hour) while writes succeed. */
  readonly prune?: (() => Promise<number>) | undefined;
  readonly pruneEveryMs?: number;
}

/** Longest a single text field is kept (SQL can be 20,000 characters; a refusal reason is short). */
export const MAX_AUDIT_TEXT = 20_000;

export class AuditWriter implements AuditSink {
  private queue: AuditEntry[] = [];
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private failing = false;
  private overflowing = false;
  private closed = false;
  private lastPrune = 0;
  private stats = { written: 0, dropped: 0, failedWrites: 0 };
  private readonly batchSize: number;
  private readonly lingerMs: number;

  constructor(
    private readonly write: (entries: readonly AuditEntry[]) => Promise<void>,
    private readonly options: AuditWriterOptions,
  ) {
    this.batchSize = options.batchSize ?? 500;
    this.lingerMs = options.lingerMs ?? 250;
  }

  record(entry: AuditEntry): void {
    if (this.closed) {
      this.drop(1, 'after shutdown');
      return;
    }
    this.queue.push(entry);
    this.trim();
    this.schedule(this.lingerMs);
  }

  get counts(): AuditStats {
    return { queued: this.queue.length, ...this.stats };
  }

  /** Writes what is queued, waiting at most timeoutMs; returns the entries left unwritten (and counted as dropped). */
  async close(timeoutMs = 5_000): Promise<number> {
    this.closed = true;
    const deadline = Date.now() + timeoutMs;
    clearTimeout(this.timer);
    this.timer = undefined;
    while (Date.now() < deadline && (this.queue.length > 0 || this.writing)) {
      if (!this.writing) this.flush();
      const left = deadline - Date.now();
      await Promise.race([this.writing, new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(left, this.backoffMs || 50))))]);
    }
    const lost = this.queue.length;
    if (lost > 0) {
      this.queue = [];
      this.drop(lost, 'at shutdown');
    }
    return lost;
  }

  /** Resolves once everything queued now is written (tests, benchmarks). */
  async drain(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 || this.writing) {
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.writing || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, delayMs);
    this.timer.unref();
  }

  private flush(): void {
    if (this.writing || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.batchSize);
    this.writing = this.write(batch)
      .then(async () => {
        this.stats.written += batch.length;
        this.backoffMs = 0;
        this.overflowing = false; // the next overflow is a new episode, logged again
        if (this.failing) {
          this.failing = false;
          this.options.log.info({ queued: this.queue.length }, 'audit writes resumed');
        }
        await this.maybePrune();
      })
      .catch((error: unknown) => {
        this.stats.failedWrites++;
        // Back at the head, oldest first; the bound still holds.
        this.queue.unshift(...batch);
        this.trim();
        this.backoffMs = Math.min(this.options.maxBackoffMs ?? 5_000, Math.max(100, this.backoffMs * 2));
        if (!this.failing) {
          this.failing = true;
          this.options.log.warn({ err: error, queued: this.queue.length }, 'audit write failed; retrying with backoff (calls are not affected)');
        }
      })
      .finally(() => {
        this.writing = undefined;
        // The next batch lingers too, unless a whole one is waiting: writing again at once after each write made
        // batches of one or two entries under load, an INSERT per call or two (measured: 30 µs of the server's CPU
        // per call, 5 % of one-row throughput).
        const full = this.queue.length >= this.batchSize;
        if (!this.closed) this.schedule(this.failing ? this.backoffMs : full ? 0 : this.lingerMs);
      });
  }

  private async maybePrune(): Promise<void> {
    const prune = this.options.prune;
    if (!prune || Date.now() - this.lastPrune < (this.options.pruneEveryMs ?? 3_600_000)) return;
    this.lastPrune = Date.now();
    try {
      const removed = await prune();
      if (removed > 0) this.options.log.info({ removed }, 'audit rows past retention pruned');
    } catch (error) {
      this.options.log.warn({ err: error }, 'audit retention prune failed; will try again later');
    }
  }

  private trim(): void {
    const excess = this.queue.length - this.options.queueLimit;
    if (excess <= 0) return;
    this.queue.splice(0, excess);
    this.drop(excess, 'queue full');
  }

  private drop(count: number, why: string): void {
    this.stats.dropped += count;
    if (!this.overflowing || why !== 'queue full') {
      this.options.log.warn({ dropped: count, droppedTotal: this.stats.dropped, queueLimit: this.options.queueLimit }, `audit entries dropped (${why})`);
    }
    if (why === 'queue full') this.overflowing = true;
  }
}

/** Cuts a text field to MAX_AUDIT_TEXT characters. */
export function auditText(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return text.length > MAX_AUDIT_TEXT ? `${text.slice(0, MAX_AUDIT_TEXT)}…` : text;
}
