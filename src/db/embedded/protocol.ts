// Messages between the embedded backend (main thread) and the worker thread that owns PGlite.
// PGlite runs PostgreSQL as WebAssembly on the thread that calls it, and PostgreSQL's own statement_timeout
// cannot fire there; owning it from a worker keeps the server responsive and lets a runaway statement be
// cancelled by terminating the worker.
import type { ColumnInfo, SqlParam } from '../types.js';

export type WorkerRequest =
  | { op: 'open'; dataDir: string }
  | { op: 'exec'; sql: string }
  | { op: 'query'; sql: string; params: readonly SqlParam[] }
  | { op: 'copy'; table: string; columns: readonly string[]; csv: string }
  /** `begin`: SQL run first, in the same message (the identity transaction's BEGIN, sent with its first statement). */
  | { op: 'sandbox'; sql: string; params: readonly SqlParam[]; maxRows: number; begin?: string }
  | { op: 'close' };

export interface WorkerRows {
  columns: ColumnInfo[];
  rows: unknown[][];
  truncated: boolean;
}

export interface WorkerErrorInfo {
  message: string;
  code?: string;
  hint?: string;
  detail?: string;
  position?: number;
}

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WorkerErrorInfo };
