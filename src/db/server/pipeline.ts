// One identity-scoped query in one round trip: a pg "Submittable" (the interface pg-cursor implements) that writes
// the whole transaction at once and reads its answer:
//
//   Bind/Execute  BEGIN READ ONLY
//   Bind/Execute  SELECT set_config('zava.ctx', <signed context>, true), set_config('statement_timeout', <ms>, true),
//                        set_config('role', <head office: the every-store role (migration 17); others: none>, true)
//   Parse/Bind/Describe/Execute  <the bounded query> (db/bounded.ts)
//   Bind/Execute  ROLLBACK
//   Bind/Execute  SELECT pg_advisory_unlock_all()
//   Sync
//
// Only a failed query needs a follow-up: PostgreSQL skips the rest up to Sync after an error and leaves the
// transaction aborted, so the caller sends ROLLBACK (and the unlock) then. The fixed statements are prepared
// once per connection (named, parsed with the first exchange), so each call parses only its own query.
//
// The query itself is prepared too when the connection has run the same text before (ConnectionStatements): parsing,
// rewriting and planning a tool query costs PostgreSQL 0.07–0.15 ms a call (measured: a one-row lookup 0.33 →
// 0.23 ms, an eight-row aggregate 0.51 → 0.35 ms per round trip), and assistants, dashboards and the typed tools
// send the same statements again and again. What a cached plan may not change:
// - Row Level Security: the policies' checks are init plans that run at execution, against the context of that
//   transaction, never folded in at planning; and PostgreSQL plans again when the statement runs under another
//   role than it was planned for (head office's every-store role, managers' query role) or another search_path.
// - Only statements without parameters are cached (their plan is the same whatever the call), and only texts up
//   to MAX_CACHED_STATEMENT_CHARS, at most STATEMENT_CACHE_SIZE and STATEMENT_CACHE_CHARS per connection, so
//   what a caller can make PostgreSQL hold stays small; the least recently used is closed (a Close message, sent
//   with the connection's next exchange). Connections are also replaced after ZAVA_POOL_MAX_USES calls.
// - A statement whose exchange failed is closed and forgotten (it may not exist: a Parse error). A statement
//   whose table changed shape since it was planned fails with 0A000 "cached plan must not change result type":
//   the caller runs it again unprepared (ServerDatabase.query).
//
// Why nothing a query does outlives its call on the pooled connection: every setting is transaction-local or, if
// made at session level inside the transaction (set_config(..., false)), undone by ROLLBACK (PostgreSQL reverts
// SET and set_config of an aborted transaction); a query inside the wrapper can only be a SELECT, so it cannot
// PREPARE, DECLARE, LISTEN, SET or end the transaction; session-level advisory locks, which survive ROLLBACK, are
// released by pg_advisory_unlock_all(). The transaction status PostgreSQL reports at Sync is checked too ('I').
import type pg from 'pg';
import { BOUND_COLUMNS, boundedOutcome, boundedSelect, type ResultBounds } from '../bounded.js';
import type { ColumnInfo, RowSet, SqlParam } from '../types.js';

const STATEMENTS = {
  begin: { name: 'zava_begin', text: 'BEGIN READ ONLY' },
  context: {
    name: 'zava_context',
    text: `SELECT set_config('zava.ctx', $1, true), set_config('statement_timeout', $2, true), set_config('role', $3, true)`,
  },
  end: { name: 'zava_end', text: 'ROLLBACK' },
  unlock: { name: 'zava_unlock', text: 'SELECT pg_advisory_unlock_all()' },
} as const;

/** The pieces of pg's Connection a submittable writes with (see pg/lib/connection.js). */
interface WireConnection {
  parse(query: { name?: string; text: string; types?: number[] }): void;
  close(message: { type: 'S' | 'P'; name: string }): void;
  bind(config: { statement?: string; portal?: string; values?: (string | null)[] }): void;
  describe(message: { type: 'P' | 'S'; name?: string }): void;
  execute(config: { portal?: string; rows?: number }): void;
  sync(): void;
  stream: { cork(): void; uncork(): void };
}

interface Field {
  readonly name: string;
  readonly dataTypeID: number;
}

type TypeParser = (text: string) => unknown;

/**
 * Tool statements kept prepared on one connection; see the file comment. A plan's memory in PostgreSQL grows with
 * its text: up to ~300 bytes a character (measured: an 8,000-character UNION ALL of 65 joins holds 2.4 MB), so
 * what a connection keeps is bounded by the total length of its statements' texts: ~5 MB at the worst.
 */
export const STATEMENT_CACHE_SIZE = 64;
export const STATEMENT_CACHE_CHARS = 16_384;
export const MAX_CACHED_STATEMENT_CHARS = 4_096;

/** What one connection holds prepared: the fixed statements (parsed with its first exchange) and tool statements. */
class ConnectionStatements {
  /** Whether the fixed STATEMENTS are parsed on this connection. */
  fixedParsed = false;
  /** Statement text → its name on the connection, least recently used first. */
  readonly names = new Map<string, string>();
  /** Statements to close with the connection's next exchange. */
  readonly closing: string[] = [];
  private counter = 0;
  private chars = 0;

  newName(): string {
    return `zava_q${++this.counter}`;
  }

  /** The statement's name, now the most recently used; undefined when it is not prepared. */
  use(text: string): string | undefined {
    const name = this.names.get(text);
    if (name !== undefined) {
      this.names.delete(text);
      this.names.set(text, name);
    }
    return name;
  }

  keep(text: string, name: string): void {
    this.names.set(text, name);
    this.chars += text.length;
    for (const [oldest, oldName] of this.names) {
      if (this.names.size <= STATEMENT_CACHE_SIZE && this.chars <= STATEMENT_CACHE_CHARS) break;
      this.names.delete(oldest);
      this.chars -= oldest.length;
      this.closing.push(oldName);
    }
  }

  forget(text: string, name: string): void {
    if (this.names.get(text) === name) {
      this.names.delete(text);
      this.chars -= text.length;
    }
    this.closing.push(name);
  }
}

const connectionStatements = new WeakMap<object, ConnectionStatements>();

function statementsOf(connection: object): ConnectionStatements {
  let statements = connectionStatements.get(connection);
  if (!statements) connectionStatements.set(connection, (statements = new ConnectionStatements()));
  return statements;
}

export interface PipelineRequest {
  readonly sql: string;
  readonly params: readonly SqlParam[];
  readonly context: string;
  /** The role the statement runs as: 'none' (the query role itself) or head office's every-store role. */
  readonly role: string;
  readonly timeoutMs: number;
  readonly bounds: ResultBounds;
  readonly types: pg.CustomTypesConfig;
}

/** How the exchange ended: rows, or PostgreSQL's error (the transaction then needs the follow-up ROLLBACK). */
export type PipelineOutcome = { readonly rows: RowSet } | { readonly error: Error };

/** Stages of the exchange, counted by CommandComplete. */
const QUERY_STAGE = 2;
const STAGES = 5;

export class IdentityPipeline {
  readonly done: Promise<PipelineOutcome>;
  private settle!: (outcome: PipelineOutcome) => void;
  private stage = 0;
  private fields: Field[] = [];
  private parsers: TypeParser[] = [];
  private readonly rows: unknown[][] = [];
  private received = 0;
  private error: Error | undefined;
  private settled = false;
  /** A backstop on what arrives, should the wrapper ever not hold: the budget plus one row, with room for framing. */
  private readonly receiveLimit: number;
  /** The named statement this exchange ran, and whether it was prepared by an earlier exchange. */
  private statement: { cache: ConnectionStatements; text: string; name: string; reused: boolean } | undefined;

  constructor(private readonly request: PipelineRequest) {
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.receiveLimit = 2 * (request.bounds.maxBytes + request.bounds.maxRowBytes);
  }

  /** Called by pg when the connection is free: the whole exchange in one write. */
  submit(connection: WireConnection): void {
    const { sql, params, context, role, timeoutMs, bounds } = this.request;
    const values = params.map((p) => (p === null ? null : String(p)));
    connection.stream.cork();
    try {
      const cache = statementsOf(connection);
      if (!cache.fixedParsed) {
        for (const statement of Object.values(STATEMENTS)) connection.parse(statement);
        cache.fixedParsed = true;
      }
      connection.bind({ statement: STATEMENTS.begin.name });
      connection.execute({});
      connection.bind({ statement: STATEMENTS.context.name, values: [context, String(timeoutMs), role] });
      connection.execute({});
      for (const name of cache.closing.splice(0)) connection.close({ type: 'S', name });
      const text = boundedSelect(sql, bounds);
      if (values.length === 0 && text.length <= MAX_CACHED_STATEMENT_CHARS) {
        const reused = cache.use(text);
        const name = reused ?? cache.newName();
        if (reused === undefined) connection.parse({ name, text });
        this.statement = { cache, text, name, reused: reused !== undefined };
        connection.bind({ statement: name, values });
      } else {
        connection.parse({ text });
        connection.bind({ values });
      }
      connection.describe({ type: 'P' });
      connection.execute({});
      connection.bind({ statement: STATEMENTS.end.name });
      connection.execute({});
      connection.bind({ statement: STATEMENTS.unlock.name });
      connection.execute({});
      connection.sync();
    } finally {
      connection.stream.uncork();
    }
  }

  handleRowDescription(message: { fields: Field[] }): void {
    this.fields = message.fields.slice(0, -BOUND_COLUMNS);
    const parse = this.request.types.getTypeParser as (oid: number, format: 'text') => TypeParser;
    this.parsers = this.fields.map((f) => parse(f.dataTypeID, 'text'));
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    if (this.stage !== QUERY_STAGE || this.error) return;
    const raw = message.fields;
    for (const value of raw) this.received += value === null ? 0 : value.length;
    if (this.received > this.receiveLimit) {
      this.error = new Error(`the database sent more than ${this.receiveLimit} bytes of rows for one query`);
      return;
    }
    const row: unknown[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const value = raw[i];
      // The hidden columns stay raw: only the running end offset is read, as a number.
      row[i] = value === null || value === undefined ? null : i < this.parsers.length ? this.parsers[i]!(value) : value;
    }
    this.rows.push(row);
  }

  handleCommandComplete(): void {
    this.stage++;
  }

  handleReadyForQuery(): void {
    if (this.error) return this.finish({ error: this.error });
    if (this.stage !== STAGES) return this.finish({ error: new Error(`the exchange ended after ${this.stage} of ${STAGES} statements`) });
    const { bounds } = this.request;
    const outcome = boundedOutcome(this.rows, bounds);
    const rows = this.rows.slice(0, outcome.keep);
    for (const row of rows) row.length -= BOUND_COLUMNS;
    const columns: ColumnInfo[] = this.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
    const rowSet: RowSet = {
      columns,
      rows,
      rowCount: rows.length,
      truncated: outcome.truncatedBy !== undefined,
      ...(outcome.truncatedBy ? { truncatedBy: outcome.truncatedBy } : {}),
    };
    this.finish({ rows: rowSet });
  }

  /** PostgreSQL's error (the rest of the exchange is skipped), or the connection's. */
  handleError(error: Error): void {
    this.finish({ error });
  }

  handleEmptyQuery(): void {
    this.error ??= new Error('empty query');
  }

  handlePortalSuspended(): void {
    this.error ??= new Error('unexpected portal suspension');
  }

  // COPY cannot run inside the wrapper; should the protocol ever start one, end it rather than hang.
  handleCopyInResponse(connection: { sendCopyFail(message: string): void }): void {
    connection.sendCopyFail('COPY is not allowed');
  }

  handleCopyData(): void {}

  /** Whether the query ran as a statement an earlier exchange on this connection had prepared. */
  get reusedStatement(): boolean {
    return this.statement?.reused === true;
  }

  private finish(outcome: PipelineOutcome): void {
    if (this.settled) return;
    this.settled = true;
    const statement = this.statement;
    if (statement) {
      if ('rows' in outcome) {
        if (!statement.reused) statement.cache.keep(statement.text, statement.name);
      } else {
        statement.cache.forget(statement.text, statement.name);
      }
    }
    this.settle(outcome);
  }
}
