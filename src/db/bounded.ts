// Bounded results: PostgreSQL itself limits what a tool query sends back, so no query can make the server hold
// more than a bounded amount of result data, whatever it computes.
//
// The caller's SELECT is wrapped, in one statement (no cursor, no extra round trip):
//
//   SELECT * FROM (
//     SELECT zq.*, sum(zl.bytes) OVER (ROWS UNBOUNDED PRECEDING) AS "zava#row_end", zl.bytes AS "zava#row_bytes"
//       FROM (<the query>) AS zq
//       CROSS JOIN LATERAL (SELECT zava_bound.checked_row_bytes(octet_length(zq.*::text), <maxRowBytes>)) AS zl(bytes)
//      LIMIT <maxRows + 1>) AS zw
//    WHERE "zava#row_end" - "zava#row_bytes" < <maxBytes>
//
// - The inner LIMIT stops evaluation after maxRows + 1 rows (one more than shown, so the caller knows there were
//   more); the window aggregate is a running sum, which streams, so LIMIT stops it too.
// - Each row's text form (the record's output, an upper bound of what its columns take on the wire) is measured;
//   zava_bound.checked_row_bytes (migration 7) raises SQLSTATE 54000 "a result row is larger than N bytes" for a
//   larger one, so such a row is never sent.
// - The outer WHERE keeps rows that start before the byte budget: the rows that fit, plus the first one that
//   crosses it, which tells the caller the result was cut by size (its end is past the budget). So at most
//   maxBytes + maxRowBytes of row text arrive.
// - `zq.*` names the relation, not a column: a query with its own column `zq` cannot change what is measured.
//   Duplicate column names (SELECT 1 AS a, 2 AS a) are fine: the outer levels select by `*`, the caller drops the
//   two hidden columns by position.
// - Order is kept: a window with an empty OVER () does not sort, and neither LIMIT nor the filter reorder rows.
// - The query stays a subquery below the window, so PostgreSQL still plans it in parallel (the Gather sits under
//   the window; the check function is PARALLEL SAFE).
// - A subquery can only hold a SELECT (WITH, VALUES, TABLE and set operations included): any other statement is a
//   syntax error here, so whatever the guard let through, only a query that returns rows can run.
import { loadModule, scanSync } from 'libpg-query';

/** Hidden columns appended to every bounded result, in this order: running end offset, row size. */
export const BOUND_COLUMNS = 2;

export interface ResultBounds {
  /** Rows shown at most; one more is read to know there were more. */
  readonly maxRows: number;
  /** Largest row (text form, bytes) PostgreSQL may send; a larger one fails the query with SQLSTATE 54000. */
  readonly maxRowBytes: number;
  /** Byte budget of the result's rows (text form); rows past it are not sent, except the first that crosses it. */
  readonly maxBytes: number;
}

/** Loads PostgreSQL's scanner (WASM), which boundedSelect needs for queries with a `;` inside. Idempotent. */
export function loadBoundedScanner(): Promise<void> {
  return loadModule();
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${value})`);
  return value;
}

/**
 * The statement without semicolons around it (a subquery cannot contain one). Comments and whitespace may stay:
 * the wrapper puts the statement on lines of its own, so a trailing `-- comment` ends before the closing `)`.
 */
export function statementBody(sql: string): string {
  // Fast path: stripping `;` and whitespace from the ends is always safe (a `;` inside a literal or quoted name is
  // followed by its closing quote). Only when a `;` is left inside (a literal, a comment after the last `;`, a
  // leading `;`) does PostgreSQL's own scanner decide which `;` are tokens.
  const trimmed = sql.replace(/^[\s;]+|[\s;]+$/g, '');
  if (!trimmed.includes(';')) return trimmed;
  let tokens: { start: number; end: number; tokenName: string; text: string }[];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return trimmed; // not lexically valid: PostgreSQL reports the error itself
  }
  const real = tokens.filter((t) => t.text !== ';' && t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
  if (real.length === 0) return trimmed;
  // The scanner counts UTF-8 bytes.
  const bytes = Buffer.from(sql, 'utf8');
  return bytes.subarray(real[0]!.start, real[real.length - 1]!.end).toString('utf8');
}

const HEAD = 'SELECT * FROM (SELECT zq.*, sum(zl.bytes) OVER (ROWS UNBOUNDED PRECEDING) AS "zava#row_end", zl.bytes AS "zava#row_bytes" FROM (\n';

/**
 * An error position (1-based, as PostgreSQL reports it) in the bounded statement, as a position in the caller's
 * `sql`; undefined when it points into the wrapper.
 */
export function positionInQuery(sql: string, boundedPosition: number): number | undefined {
  const body = statementBody(sql);
  const offset = boundedPosition - HEAD.length;
  if (!Number.isFinite(offset) || offset < 1 || offset > body.length + 1) return undefined;
  return sql.indexOf(body) + offset;
}

/** `sql` (one SELECT) wrapped so that PostgreSQL enforces `bounds`; see the file comment. */
export function boundedSelect(sql: string, bounds: ResultBounds): string {
  const limit = positiveInteger('maxRows', bounds.maxRows) + 1;
  const maxRowBytes = positiveInteger('maxRowBytes', bounds.maxRowBytes);
  const maxBytes = positiveInteger('maxBytes', bounds.maxBytes);
  return (
    HEAD +
    statementBody(sql) +
    `\n) AS zq CROSS JOIN LATERAL (SELECT zava_bound.checked_row_bytes(octet_length(zq.*::text), ${maxRowBytes})) AS zl(bytes) LIMIT ${limit}) AS zw` +
    ` WHERE "zava#row_end" - "zava#row_bytes" < ${maxBytes}`
  );
}

/** What the hidden columns say about a bounded result whose rows arrived (hidden columns still attached). */
export function boundedOutcome(rows: readonly (readonly unknown[])[], bounds: ResultBounds): { keep: number; truncatedBy?: 'rows' | 'bytes' } {
  if (rows.length > bounds.maxRows) return { keep: bounds.maxRows, truncatedBy: 'rows' };
  const last = rows[rows.length - 1];
  if (last && Number(last[last.length - BOUND_COLUMNS]) > bounds.maxBytes) return { keep: rows.length, truncatedBy: 'bytes' };
  return { keep: rows.length };
}
