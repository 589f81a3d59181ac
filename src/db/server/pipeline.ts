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

/** Connections whose fixed statements are prepared (parsed once, reused by every call on that connection). */
const prepared = new WeakSet<object>();

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
      if (!prepared.has(connection)) {
        for (const statement of Object.values(STATEMENTS)) connection.parse(statement);
        prepared.add(connection);
      }
      connection.bind({ statement: STATEMENTS.begin.name });
      connection.execute({});
      connection.bind({ statement: STATEMENTS.context.name, values: [context, String(timeoutMs), role] });
      connection.execute({});
      connection.parse({ text: boundedSelect(sql, bounds) });
      connection.bind({ values });
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

  private finish(outcome: PipelineOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(outcome);
  }
}
