// The server backend: a PostgreSQL 14+ reached by URL. Two pools: a small owner pool for migrations,
// seeding and identity lookups, and the query pool, which logs in as the SELECT-only query role so that
// no SQL it runs can become anyone else (a non-superuser session cannot SET ROLE or SESSION AUTHORIZATION
// to a role it is not a member of).
import pg from 'pg';
import Cursor from 'pg-cursor';
import { from as copyFrom } from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DatabaseUnavailableError, QueryError, QueryTimeoutError, ZavaError } from '../../infra/errors.js';
import type { Config } from '../../infra/config.js';
import { redactUrl } from '../../infra/config.js';
import { CONTEXT_SETTING, loadContextKey, signContext } from '../context.js';
import { IdentityDirectory } from '../identity.js';
import { VALUE_PARSERS } from '../values.js';
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

/** Our parsers for the types whose default conversion would differ from the embedded backend. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    VALUE_PARSERS[oid] ?? pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** Client-side backstop: if the server-side timeout was disabled from inside the query, cancel it anyway. */
const WATCHDOG_GRACE_MS = 2_000;

export function queryRoleUrl(config: Pick<Config, 'databaseUrl' | 'queryDatabaseUrl' | 'queryRole' | 'queryRolePassword'>): string {
  if (config.queryDatabaseUrl) return config.queryDatabaseUrl;
  const url = new URL(config.databaseUrl!);
  url.username = config.queryRole;
  url.password = config.queryRolePassword ?? '';
  return url.toString();
}

function toQueryError(error: unknown, timeoutMs?: number): Error {
  if (error instanceof ZavaError) return error;
  const e = error as pg.DatabaseError;
  if (e?.code === '57014' && timeoutMs !== undefined) return new QueryTimeoutError(timeoutMs);
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    const position = Number(e.internalPosition ?? e.position);
    return new QueryError(e.message, {
      sqlState: e.code,
      ...(e.hint ? { hint: e.hint } : {}),
      ...(e.detail ? { detail: e.detail } : {}),
      ...(Number.isFinite(position) ? { position } : {}),
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}

interface ConnectionState {
  /** It ran something that was not a read: discard it rather than reuse it. */
  dirty: boolean;
  /** It stopped answering within the deadline: destroy it without cleanup. */
  abandoned: boolean;
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
  private readonly queryPool: pg.Pool;
  private readonly identities: IdentityDirectory;
  private contextKey: Buffer | undefined;

  private constructor(private readonly config: Config) {
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
    this.queryPool = new pg.Pool({
      ...common,
      connectionString: queryRoleUrl(config),
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
    // An idle client's error (server restart) must not crash the process; the next checkout reconnects.
    this.ownerPool.on('error', () => undefined);
    this.queryPool.on('error', () => undefined);
    this.identities = new IdentityDirectory((sql) => this.ownerQuery(sql));
  }

  /** Opens the owner pool and checks the server is reachable; does not need the schema to exist. */
  static async open(config: Config): Promise<ServerDatabase> {
    const db = new ServerDatabase(config);
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
  }

  resolveIdentity(userId: string | undefined | null): Promise<Identity> {
    return this.identities.resolve(userId);
  }

  async withIdentity<T>(identity: Identity, work: (session: ReadSession) => Promise<T>, options: ReadOptions = {}): Promise<T> {
    const key = this.contextKey;
    if (!key) throw new DatabaseUnavailableError('the database is not prepared: call prepare() after migrating');
    const timeoutMs = options.timeoutMs ?? this.config.statementTimeoutMs;
    let client: pg.PoolClient;
    try {
      client = await this.queryPool.connect();
    } catch (error) {
      throw new DatabaseUnavailableError(`cannot connect as the query role to ${this.location}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const backendPid = (client as unknown as { processID: number }).processID;
    const connection: ConnectionState = { dirty: false, abandoned: false };
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`SELECT set_config('${CONTEXT_SETTING}', $1, true), set_config('statement_timeout', $2, true)`, [
        signContext(key, identity, backendPid),
        String(timeoutMs),
      ]);
      const session: ReadSession = {
        query: (sql: string, params: readonly SqlParam[] = [], queryOptions: QueryOptions = {}) =>
          this.readCursor(client, backendPid, sql, params, queryOptions.maxRows ?? this.config.maxRows, timeoutMs, connection),
      };
      return await work(session);
    } catch (error) {
      throw toQueryError(error, timeoutMs);
    } finally {
      // End the transaction and undo any session-level setting the query made, so the pooled connection
      // carries nothing into the next call. A connection that ran a statement which was not a read, or on
      // which the cleanup failed, is discarded instead of returned to the pool. One that stopped answering is
      // destroyed without waiting for it.
      let discard: Error | undefined = connection.abandoned ? new Error('connection abandoned after a timeout') : undefined;
      if (!discard) {
        try {
          await client.query('ROLLBACK; RESET ALL');
        } catch (error) {
          discard = error as Error;
        }
      }
      client.release(discard ?? connection.dirty);
    }
  }

  /** Runs one statement over the extended protocol (one statement on the wire) and reads at most maxRows + 1. */
  private async readCursor(
    client: pg.PoolClient,
    backendPid: number,
    sql: string,
    params: readonly SqlParam[],
    maxRows: number,
    timeoutMs: number,
    connection: ConnectionState,
  ): Promise<RowSet> {
    const cursor = new Cursor(sql, params.map((p) => (p === null ? null : String(p))), { rowMode: 'array', types });
    // COPY is no read: let the protocol run to its end (drain COPY OUT, fail COPY IN), then refuse it below.
    Object.assign(cursor, {
      handleCopyData: () => undefined,
      handleCopyInResponse: (wire: { sendCopyFail(message: string): void }) => wire.sendCopyFail('COPY is not allowed'),
    });
    client.query(cursor);
    // Backstop for a statement whose server-side timeout was switched off from inside, or a connection that
    // stopped answering: cancel it on the server and abandon the connection.
    let watchdog: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      watchdog = setTimeout(() => {
        connection.abandoned = true;
        void this.cancelBackend(backendPid);
        reject(new QueryTimeoutError(timeoutMs));
      }, timeoutMs + WATCHDOG_GRACE_MS);
    });
    try {
      const rows = (await Promise.race([cursor.read(maxRows + 1), deadline])) as unknown[][];
      const fields = (cursor as unknown as { _result: { fields: { name: string; dataTypeID: number }[] } })._result.fields;
      if (fields.length === 0 || client.getTransactionStatus() !== 'T') {
        // It ran, but it was not a read (SET, LISTEN, PREPARE, COMMIT...): refuse it and drop the connection.
        connection.dirty = true;
        throw new QueryError('only statements that return rows can run here');
      }
      const truncated = rows.length > maxRows;
      return rowSet(fields, truncated ? rows.slice(0, maxRows) : rows, truncated);
    } catch (error) {
      throw toQueryError(error, timeoutMs);
    } finally {
      clearTimeout(watchdog);
      if (!connection.abandoned) await cursor.close().catch(() => undefined);
    }
  }

  /** Cancels a runaway statement from a separate connection of the same role. */
  private async cancelBackend(pid: number): Promise<void> {
    const client = new pg.Client({ connectionString: queryRoleUrl(this.config), connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      await client.query('SELECT pg_cancel_backend($1::int)', [pid]);
    } catch {
      // Best effort: the server-side statement_timeout is the primary mechanism.
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async ownerQuery(sql: string, params: readonly SqlParam[] = []): Promise<RowSet> {
    try {
      const result = await this.ownerPool.query({ text: sql, values: [...params], rowMode: 'array', types });
      return rowSet(result.fields, result.rows as unknown[][], false);
    } catch (error) {
      throw toQueryError(error);
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
      throw toQueryError(error);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.ownerPool.end(), this.queryPool.end()]);
  }
}

/** Feeds a large string to COPY in 1 MiB pieces instead of one giant buffer. */
function* chunks(text: string, size = 1 << 20): Generator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}
