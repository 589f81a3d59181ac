// Messages between the embedded backend (main thread) and the worker threads that own PGlite instances.
// PGlite runs PostgreSQL as WebAssembly on the thread that calls it, and PostgreSQL's own statement_timeout
// cannot fire there; owning it from a worker keeps the server responsive and lets a runaway statement be
// cancelled by terminating the worker.
import type { ColumnInfo, SqlParam } from '../types.js';

/** How a worker opens its directory: the writer owns the data directory; a reader owns a private copy. */
export interface OpenSettings {
  readonly dataDir: string;
  /** Largest the WebAssembly heap may grow (readers): past it PostgreSQL reports "out of memory". */
  readonly heapMaxBytes?: number;
  /** PostgreSQL shared_buffers for this instance (readers use less: they are many). */
  readonly sharedBuffers?: string;
}

export type WorkerRequest =
  | { op: 'open'; settings: OpenSettings }
  | { op: 'exec'; sql: string }
  | { op: 'query'; sql: string; params: readonly SqlParam[] }
  | { op: 'copy'; table: string; columns: readonly string[]; csv: string }
  /**
   * Untrusted SQL in the sandbox, already bounded (db/bounded.ts), with its hidden columns; `maxRows`: rows read
   * at most. `begin`: SQL run first, in the same message (the identity transaction's BEGIN, sent with its first
   * statement).
   */
  | { op: 'sandbox'; sql: string; params: readonly SqlParam[]; maxRows: number; begin?: string }
  | { op: 'close' }
  /** Test-only: the worker throws outside any call, as a crash in the engine would. */
  | { op: 'crash' };

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
  /**
   * The engine itself failed (a JavaScript or WebAssembly exception, or a protocol-level PostgreSQL error that
   * only a corrupted session produces): the instance is not sound any more and must be replaced. Decided from
   * where the error came from, never from its text, which a query controls.
   */
  unsound?: boolean;
}

export type WorkerReply =
  /** heapBytes: the WebAssembly heap after the call (it never shrinks; the backend recycles a grown reader). */
  | { id: number; ok: true; value: unknown; heapBytes: number }
  | { id: number; ok: false; error: WorkerErrorInfo; heapBytes: number };
