// The embedded backend: PGlite (PostgreSQL in WebAssembly) with pgvector, persisted in a local directory,
// owned by a worker thread. One PostgreSQL session serves everything, so transactions are serialized here.
import { Worker } from 'node:worker_threads';
import { DatabaseUnavailableError, QueryError, QueryTimeoutError } from '../../infra/errors.js';
import { Mutex } from '../../infra/mutex.js';
import { CONTEXT_SETTING, loadContextKey, signContext } from '../context.js';
import { IdentityDirectory } from '../identity.js';
import type {
  AdminSession,
  Identity,
  ManagedDatabase,
  QueryOptions,
  ReadOptions,
  ReadSession,
  RowSet,
  SqlParam,
} from '../types.js';
import { DataDirectoryLock } from './dir-lock.js';
import type { WorkerReply, WorkerRequest, WorkerRows } from './protocol.js';

export interface EmbeddedOptions {
  readonly dataDir: string;
  readonly statementTimeoutMs: number;
  readonly maxRows: number;
}

const WORKER_STACK_MB = 64;
const ENGINE_OVERFLOW = /unnamed prepared statement does not exist|bad buffer ID/;

interface WorkerHandle {
  readonly worker: Worker;
  readonly backendPid: number;
  readonly pending: Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>;
}

export class EmbeddedDatabase implements ManagedDatabase {
  readonly kind = 'embedded' as const;
  readonly hasVector = true;
  readonly location: string;
  private readonly lock = new Mutex();
  private readonly identities: IdentityDirectory;
  private handle: Promise<WorkerHandle>;
  private nextId = 1;
  private contextKey: Buffer | undefined;
  private closed = false;

  private constructor(
    private readonly options: EmbeddedOptions,
    private readonly directoryLock: DataDirectoryLock,
  ) {
    this.location = `embedded database at ${options.dataDir}`;
    this.handle = this.startWorker();
    this.identities = new IdentityDirectory((sql) => this.ownerQuery(sql));
  }

  static async open(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
    const directoryLock = DataDirectoryLock.acquire(options.dataDir);
    const db = new EmbeddedDatabase(options, directoryLock);
    try {
      await db.handle;
    } catch (error) {
      directoryLock.release();
      throw error;
    }
    return db;
  }

  private async startWorker(): Promise<WorkerHandle> {
    // PostgreSQL's recursion (deep expressions) runs on this thread's stack as WebAssembly frames. With the
    // default 4 MB, V8 overflows before PostgreSQL's own max_stack_depth check can raise a clean error, and the
    // overflow leaves PGlite in a broken state; with 64 MB the check fires first.
    const worker = new Worker(new URL('./worker.js', import.meta.url), { resourceLimits: { stackSizeMb: WORKER_STACK_MB } });
    const pending: WorkerHandle['pending'] = new Map();
    worker.on('message', (reply: WorkerReply) => {
      const waiter = pending.get(reply.id);
      if (!waiter) return;
      pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else {
        const { message, code, ...info } = reply.error;
        waiter.reject(new QueryError(message, { ...info, ...(code ? { sqlState: code } : {}) }));
      }
    });
    const failAll = (error: Error) => {
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    };
    worker.on('error', (error) => failAll(new DatabaseUnavailableError(`embedded database worker failed: ${error.message}`)));
    worker.on('exit', () => failAll(new DatabaseUnavailableError('embedded database worker stopped')));
    const partial = { worker, pending, backendPid: 0 };
    try {
      const opened = (await this.send(partial, { op: 'open', dataDir: this.options.dataDir })) as { backendPid: number };
      return { ...partial, backendPid: opened.backendPid };
    } catch (error) {
      await worker.terminate();
      throw new DatabaseUnavailableError(
        `cannot open the ${this.location}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }

  private send(handle: Omit<WorkerHandle, 'backendPid'>, request: WorkerRequest, timeoutMs?: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      handle.pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          handle.pending.delete(id);
          reject(new QueryTimeoutError(timeoutMs));
          this.restartWorker(handle.worker);
        }, timeoutMs);
      }
      handle.worker.postMessage({ id, request });
    });
  }

  /** A statement ran past its timeout: stop the WebAssembly PostgreSQL where it stands and reopen. */
  private restartWorker(stuck: Worker): void {
    const restarted = stuck.terminate().then(() => this.startWorker());
    this.handle = restarted;
    restarted.catch(() => undefined); // surfaced to the next caller that awaits the handle
  }

  private async call(request: WorkerRequest, timeoutMs?: number): Promise<unknown> {
    if (this.closed) throw new DatabaseUnavailableError('the embedded database is closed');
    const handle = await this.handle;
    try {
      return await this.send(handle, request, timeoutMs);
    } catch (error) {
      // A statement so large or deep that it overflowed the WebAssembly stack surfaces as a lost prepared
      // statement (or worse); PGlite may not be sound after that, so it is reopened.
      if (error instanceof QueryError && ENGINE_OVERFLOW.test(error.message)) {
        if ((await this.handle.catch(() => undefined)) === handle) {
          this.restartWorker(handle.worker);
        }
        throw new QueryError('the statement is too large or too deeply nested for the embedded database', {
          sqlState: '54001',
          hint: 'Simplify the expression or split the query.',
        });
      }
      throw error;
    }
  }

  private async rows(request: WorkerRequest, timeoutMs?: number): Promise<RowSet> {
    const result = (await this.call(request, timeoutMs)) as WorkerRows;
    return { columns: result.columns, rows: result.rows, rowCount: result.rows.length, truncated: result.truncated };
  }

  async prepare(): Promise<void> {
    this.contextKey = await loadContextKey((sql) => this.ownerQuery(sql));
  }

  resolveIdentity(userId: string | undefined | null): Promise<Identity> {
    return this.identities.resolve(userId);
  }

  async withIdentity<T>(identity: Identity, work: (session: ReadSession) => Promise<T>, options: ReadOptions = {}): Promise<T> {
    const key = this.contextKey;
    if (!key) throw new DatabaseUnavailableError('the database is not prepared: call prepare() after migrating');
    const timeoutMs = options.timeoutMs ?? this.options.statementTimeoutMs;
    // The caller gets its answer as soon as the work is done; the transaction is rolled back afterwards, still
    // under the lock, so the next transaction starts clean while this caller is already on its way.
    return new Promise<T>((resolve, reject) => {
      this.lock
        .run(async () => {
          const handle = await this.handle;
          const token = signContext(key, identity, handle.backendPid);
          // The token is ours (hex, digits, dots and dashes), safe as a literal, and no other session exists in
          // PGlite that could see the statement text.
          if (!/^[0-9a-zA-Z.*-]+$/.test(token)) throw new Error('unexpected characters in the signed context');
          // BEGIN travels with the first statement (one worker round trip fewer); work that sends nothing
          // opens no transaction.
          let begin: string | undefined =
            `BEGIN READ ONLY; SELECT set_config('${CONTEXT_SETTING}', '${token}', true), set_config('search_path', 'pg_catalog, retail', true)`;
          const session: ReadSession = {
            query: async (sql: string, params: readonly SqlParam[] = [], queryOptions: QueryOptions = {}) => {
              if ((await this.handle) !== handle) throw new QueryError('the transaction was cancelled by an earlier timeout');
              const request: WorkerRequest = {
                op: 'sandbox',
                sql,
                params,
                maxRows: queryOptions.maxRows ?? this.options.maxRows,
                ...(begin ? { begin } : {}),
              };
              begin = undefined;
              return this.rows(request, timeoutMs);
            },
          };
          try {
            resolve(await work(session));
          } catch (error) {
            reject(error);
          }
          // A timeout replaced the worker, and with it the transaction; otherwise end it. Rolling back also undoes
          // any session-level setting made inside the transaction (set_config(..., false) is transactional), and
          // the sandbox cannot commit, so the next call starts clean. If even ROLLBACK fails, the session is in
          // an unknown state: reopen it.
          if (begin === undefined && (await this.handle.catch(() => undefined)) === handle) {
            await this.call({ op: 'exec', sql: 'ROLLBACK' }).catch(async () => {
              if ((await this.handle.catch(() => undefined)) === handle) this.restartWorker(handle.worker);
            });
          }
        })
        .catch(reject);
    });
  }

  ownerQuery(sql: string, params: readonly SqlParam[] = []): Promise<RowSet> {
    return this.lock.run(() => this.rows({ op: 'query', sql, params }));
  }

  async withAdminTransaction<T>(work: (session: AdminSession) => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      const session: AdminSession = {
        exec: async (sql) => void (await this.call({ op: 'exec', sql })),
        query: (sql, params = []) => this.rows({ op: 'query', sql, params }),
        copyCsv: async (table, columns, csv) => void (await this.call({ op: 'copy', table, columns, csv })),
      };
      await session.exec('BEGIN');
      try {
        const result = await work(session);
        await session.exec('COMMIT');
        return result;
      } catch (error) {
        await session.exec('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  async close(): Promise<void> {
    await this.lock.run(async () => {
      if (this.closed) return;
      const handle = await this.handle.catch(() => undefined);
      if (handle) {
        await this.send(handle, { op: 'close' }).catch(() => undefined);
        await handle.worker.terminate();
      }
      this.closed = true;
      this.directoryLock.release();
    });
  }
}
