// The embedded backend's readers: a few PGlite instances, each in its own worker thread on its own copy of the
// data directory, so tool calls (all reads) run side by side instead of one at a time.
//
// Decisions (measured at the reference dataset, 100,000 customers: README, "The embedded database"):
// - A reader's directory is a plain file copy of a snapshot. PGlite's dumpDataDir()/loadDataDir would keep the
//   whole database inside each worker's memory (300 MB each at reference size); a copy on disk costs about
//   0.3 s and no memory, and PostgreSQL reads it through the page cache the readers share.
// - The snapshot is taken from the writer after a CHECKPOINT, under the writer's lock, only when a read finds
//   that a write committed since the last one (seeding runs hundreds of transactions and reads none). Readers
//   opened from an older snapshot are reopened before their next call, so a call never sees older data than
//   the last write committed before it started.
// - Each reader's copy is private and disposable: a reader that timed out, was cancelled, failed or grew its
//   heap is terminated and reopened from a fresh copy, which also removes whatever temporary files the
//   statement it was running left behind.
// - The directories live next to the data directory (`<dataDir>.readers/`), covered by its lock: a reader is
//   part of the process that holds the lock, never a second process.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { CallCancelledError } from '../../infra/errors.js';
import { copyDirectory } from './copy-dir.js';
import { EngineWorker } from './engine.js';

/** Writes come in bursts (seeding commits hundreds of batches): the snapshot waits for a pause. */
const WARM_UP_AFTER_WRITES_MS = 1_000;

export interface ReaderPoolOptions {
  readonly root: string;
  readonly size: number;
  /** Cap on each reader's WebAssembly heap. */
  readonly heapMaxBytes: number;
  /** A reader whose heap grew past this after a call is replaced (a WebAssembly heap never shrinks). */
  readonly recycleAboveBytes: number;
  readonly sharedBuffers: string;
  /**
   * Copies the writer's committed state into `target` while nothing writes, and returns the write version the
   * copy holds.
   */
  readonly takeSnapshot: (target: string) => Promise<number>;
  readonly warn: (message: string) => void;
}

interface Slot {
  readonly index: number;
  busy: boolean;
  engine: Promise<EngineWorker> | undefined;
  /** `engine` once it has opened. */
  live: EngineWorker | undefined;
  /** The snapshot version `engine` was opened from. */
  version: number;
}

/**
 * Copies a PostgreSQL data directory, without temporary files or a lock file, and without the files of the
 * databases named in `otherDatabases` (their OIDs: `base/<oid>`). A reader only ever connects to the one database
 * PGlite opens; template0 and template1 are about 600 of the 1,000 files of a data directory, and creating a file
 * costs far more than copying its bytes (0.6–0.9 ms each on an ext4 disk against 0.02 ms on tmpfs). The only
 * visible difference to a tool query: pg_database_size() of a template answers NULL.
 */
export async function copyDataDir(source: string, target: string, otherDatabases: readonly string[] = []): Promise<void> {
  const skip = new Set([
    path.join(source, 'base', 'pgsql_tmp'),
    path.join(source, 'postmaster.pid'),
    ...otherDatabases.map((oid) => path.join(source, 'base', oid)),
  ]);
  await rm(target, { recursive: true, force: true });
  await copyDirectory(source, target, skip);
}

export class ReaderPool {
  private readonly slots: Slot[];
  /** Bumped by each committed write; a call needs a snapshot at least this new. */
  private dataVersion = 1;
  private snapshotVersion = 0;
  private snapshotDir: string | undefined;
  private snapshotSeq = 0;
  private snapshotting: Promise<void> | undefined;
  /** Reader copies in progress per snapshot directory: an old snapshot is removed only when none remain. */
  private readonly copying = new Map<string, number>();
  private readonly retired = new Set<string>();
  private closed = false;
  /** Aborted by close(): readers still opening stop at once instead of being waited for. */
  private readonly closing = new AbortController();
  private warmTimer: NodeJS.Timeout | undefined;
  /** The background warm-up in progress, which tests wait for before looking at the readers' directories. */
  private warming: Promise<void> | undefined;
  private openSeq = 0;
  private active = false;

  constructor(private readonly options: ReaderPoolOptions) {
    this.slots = Array.from({ length: options.size }, (_, index) => ({ index, busy: false, engine: undefined, live: undefined, version: 0 }));
  }

  get version(): number {
    return this.dataVersion;
  }

  /** A write committed: the next call reads from a new snapshot, prepared once writes have paused. */
  markWritten(): void {
    this.dataVersion++;
    clearTimeout(this.warmTimer);
    this.warmTimer = setTimeout(() => this.warmUp(), WARM_UP_AFTER_WRITES_MS);
    this.warmTimer.unref();
  }

  /**
   * The database serves reads from now on (an identity was resolved): from here, readers are prepared in the
   * background. Commands that only write (seeding, migrations) never pay for readers.
   */
  activate(): void {
    if (this.active) return;
    this.active = true;
    this.warmUp();
  }

  /**
   * Takes the snapshot and opens idle readers in the background, so the first call after a write does not pay
   * for them (about a second at reference size). Failures are left to the next call to report.
   */
  warmUp(): void {
    if (this.closed || !this.active) return;
    const warming = (async () => {
      if (this.snapshotVersion < this.dataVersion) await this.refreshSnapshot();
      for (const slot of this.slots) {
        if (this.closed) return;
        if (!slot.busy && (slot.engine === undefined || slot.version !== this.snapshotVersion)) await this.open(slot).catch(() => undefined);
      }
    })().catch(() => undefined);
    this.warming = warming;
    void warming.finally(() => {
      if (this.warming === warming) this.warming = undefined;
    });
  }

  /** Removes what a previous process left (the caller holds the data directory's lock). */
  async reset(): Promise<void> {
    await rm(this.options.root, { recursive: true, force: true });
    await mkdir(this.options.root, { recursive: true });
  }

  /**
   * Runs `work` on an idle reader opened from a snapshot at least as new as the last committed write. The
   * scheduler in front admits at most `size` calls, so an idle slot always exists.
   */
  async run<T>(work: (engine: EngineWorker) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const idle = this.slots.filter((slot) => !slot.busy);
    const slot = idle.find((s) => s.engine !== undefined && s.version === this.snapshotVersion) ?? idle[0];
    if (!slot) throw new Error('no idle embedded reader: more calls were admitted than there are readers');
    slot.busy = true;
    try {
      const engine = await abortable(this.ready(slot), signal);
      return await work(engine);
    } finally {
      slot.busy = false;
      this.afterCall(slot);
    }
  }

  /** Live reader engines, for tests that kill them or read their directories: after any warm-up in progress. */
  async engines(): Promise<EngineWorker[]> {
    while (this.warming) await this.warming;
    const engines = await Promise.all(this.slots.map((slot) => slot.engine?.catch(() => undefined)));
    return engines.filter((engine): engine is EngineWorker => engine?.alive === true);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    clearTimeout(this.warmTimer);
    const engines = await Promise.all(this.slots.map((slot) => slot.engine?.catch(() => undefined)));
    await Promise.all(engines.map((engine) => engine?.kill('stopped')));
    await rm(this.options.root, { recursive: true, force: true });
  }

  private async ready(slot: Slot): Promise<EngineWorker> {
    if (this.snapshotVersion < this.dataVersion) await this.refreshSnapshot();
    const current = await slot.engine?.catch(() => undefined);
    if (current?.alive && slot.version === this.snapshotVersion) return current;
    return this.open(slot); // none, ended, or opened from an older snapshot
  }

  /**
   * After a call, off the caller's path: a reader whose heap grew is replaced (its end reopens it), and one that
   * ended during the call (timeout, cancellation, failure) is reopened now rather than by the next caller.
   */
  private afterCall(slot: Slot): void {
    if (this.closed) return;
    const engine = slot.live;
    if (slot.engine === undefined) void this.open(slot).catch(() => undefined);
    else if (engine?.alive && engine.heapBytes > this.options.recycleAboveBytes) void engine.kill('stopped');
  }

  /**
   * Opens a new engine for `slot` (which serves no call at that moment), replacing whatever it had: a live engine
   * is ended, and one still opening is ended as soon as it has opened.
   */
  private open(slot: Slot): Promise<EngineWorker> {
    const source = this.snapshotDir;
    if (!source) return Promise.reject(new Error('no snapshot of the embedded database to open a reader from'));
    // A fresh directory each time: the worker this one replaces may still be running (and writing temporary
    // files) for a moment after it was terminated; its directory is removed once its thread is gone.
    const dir = path.join(this.options.root, `reader-${slot.index}-${++this.openSeq}`);
    this.copying.set(source, (this.copying.get(source) ?? 0) + 1);
    const opening = (async () => {
      try {
        await copyDataDir(source, dir);
      } finally {
        this.copyDone(source);
      }
      if (this.closed) throw new Error('the reader pool is closed');
      const settings = { dataDir: dir, heapMaxBytes: this.options.heapMaxBytes, sharedBuffers: this.options.sharedBuffers };
      return EngineWorker.start(settings, this.closing.signal);
    })();
    if (slot.live?.alive) void slot.live.kill('stopped');
    slot.engine = opening;
    slot.live = undefined;
    slot.version = this.snapshotVersion;
    opening.then(
      (engine) => {
        void engine.whenExited.then(() => rm(dir, { recursive: true, force: true })).catch(() => undefined);
        if (this.closed || slot.engine !== opening) return void engine.kill('stopped'); // superseded while opening
        slot.live = engine;
        void engine.whenEnded.then((reason) => {
          if (this.closed || slot.engine !== opening) return;
          slot.engine = undefined;
          slot.live = undefined;
          if (reason === 'crashed') this.options.warn(`embedded reader ${slot.index} stopped unexpectedly; replacing it`);
          // Replaced at once unless its call is still settling (that call's end reopens it).
          if (!slot.busy) void this.open(slot).catch(() => undefined);
        });
      },
      (error: unknown) => {
        void rm(dir, { recursive: true, force: true }).catch(() => undefined);
        if (slot.engine === opening) slot.engine = undefined;
        if (!this.closed) this.options.warn(`cannot open embedded reader ${slot.index}: ${describe(error)}`);
      },
    );
    return opening;
  }

  private refreshSnapshot(): Promise<void> {
    this.snapshotting ??= (async () => {
      const target = path.join(this.options.root, `snapshot-${++this.snapshotSeq}`);
      const version = await this.options.takeSnapshot(target);
      const previous = this.snapshotDir;
      this.snapshotDir = target;
      this.snapshotVersion = version;
      if (previous) this.retire(previous);
    })().finally(() => (this.snapshotting = undefined));
    return this.snapshotting;
  }

  private retire(dir: string): void {
    this.retired.add(dir);
    if (!this.copying.has(dir)) this.remove(dir);
  }

  private copyDone(dir: string): void {
    const left = (this.copying.get(dir) ?? 1) - 1;
    if (left > 0) return void this.copying.set(dir, left);
    this.copying.delete(dir);
    if (this.retired.has(dir)) this.remove(dir);
  }

  private remove(dir: string): void {
    this.retired.delete(dir);
    void rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : JSON.stringify(error);
}

/** Waits for `promise`, or rejects with CallCancelledError as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new CallCancelledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CallCancelledError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener('abort', onAbort), reject(error)),
    );
  });
}
