// The server backend: a PostgreSQL 14+ reached by URL. Two pools: a small owner pool for migrations,
// seeding and identity lookups, and the query pool, which logs in as the SELECT-only query role so that
// no SQL it runs can become anyone else (a non-superuser session cannot SET ROLE or SESSION AUTHORIZATION
// to a role it is not a member of).
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CallCancelledError,
  DatabaseUnavailableError,
  QueryError,
  QueryTimeoutError,
  ZavaError,
} from '../../infra/errors.js';
import type { Config } from '../../infra/config.js';
import { redactUrl } from '../../infra/config.js';
import { loadContextKey, signContextReused } from '../context.js';
import { DatabaseResilience } from '../resilience.js';
import { IdentityDirectory } from '../identity.js';
import { VALUE_PARSERS } from '../values.js';
import { FairScheduler } from '../fair-scheduler.js';
import { loadBoundedScanner, positionInQuery, type ResultBounds } from '../bounded.js';
import { applyTempFileLimit, everyStoreRole } from '../migrations.js';
import { IdentityPipeline } from './pipeline.js';
import { ReadRouter } from './read-router.js';
import { cancelRequest, guardConnection, WireLimitError } from './wire.js';
import type {
  AdminSession,
  ColumnInfo,
  Identity,
  ManagedDatabase,
  QueryOptions,
  ReadOptions,
  ReadSession,
  RowSet,
  SqlParam,
} from '../types.js';
import { fairShareKey } from '../types.js';

/** Our parsers for the types whose default conversion would differ from the embedded backend. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    VALUE_PARSERS[oid] ?? pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** Client-side backstop: if the server-side timeout was disabled from inside the query, cancel it anyway. */
const WATCHDOG_GRACE_MS = 2_000;

/**
 * Byte budget of a query that gives none (QueryOptions.maxBytes): internal reads (the search corpus) need more
 * than a tool answer's cap, and still stay bounded per call.
 */
const DEFAULT_SESSION_MAX_BYTES = 64 * 1024 * 1024;

/** Room above the largest row for a message's framing, column names and PostgreSQL's own error texts. */
const WIRE_SLACK_BYTES = 1024 * 1024;

/**
 * Owner connections run trusted SQL (seeding, imports) and get no tool caps; the exception barrier still applies,
 * and no message may come near V8's string limit (~512 MB), which would otherwise throw inside the parser.
 */
const OWNER_WIRE_LIMIT_BYTES = 256 * 1024 * 1024;

export function queryRoleUrl(config: Pick<Config, 'databaseUrl' | 'queryDatabaseUrl' | 'queryRole' | 'queryRolePassword'>): string {
  if (config.queryDatabaseUrl) return config.queryDatabaseUrl;
  const url = new URL(config.databaseUrl!);
  url.username = config.queryRole;
  url.password = config.queryRolePassword ?? '';
  return url.toString();
}

/** SQLSTATE classes that mean the connection or the server is gone, not that the query was wrong. */
function isConnectionFailure(sqlState: string): boolean {
  return sqlState.startsWith('08') || sqlState.startsWith('57P') || sqlState === '53300';
}

/**
 * A prepared statement whose tables changed shape since it was planned fails with 0A000 (feature_not_supported,
 * "cached plan must not change result type"). By SQLSTATE alone: a reused statement that fails with 0A000 for
 * another reason just runs once more, unprepared, and fails the same way.
 */
function isStalePlan(error: Error): boolean {
  return error instanceof pg.DatabaseError && error.code === '0A000';
}

/**
 * What a caller may see of a failure. Decided by type and SQLSTATE, never by message text (a query controls the
 * text of its own errors). PostgreSQL's errors about the query keep their message, detail, hint and position
 * (mapped back into the caller's SQL when `sql` is given); anything about the connection becomes a generic
 * DatabaseUnavailableError whose cause (logged, never answered) holds the details: user, host, port and
 * database appear in driver messages.
 */
function toPublicError(error: unknown, timeoutMs?: number, position?: (p: number) => number | undefined): Error {
  if (error instanceof ZavaError) return error;
  if (error instanceof WireLimitError) {
    return new QueryError(
      `the database answered with a message of ${error.declaredBytes} bytes (a value, row or error text larger than the ${error.limitBytes}-byte limit); the query was stopped. Select fewer or shorter columns.`,
      { sqlState: '54000' },
      { cause: error },
    );
  }
  if (error instanceof pg.DatabaseError && typeof error.code === 'string') {
    if (isConnectionFailure(error.code)) return new DatabaseUnavailableError('the connection to the database was lost', { cause: error });
    if (error.code === '57014' && timeoutMs !== undefined) return new QueryTimeoutError(timeoutMs);
    const raw = Number(error.position);
    const at = Number.isFinite(raw) ? (position ? position(raw) : raw) : undefined;
    return new QueryError(error.message, {
      sqlState: error.code,
      ...(error.hint ? { hint: error.hint } : {}),
      ...(error.detail ? { detail: error.detail } : {}),
      ...(at !== undefined ? { position: at } : {}),
    });
  }
  return new DatabaseUnavailableError('the connection to the database failed', { cause: error });
}

/** The connection of one withIdentity call, and whether it must be destroyed rather than returned to the pool. */
interface Call {
  readonly client: pg.PoolClient;
  discard: Error | undefined;
}

function rowSet(fields: readonly { name: string; dataTypeID: number }[], rows: unknown[][], truncated: boolean): RowSet {
  const columns: ColumnInfo[] = fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
  return { columns, rows, rowCount: rows.length, truncated };
}

export class ServerDatabase implements ManagedDatabase {
  readonly kind = 'server' as const;
  readonly location: string;
  hasVector = false;
  private readonly ownerPool: pg.Pool;
  private readonly reads: ReadRouter;
  private readonly identities: IdentityDirectory;
  private contextKey: Buffer | undefined;
  private readonly everyStoreRole: string;

  private readonly scheduler: FairScheduler;
  /** temp_file_limit is in the query role's configuration for this database (see prepare). */
  tempFileLimitApplied = false;

  /** Retries of transient failures and the circuit breaker around every identity-scoped read (resilience.ts). */
  readonly resilience: DatabaseResilience;

  private constructor(
    private readonly config: Config,
    warn: (message: string) => void = (message) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: message })}\n`),
  ) {
    this.resilience = new DatabaseResilience({
      onStateChange: (state) =>
        warn(state === 'open' ? 'the database is failing: circuit breaker open, calls refused at once until a probe succeeds' : `circuit breaker ${state}`),
    });
    this.everyStoreRole = everyStoreRole(config.queryRole);
    const databaseUrl = config.databaseUrl!;
    this.location = `PostgreSQL at ${redactUrl(databaseUrl)}`;
    const common = {
      connectionTimeoutMillis: config.pool.connectionTimeoutMs,
      idleTimeoutMillis: config.pool.idleTimeoutMs,
      application_name: config.pool.applicationName,
      types,
    };
    this.ownerPool = new pg.Pool({ ...common, connectionString: databaseUrl, max: 2, options: '-c jit=off -c timezone=UTC' });
    // Server settings from the seeds: JIT off for steady latency, a statement timeout, bounded memory per sort.
    // temp_file_limit cannot be set here: it is a superuser setting, and a non-superuser's startup packet that
    // sets it is refused at login; it comes from the role's configuration (prepare).
    // No driver error may escape: an idle client's error (server restart) is the pool's, a checked-out client's
    // is its call's (guardConnection listens on every client), and the wire is guarded against oversized messages.
    const ignore = () => undefined;
    const queryPool = (connectionString: string) => {
      const pool = new pg.Pool({
        ...common,
        connectionString,
        max: config.pool.max,
        maxUses: config.pool.maxUses,
        options: [
          '-c jit=off',
          '-c timezone=UTC',
          `-c statement_timeout=${config.statementTimeoutMs}`,
          '-c idle_in_transaction_session_timeout=60000',
          `-c work_mem=${config.pool.workMem}`,
          '-c search_path=pg_catalog,retail',
        ].join(' '),
      });
      pool.on('error', ignore);
      pool.on('connect', (client) => guardConnection(client, config.maxRowBytes + WIRE_SLACK_BYTES, ignore));
      return pool;
    };
    this.ownerPool.on('error', ignore);
    this.ownerPool.on('connect', (client) => guardConnection(client, OWNER_WIRE_LIMIT_BYTES, ignore));
    // Tool reads: the primary's query pool, or the hot standbys with the primary as fallback (read-router.ts).
    const primaryUrl = queryRoleUrl(config);
    this.reads = new ReadRouter(
      ReadRouter.target(primaryUrl, 'primary', queryPool(primaryUrl)),
      config.readReplicaUrls.map((url) => ReadRouter.target(url, 'standby', queryPool(url))),
      { fallback: config.readReplicaFallback, warn },
    );
    this.identities = new IdentityDirectory((sql) => this.ownerQuery(sql), { piiReadRoles: config.piiReadRoles });
    // The pool is the capacity; each identity gets a share of it, and waiting calls are served in turn.
    this.scheduler = new FairScheduler({
      capacity: config.pool.max,
      perKey: config.identityConcurrency,
      maxWaitMs: config.queueTimeoutMs,
      maxQueuedPerKey: config.identityQueueLimit,
    });
  }

  /** Opens the owner pool and checks the server is reachable; does not need the schema to exist. */
  static async open(config: Config, warn?: (message: string) => void): Promise<ServerDatabase> {
    const db = new ServerDatabase(config, warn);
    try {
      const result = await db.ownerPool.query(
        `SELECT current_setting('server_version_num')::int AS version,
                EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS vector`,
      );
      const row = result.rows[0] as { version: number; vector: boolean };
      if (row.version < 140000) throw new DatabaseUnavailableError(`PostgreSQL 14 or newer is required (found ${row.version})`);
      db.hasVector = row.vector;
    } catch (error) {
      await db.close();
      if (error instanceof DatabaseUnavailableError) throw error;
      throw new DatabaseUnavailableError(`cannot connect to ${db.location}: ${(error as Error).message}`, { cause: error });
    }
    return db;
  }

  async prepare(): Promise<void> {
    this.contextKey = await loadContextKey((sql) => this.ownerQuery(sql));
    const vector = await this.ownerQuery(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')`);
    this.hasVector = vector.rows[0]?.[0] === true;
    await loadBoundedScanner();
    await this.ensureTempFileLimit();
  }

  /**
   * Puts the configured temp_file_limit into the query role's configuration for this database when it is not
   * there yet (a changed ZAVA_TEMP_FILE_LIMIT takes effect at the next start; new connections pick it up). Where
   * the owner may not (see applyTempFileLimit), warns with what the operator must run.
   */
  private async ensureTempFileLimit(): Promise<void> {
    const wanted = this.config.tempFileLimit;
    const current = await this.ownerQuery(
      `SELECT (SELECT option_value FROM pg_db_role_setting s CROSS JOIN LATERAL pg_options_to_table(s.setconfig)
                WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) AND option_name = 'temp_file_limit')`,
      [this.config.queryRole],
    );
    const have = current.rows[0]?.[0] ?? null;
    if ((wanted === '-1' && have === null) || have === wanted) {
      this.tempFileLimitApplied = true;
      return;
    }
    this.tempFileLimitApplied = await this.withAdminTransaction((session) => applyTempFileLimit(session, this.config.queryRole, wanted));
    if (!this.tempFileLimitApplied) {
      process.emitWarning(
        `temp_file_limit ${wanted} could not be set for the query role "${this.config.queryRole}": the database owner may not. ` +
          `Run as a superuser (or an administrator role): ALTER ROLE ${this.config.queryRole} IN DATABASE <database> SET temp_file_limit = '${wanted}'`,
        { code: 'ZAVA_TEMP_FILE_LIMIT' },
      );
    }
  }

  operatorView(): Record<string, unknown> {
    const pool = (p: pg.Pool) => ({ total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount });
    return { pools: { ...this.reads.pools(), owner: pool(this.ownerPool) }, poolMax: this.config.pool.max, breaker: this.resilience.state };
  }

  resolveIdentity(userId: string | undefined | null): Promise<Identity> {
    return this.identities.resolve(userId);
  }

  async withIdentity<T>(identity: Identity, work: (session: ReadSession) => Promise<T>, options: ReadOptions = {}): Promise<T> {
    const key = this.contextKey;
    if (!key) throw new DatabaseUnavailableError('the database is not prepared: call prepare() after migrating');
    const timeoutMs = options.timeoutMs ?? this.config.statementTimeoutMs;
    const { signal } = options;
    return this.scheduler.run(
      fairShareKey(identity),
      () => this.resilience.execute(() => this.onConnection(identity, key, timeoutMs, work, signal), signal),
      signal,
    );
  }

  private async onConnection<T>(
    identity: Identity,
    key: Buffer,
    timeoutMs: number,
    work: (session: ReadSession) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const { client, target } = await this.reads.connect();
    const call: Call = { client, discard: undefined };
    try {
      if (signal?.aborted) throw new CallCancelledError();
      const session: ReadSession = {
        query: (sql: string, params: readonly SqlParam[] = [], queryOptions: QueryOptions = {}) =>
          this.query(call, identity, key, sql, params, queryOptions, timeoutMs, signal),
      };
      return await work(session);
    } catch (error) {
      // The connection, not the query, failed: a standby leaves the rotation (the retry goes elsewhere).
      if (error instanceof DatabaseUnavailableError) this.reads.markFailed(target, error.cause ?? error);
      throw error;
    } finally {
      // A connection that broke, was cancelled or stopped answering is destroyed, never reused.
      client.release(call.discard);
    }
  }

  /**
   * One query in its own READ ONLY transaction under the identity's signed context, in one round trip
   * (server/pipeline.ts). Several queries of one withIdentity run one after another on the same connection; each
   * has its own transaction, which under READ COMMITTED sees what one shared transaction would (every statement
   * takes a fresh snapshot either way), and nothing carries over between them.
   */
  private async query(
    call: Call,
    identity: Identity,
    key: Buffer,
    sql: string,
    params: readonly SqlParam[],
    options: QueryOptions,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<RowSet> {
    if (call.discard) throw new DatabaseUnavailableError('the connection to the database was lost', { cause: call.discard });
    if (signal?.aborted) throw new CallCancelledError();
    const { client } = call;
    const bounds: ResultBounds = {
      maxRows: options.maxRows ?? this.config.maxRows,
      maxRowBytes: this.config.maxRowBytes,
      maxBytes: options.maxBytes ?? DEFAULT_SESSION_MAX_BYTES,
    };
    const pid = (client as unknown as { processID: number }).processID;
    // Head office reads as the every-store role, whose policy needs no per-row store check (migration 17).
    const role = identity.storeIds === 'all' && !options.queryRoleOnly ? this.everyStoreRole : 'none';
    const exchange = new IdentityPipeline({ sql, params, context: signContextReused(key, identity, pid), role, timeoutMs, bounds, types });
    client.query(exchange as unknown as pg.Submittable);
    // Backstop for a statement whose server-side timeout was switched off from inside, or a connection that
    // stopped answering; and the caller going away. Both cancel the statement in the database at once.
    let watchdog: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const interrupted = new Promise<'timeout' | 'abort'>((resolve) => {
      watchdog = setTimeout(() => resolve('timeout'), timeoutMs + WATCHDOG_GRACE_MS);
      onAbort = () => resolve('abort');
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([exchange.done, interrupted]);
      if (outcome === 'timeout' || outcome === 'abort') {
        const error = outcome === 'abort' ? new CallCancelledError() : new QueryTimeoutError(timeoutMs);
        call.discard = error;
        void this.cancel(client, pid);
        throw error;
      }
      if ('error' in outcome) {
        await this.recover(call, outcome.error);
        // A statement prepared before its table changed shape (pipeline.ts forgot it): once more, parsed afresh.
        if (exchange.reusedStatement && isStalePlan(outcome.error) && !call.discard) {
          return await this.query(call, identity, key, sql, params, options, timeoutMs, signal);
        }
        throw toPublicError(outcome.error, timeoutMs, (p) => positionInQuery(sql, p));
      }
      // The exchange ends with its own ROLLBACK: anything else means the connection is not what we think.
      if (client.getTransactionStatus() !== 'I') call.discard = new Error(`transaction status ${client.getTransactionStatus()} after a call`);
      return outcome.rows;
    } finally {
      clearTimeout(watchdog);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** After a failed exchange: PostgreSQL's own error leaves the transaction aborted (ROLLBACK it); anything else ends the connection. */
  private async recover(call: Call, error: Error): Promise<void> {
    if (!(error instanceof pg.DatabaseError) || isConnectionFailure(String(error.code))) {
      call.discard = error;
      return;
    }
    try {
      await call.client.query('ROLLBACK; SELECT pg_advisory_unlock_all()');
      if (call.client.getTransactionStatus() !== 'I') call.discard = new Error('the transaction did not end');
    } catch (rollbackError) {
      call.discard = rollbackError as Error;
    }
  }

  /** Cancels the statement running on `client` (its connection is destroyed afterwards, so no later statement can be hit). */
  private async cancel(client: pg.PoolClient, pid: number): Promise<void> {
    const { host, port } = (client as unknown as { connectionParameters: { host: string; port: number } }).connectionParameters;
    const secretKey = (client as unknown as { secretKey: number }).secretKey;
    await cancelRequest({ host, port }, pid, secretKey);
  }

  async ownerQuery(sql: string, params: readonly SqlParam[] = []): Promise<RowSet> {
    try {
      const result = await this.ownerPool.query({ text: sql, values: [...params], rowMode: 'array', types });
      return rowSet(result.fields, result.rows as unknown[][], false);
    } catch (error) {
      throw toPublicError(error);
    }
  }

  async withAdminTransaction<T>(work: (session: AdminSession) => Promise<T>): Promise<T> {
    const client = await this.ownerPool.connect();
    const session: AdminSession = {
      exec: async (sql) => void (await client.query(sql)),
      query: async (sql, params = []) => {
        const result = await client.query({ text: sql, values: [...params], rowMode: 'array', types });
        return rowSet(result.fields, result.rows as unknown[][], false);
      },
      copyCsv: async (table, columns, csv) => {
        const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN WITH (FORMAT csv)`));
        await pipeline(Readable.from(chunks(csv)), stream);
      },
    };
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(session);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      // The work's own errors (a refused import, a bug) pass through; PostgreSQL's are described.
      throw error instanceof pg.DatabaseError ? toPublicError(error) : error;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.ownerPool.end(), this.reads.close()]);
  }
}

/** Feeds a large string to COPY in 1 MiB pieces instead of one giant buffer. */
function* chunks(text: string, size = 1 << 20): Generator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}
