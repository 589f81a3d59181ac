// The embedded backend: PGlite (PostgreSQL in WebAssembly) with pgvector, persisted in a local directory.
//
// One writer owns the data directory (migrations, seeding, imports, owner reads), one transaction at a time.
// Tool calls run on a few readers (embedded/readers.ts), each a PGlite on its own copy of the directory, behind
// the fair scheduler (db/fair-scheduler.ts): one identity runs at most its share of the readers, so another
// identity's call finds a free reader while the first floods. A statement past its timeout, a call whose
// client went away, an engine failure or a grown heap ends only that reader's worker, which is replaced.
import { DatabaseUnavailableError, errorMessage, QueryError } from '../../infra/errors.js';
import { Mutex } from '../../infra/mutex.js';
import { BOUND_COLUMNS, boundedOutcome, boundedSelect, loadBoundedScanner, positionInQuery, type ResultBounds } from '../bounded.js';
import { CONTEXT_SETTING, loadContextKey, signContextReused } from '../context.js';
import { FairScheduler } from '../fair-scheduler.js';
import { IdentityDirectory } from '../identity.js';
import type {
  AdminOptions,
  IdentityRole,
  AdminSession,
  Identity,
  ManagedDatabase,
  QueryOptions,
  ReadOptions,
  ReadSession,
  RowSet,
  SqlParam,
} from '../types.js';
import { fairShareKey } from '../types.js';
import { DataDirectoryLock } from './dir-lock.js';
import { EngineWorker, type CallOptions } from './engine.js';
import type { WorkerRequest, WorkerRows } from './protocol.js';
import { copyDataDir, ReaderPool } from './readers.js';

export interface EmbeddedOptions {
  readonly dataDir: string;
  readonly statementTimeoutMs: number;
  readonly maxRows: number;
  /** Readers that run tool calls side by side (config.embeddedReaders). */
  readonly readers?: number;
  /** Calls one identity may run at once; at most readers − 1, so one reader is always left for the others. */
  readonly identityConcurrency?: number;
  /**
   * Only one identity will ever call (a stdio process serves its own): no reader is kept for others, so the pool
   * is that identity's share (identityConcurrency, at most readers − 1) and the readers it could never use are not
   * opened (each a PGlite instance: about 0.8 s of CPU to open, and 115 MB at the reference dataset).
   */
  readonly oneIdentity?: boolean;
  readonly queueTimeoutMs?: number;
  readonly identityQueueLimit?: number;
  /** Largest row a tool query may return (db/bounded.ts); a larger one fails inside PostgreSQL. */
  readonly maxRowBytes?: number;
  /** temp_file_limit of tool queries (PostgreSQL units); '-1' leaves it unlimited. */
  readonly tempFileLimit?: string;
  readonly warn?: (message: string) => void;
  /** Roles that read personal data in clear (config.piiReadRoles). */
  readonly piiReadRoles?: readonly IdentityRole[];
}

/**
 * Each reader's WebAssembly heap: 134 MB once open with 32 MB of shared buffers (measured at the reference
 * dataset), so about 250 MB for sorts, hashes and values (a result row is capped far lower), and a hard stop
 * (PostgreSQL's "out of memory") before one statement can grow a reader to the 2 GB PGlite allows. With 4
 * readers and two identities building huge values at once, peak RSS stayed at 1.4 GB (README).
 */
export const READER_HEAP_MAX_BYTES = 384 * 1024 * 1024;
/** A reader whose heap grew past this after a call is replaced, so memory returns to the baseline. */
export const READER_RECYCLE_BYTES = 256 * 1024 * 1024;
/**
 * Every PGlite instance reads through the OS page cache, which they share; their own buffers can be small. The
 * writer too: bulk loads go through PostgreSQL's ring buffers, and seeding the reference dataset took as long with
 * 32 MB as with initdb's 128 MB (41–43 s against 39–42 s, two runs each), while each open of an instance with 128 MB
 * cost 0.4 s more CPU (PostgreSQL initializing the larger buffer pool inside WebAssembly).
 */
const SHARED_BUFFERS = '32MB';
/**
 * Byte budget of a query that gives none (QueryOptions.maxBytes), as on the server backend: internal reads (the
 * search corpus) need more than a tool answer's cap, and still stay bounded per call.
 */
const DEFAULT_SESSION_MAX_BYTES = 64 * 1024 * 1024;
/** Longest an identity directory refresh may take before the previous one keeps serving (the first load: 30 s). */
const IDENTITY_REFRESH_TIMEOUT_MS = 5_000;

export class EmbeddedDatabase implements ManagedDatabase {
  readonly kind = 'embedded' as const;
  readonly hasVector = true;
  readonly location: string;
  /** The writer's lock: one owner transaction or owner read at a time. */
  private readonly writeLock = new Mutex();
  private readonly identities: IdentityDirectory;
  private readonly scheduler: FairScheduler;
  private readonly readers: ReaderPool;
  private writer: Promise<EngineWorker>;
  private contextKey: Buffer | undefined;
  private closed = false;
  private readonly warn: (message: string) => void;

  private constructor(
    private readonly options: EmbeddedOptions,
    private readonly directoryLock: DataDirectoryLock,
  ) {
    this.location = `embedded database at ${options.dataDir}`;
    this.warn = options.warn ?? ((message) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: message })}\n`));
    const configured = Math.max(1, options.readers ?? 2);
    const share = Math.max(1, Math.min(options.identityConcurrency ?? configured, configured - 1));
    const readers = options.oneIdentity ? share : configured;
    this.scheduler = new FairScheduler({
      capacity: readers,
      perKey: share,
      maxWaitMs: options.queueTimeoutMs ?? 10_000,
      maxQueuedPerKey: options.identityQueueLimit ?? 32,
    });
    this.readers = new ReaderPool({
      root: `${options.dataDir}.readers`,
      size: readers,
      heapMaxBytes: READER_HEAP_MAX_BYTES,
      recycleAboveBytes: READER_RECYCLE_BYTES,
      sharedBuffers: SHARED_BUFFERS,
      takeSnapshot: (target) => this.snapshot(target),
      warn: this.warn,
    });
    this.writer = this.startWriter();
    this.identities = new IdentityDirectory((sql) => this.ownerQuery(sql), { timeoutMs: IDENTITY_REFRESH_TIMEOUT_MS, warn: this.warn, piiReadRoles: options.piiReadRoles });
  }

  static async open(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
    await loadBoundedScanner();
    const directoryLock = DataDirectoryLock.acquire(options.dataDir);
    let db: EmbeddedDatabase | undefined;
    try {
      db = new EmbeddedDatabase(options, directoryLock);
      await db.readers.reset();
      await db.writer;
    } catch (error) {
      if (db) db.closed = true;
      directoryLock.release();
      throw error;
    }
    return db;
  }

  /** Opens the data directory in the writer; a writer that ends on its own (crash, stuck owner read) is reopened. */
  private startWriter(): Promise<EngineWorker> {
    const starting = EngineWorker.start({ dataDir: this.options.dataDir, sharedBuffers: SHARED_BUFFERS }).catch((error: unknown) => {
      throw new DatabaseUnavailableError(`cannot open the ${this.location}: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    });
    this.writer = starting;
    starting.then(
      (engine) =>
        void engine.whenEnded.then((reason) => {
          if (this.closed || this.writer !== starting || reason === 'stopped') return;
          this.warn(`the embedded database writer ended (${reason}); reopening it`);
          // Only once the old thread is gone: two PGlite instances must never have the directory open at once.
          const next = engine.whenExited.then(() => this.startWriter());
          this.writer = next;
          next.catch((error: unknown) => this.warn(errorMessage(error)));
        }),
      () => undefined, // surfaced to the next caller that awaits the writer
    );
    return starting;
  }

  private async writerCall(request: WorkerRequest, options?: CallOptions): Promise<unknown> {
    if (this.closed) throw new DatabaseUnavailableError('the embedded database is closed');
    return (await this.writer).call(request, options);
  }

  private async writerRows(request: WorkerRequest, options?: CallOptions): Promise<RowSet> {
    return toRowSet((await this.writerCall(request, options)) as WorkerRows);
  }

  /**
   * The readers' snapshot: a checkpoint puts every committed page in the files, which are then copied, all but
   * the other databases' (the templates): readers connect to this one only, and the WAL after the checkpoint
   * touches nothing else, so recovery on a copy never looks for them.
   */
  private snapshot(target: string): Promise<number> {
    return this.writeLock.run(async () => {
      const version = this.readers.version;
      await this.writerCall({ op: 'exec', sql: 'CHECKPOINT' });
      const others = await this.writerRows({ op: 'query', sql: 'SELECT oid::text AS oid FROM pg_database WHERE datname <> current_database()', params: [] });
      await copyDataDir(this.options.dataDir, target, others.rows.map((row) => String(row[0])));
      return version;
    });
  }

  async prepare(): Promise<void> {
    this.contextKey = await loadContextKey((sql) => this.ownerQuery(sql));
  }

  resolveIdentity(userId: string | undefined | null): Promise<Identity> {
    this.readers.activate();
    return this.identities.resolve(userId);
  }

  async withIdentity<T>(identity: Identity, work: (session: ReadSession) => Promise<T>, options: ReadOptions = {}): Promise<T> {
    const key = this.contextKey;
    if (!key) throw new DatabaseUnavailableError('the database is not prepared: call prepare() after migrating');
    if (this.closed) throw new DatabaseUnavailableError('the embedded database is closed');
    const timeoutMs = options.timeoutMs ?? this.options.statementTimeoutMs;
    const signal = options.signal;
    const tempFileLimit = this.options.tempFileLimit ?? '-1';
    if (!/^(-1|\d+(kB|MB|GB|TB)?)$/.test(tempFileLimit)) throw new Error(`invalid temp file limit ${tempFileLimit}`);
    // The caller gets its answer as soon as the work is done; the transaction is rolled back afterwards, still
    // holding the reader, so the next transaction on it starts clean while this caller is already on its way.
    return new Promise<T>((resolve, reject) => {
      this.scheduler
        .run(
          fairShareKey(identity),
          () =>
            this.readers.run(async (engine) => {
              const token = signContextReused(key, identity, engine.backendPid);
              // The token is ours (hex, digits, dots and dashes), safe as a literal, and no other session exists
              // in a reader that could see the statement text.
              if (!/^[0-9a-zA-Z.*-]+$/.test(token)) throw new Error('unexpected characters in the signed context');
              // temp_file_limit can only be set by a superuser (PGlite's session user), here, before the
              // sandbox's role takes over; the query cannot raise it.
              const limit = tempFileLimit === '-1' ? '' : `, set_config('temp_file_limit', '${tempFileLimit}', true)`;
              // BEGIN travels with the first statement (one worker round trip fewer); work that sends nothing
              // opens no transaction.
              let begin: string | undefined =
                `BEGIN READ ONLY; SELECT set_config('${CONTEXT_SETTING}', '${token}', true), set_config('search_path', 'pg_catalog, retail', true)${limit}`;
              const session: ReadSession = {
                query: async (sql: string, params: readonly SqlParam[] = [], queryOptions: QueryOptions = {}) => {
                  if (!engine.alive) throw new QueryError('the transaction was cancelled by an earlier timeout');
                  const bounds: ResultBounds = {
                    maxRows: queryOptions.maxRows ?? this.options.maxRows,
                    maxRowBytes: this.options.maxRowBytes ?? 256 * 1024,
                    maxBytes: queryOptions.maxBytes ?? DEFAULT_SESSION_MAX_BYTES,
                  };
                  const request: WorkerRequest = {
                    op: 'sandbox',
                    sql: boundedSelect(sql, bounds),
                    params,
                    maxRows: bounds.maxRows + 1,
                    ...(begin ? { begin } : {}),
                  };
                  begin = undefined;
                  let result: WorkerRows;
                  try {
                    result = (await engine.call(request, { timeoutMs, signal })) as WorkerRows;
                  } catch (error) {
                    throw withPositionIn(sql, error);
                  }
                  return boundedRowSet(result, bounds);
                },
              };
              try {
                resolve(await work(session));
              } catch (error) {
                reject(error);
              }
              // Rolling back also undoes any session-level setting made inside the transaction (set_config(...,
              // false) is transactional), and the sandbox cannot commit, so the next call starts clean. If even
              // ROLLBACK fails, the session is in an unknown state: the reader is replaced.
              if (begin === undefined && engine.alive) {
                await engine.call({ op: 'exec', sql: 'ROLLBACK' }, { timeoutMs }).catch(() => engine.kill('stopped'));
              }
            }, signal),
          signal,
        )
        .catch(reject);
    });
  }

  ownerQuery(sql: string, params: readonly SqlParam[] = []): Promise<RowSet> {
    // Trusted reads, but a stuck one would hold the writer's lock for everyone: past the statement timeout the
    // writer is reopened.
    return this.writeLock.run(() => this.writerRows({ op: 'query', sql, params }, { timeoutMs: this.options.statementTimeoutMs }));
  }

  async withAdminTransaction<T>(work: (session: AdminSession) => Promise<T>, options: AdminOptions = {}): Promise<T> {
    return this.writeLock.run(async () => {
      const session: AdminSession = {
        exec: async (sql) => void (await this.writerCall({ op: 'exec', sql })),
        query: (sql, params = []) => this.writerRows({ op: 'query', sql, params }),
        copyCsv: async (table, columns, csv) => void (await this.writerCall({ op: 'copy', table, columns, csv })),
      };
      await session.exec('BEGIN');
      let result: T;
      try {
        result = await work(session);
        await session.exec('COMMIT');
      } catch (error) {
        await session.exec('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        // Even a failed COMMIT may have changed what the readers must see; a spare snapshot costs little. Writes no
        // tool query can read (the audit trail) do not make one: it would copy the data directory per batch.
        if (options.visibleToReaders !== false) this.readers.markWritten();
      }
      return result;
    });
  }

  /** Test-only: the live worker engines (readers first, then the writer), to kill them at random moments. */
  async enginesForTests(): Promise<{ readers: EngineWorker[]; writer: EngineWorker | undefined; readersRoot: string }> {
    return {
      readers: await this.readers.engines(),
      writer: await this.writer.catch(() => undefined),
      readersRoot: `${this.options.dataDir}.readers`,
    };
  }

  async close(): Promise<void> {
    await this.writeLock.run(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.readers.close();
      const writer = await this.writer.catch(() => undefined);
      await writer?.stop();
      this.directoryLock.release();
    });
  }
}

/** A bounded statement's rows without their hidden columns, cut where the bounds say. */
function boundedRowSet(result: WorkerRows, bounds: ResultBounds): RowSet {
  const outcome = boundedOutcome(result.rows, bounds);
  const width = result.columns.length - BOUND_COLUMNS;
  const rows = result.rows.slice(0, outcome.keep).map((row) => row.slice(0, width));
  return {
    columns: result.columns.slice(0, width),
    rows,
    rowCount: rows.length,
    truncated: outcome.truncatedBy !== undefined,
    ...(outcome.truncatedBy ? { truncatedBy: outcome.truncatedBy } : {}),
  };
}

/** An error's position, reported in the bounded statement, moved back into the caller's SQL (or dropped). */
function withPositionIn(sql: string, error: unknown): unknown {
  if (!(error instanceof QueryError) || error.position === undefined) return error;
  const position = positionInQuery(sql, error.position);
  return new QueryError(error.message, {
    ...(error.sqlState ? { sqlState: error.sqlState } : {}),
    ...(error.hint ? { hint: error.hint } : {}),
    ...(error.detail ? { detail: error.detail } : {}),
    ...(position !== undefined ? { position } : {}),
  });
}

function toRowSet(result: WorkerRows): RowSet {
  return { columns: result.columns, rows: result.rows, rowCount: result.rows.length, truncated: result.truncated };
}
