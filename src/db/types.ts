// The data-access contract shared by the embedded (PGlite) and server (pg) backends.
// Everything above the db layer talks to a Database, never to a driver.

export type IdentityRole = 'head_office' | 'regional_manager' | 'store_manager';

/** Who a call runs as, and which stores' rows PostgreSQL will let it see. */
export interface Identity {
  /** The manager UUID (stores.rls_user_id, a regional manager id, or the head-office UUID). */
  readonly userId: string;
  readonly role: IdentityRole;
  /** 'all' for head office; otherwise the store ids the policies will admit. */
  readonly storeIds: 'all' | readonly number[];
  /**
   * May read customer e-mail and phone in clear (the `pii:read` permission). Absent or false: PostgreSQL masks them
   * (migration 9); the flag travels in the signed RLS context, never as a plain setting.
   */
  readonly pii?: boolean;
  /**
   * Who authenticated, when that is not the manager UUID itself (jwt mode: "jwt:<sub>"). The fair queue and
   * per-identity concurrency key on it, so two token holders of one store do not share a queue and a holder who
   * narrows to several stores' identities still has one. Absent in dev mode: the UUID is the caller.
   */
  readonly subject?: string;
}

/** The key of a caller's fair share of the database: the authenticated subject, else the manager UUID. */
export function fairShareKey(identity: Identity): string {
  return identity.subject ?? identity.userId;
}

export interface ColumnInfo {
  readonly name: string;
  /** PostgreSQL type OID of the column. */
  readonly dataTypeID: number;
}

/** Rows come back as arrays in column order; values are JSON-friendly (see db/values.ts). */
export interface RowSet {
  readonly columns: readonly ColumnInfo[];
  readonly rows: unknown[][];
  /** Rows returned (after the row cap). */
  readonly rowCount: number;
  /** True when rows were dropped: more than maxRows rows, or past the byte budget (see truncatedBy). */
  readonly truncated: boolean;
  /** Which cap dropped rows, when one did: the row cap, or the byte budget (QueryOptions.maxBytes). */
  readonly truncatedBy?: 'rows' | 'bytes';
}

/** A parameter is sent as text; SQL must cast it where the type matters ($1::int, $2::vector). */
export type SqlParam = string | number | boolean | null;

export interface QueryOptions {
  /** Stop reading after this many rows and set truncated (default: db.maxRows from config). */
  readonly maxRows?: number;
  /**
   * Byte budget of the rows (their size as PostgreSQL measures it in db/bounded.ts): rows past it are not
   * sent (truncatedBy 'bytes'). Default: the backend's per-call cap. Independently, a single row larger than the
   * configured maxRowBytes fails the query (SQLSTATE 54000).
   */
  readonly maxBytes?: number;
  /**
   * Server backend: run as the query role even for head office, not as its every-store role (migration 17). For
   * statements that call PL/pgSQL functions (search): their cached plans depend on the role under Row Level
   * Security, so switching roles between callers would plan them again each time, and their store checks are on
   * small tables.
   */
  readonly queryRoleOnly?: boolean;
}

/** The one thing a caller can do inside an identity-scoped transaction: read. */
export interface ReadSession {
  query(sql: string, params?: readonly SqlParam[], options?: QueryOptions): Promise<RowSet>;
}

export interface ReadOptions {
  /** Statement timeout for every query in the transaction (default: config, 30 s). */
  readonly timeoutMs?: number;
  /**
   * Aborted when the caller is gone (HTTP request closed, MCP cancellation): a call still waiting for its turn
   * leaves the queue, a running statement is cancelled in the database at once, and the call rejects with
   * CallCancelledError.
   */
  readonly signal?: AbortSignal | undefined;
}

export type BackendKind = 'embedded' | 'server';

export interface Database {
  readonly kind: BackendKind;
  /** Whether pgvector is installed (embedded: always; server: when the extension exists). */
  readonly hasVector: boolean;
  /**
   * Resolve a manager UUID to an identity. Throws UnknownIdentityError for a missing or unknown id:
   * never falls back to head office.
   */
  resolveIdentity(userId: string | undefined | null): Promise<Identity>;
  /**
   * Run `work` as the query role, under `identity`'s RLS context, every query READ ONLY. The context is signed
   * and bound to the backend; nothing outlives the call. A backend may give each query its own transaction on
   * the same connection (the server backend does, to send each in one round trip): under READ COMMITTED each
   * statement takes its own snapshot either way, so callers must not rely on settings made by an earlier query.
   */
  withIdentity<T>(identity: Identity, work: (session: ReadSession) => Promise<T>, options?: ReadOptions): Promise<T>;
  /** Pool and breaker figures for the operators' view (GET /health?detail=1), where the backend has them. */
  operatorView?(): Record<string, unknown>;
  /**
   * Trusted owner-side statements in autocommit: reads (schema introspection, ground truth in tests) and the audit
   * trail's appends, which no tool query reads. Never pass user SQL here.
   */
  ownerQuery(sql: string, params?: readonly SqlParam[]): Promise<RowSet>;
  close(): Promise<void>;
}

/** Trusted owner-side work: migrations, seeding, imports. Runs as the connection's owner, not the query role. */
export interface AdminSession {
  /** Runs trusted SQL, possibly several statements, without parameters. */
  exec(sql: string): Promise<void>;
  query(sql: string, params?: readonly SqlParam[]): Promise<RowSet>;
  /** Bulk-loads CSV text (no header) into table(columns) with COPY. */
  copyCsv(table: string, columns: readonly string[], csv: string): Promise<void>;
}

export interface AdminOptions {
  /**
   * False when the transaction writes nothing a tool query can read (the audit trail): the embedded backend then
   * does not refresh its readers' snapshot, which copies the data directory. Default true.
   */
  readonly visibleToReaders?: boolean;
}

/** A backend as the CLI and the server hold it: the Database contract plus owner-side operations. */
export interface ManagedDatabase extends Database {
  /** Human-readable location, password-free, for messages. */
  readonly location: string;
  /** One owner transaction: everything in `work` commits together or not at all. */
  withAdminTransaction<T>(work: (session: AdminSession) => Promise<T>, options?: AdminOptions): Promise<T>;
  /**
   * Loads the RLS signing key and backend facts after migrations; must be called before withIdentity.
   * Idempotent.
   */
  prepare(): Promise<void>;
}
