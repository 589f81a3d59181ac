// One error hierarchy for the whole server: each class carries a stable code and a message written for the
// person (or model) who has to act on it. Stack traces never leave the process.

export class ZavaError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Configuration or command-line input that cannot work; raised before anything is changed. */
export class ConfigError extends ZavaError {
  constructor(message: string) {
    super('config_invalid', message);
  }
}

/** A missing or unknown identity. Never answered with head-office rights. */
export class UnknownIdentityError extends ZavaError {
  constructor(message: string) {
    super('identity_unknown', message);
  }
}

/**
 * An authenticated caller asked for more than its token grants (an x-rls-user-id outside its stores), or its
 * token grants nothing usable. Refused before anything runs (HTTP's 403 in spirit; a tool error with
 * AUTHORIZATION_ERROR on MCP).
 */
export class AccessDeniedError extends ZavaError {
  constructor(message: string) {
    super('access_denied', message);
  }
}

/** A caller over its call rate (per identity and tool); `retryAfterMs` says when the next call may go. */
export class RateLimitedError extends ZavaError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super('rate_limited', message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The database could not be reached or opened. */
export class DatabaseUnavailableError extends ZavaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('database_unavailable', message, options);
  }
}

/** PostgreSQL refused or failed a query; message, detail and hint are PostgreSQL's own. */
export class QueryError extends ZavaError {
  readonly sqlState: string | undefined;
  readonly hint: string | undefined;
  readonly detail: string | undefined;
  readonly position: number | undefined;
  constructor(
    message: string,
    info: { sqlState?: string; hint?: string; detail?: string; position?: number } = {},
    options?: { cause?: unknown },
  ) {
    super('query_failed', message, options);
    this.sqlState = info.sqlState;
    this.hint = info.hint;
    this.detail = info.detail;
    this.position = info.position;
  }
}

/** The statement ran past its timeout and was cancelled. */
export class QueryTimeoutError extends ZavaError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('query_timeout', `canceling statement due to statement timeout (${timeoutMs} ms)`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A call waited too long for its turn at the database (every connection or worker busy, or the caller already
 * runs as many calls as its share allows). Its own message: the database itself is fine.
 */
export class QueueTimeoutError extends ZavaError {
  readonly waitedMs: number;
  constructor(waitedMs: number, message?: string) {
    super(
      'queue_timeout',
      message ??
        `the server is busy: this call waited ${waitedMs} ms for a database connection and was not run. Try again shortly, and send fewer calls at once.`,
    );
    this.waitedMs = waitedMs;
  }
}

/** One identity has too many calls waiting already; refused at once so a flood cannot grow the queue without bound. */
export class TooManyCallsError extends ZavaError {
  constructor(message: string) {
    super('too_many_calls', message);
  }
}

/** The caller went away (HTTP request closed, MCP cancellation) and its call was stopped. */
export class CallCancelledError extends ZavaError {
  constructor(message = 'the call was cancelled by its client') {
    super('cancelled', message);
  }
}

/** A data load or import that was refused before it changed anything. */
export class DataLoadError extends ZavaError {
  constructor(message: string) {
    super('data_load_refused', message);
  }
}

/**
 * The stable codes of tool errors, in the compact error shape (`code`) and structuredContent: clients branch on
 * these, never on message text.
 */
export type ToolErrorCode =
  | 'VALIDATION_ERROR'
  | 'AUTHORIZATION_ERROR'
  | 'RATE_LIMITED'
  | 'QUERY_TIMEOUT'
  | 'DATABASE_ERROR'
  | 'DATABASE_UNAVAILABLE'
  // The hosted embedding provider failed, or its breaker is open (search/provider-breaker.ts): semantic search only.
  | 'EMBEDDING_UNAVAILABLE'
  | 'INTERNAL_ERROR';

/** Codes of search's embedding-provider errors (search/provider.ts, search/provider-breaker.ts), named here to keep infra free of search. */
const EMBEDDING_FAILURES = new Set(['embedding_failed', 'embedding_unavailable']);

/** The stable code of an error thrown anywhere below the protocol layer. */
export function toolErrorCode(error: unknown): ToolErrorCode {
  if (error instanceof UnknownIdentityError || error instanceof AccessDeniedError) return 'AUTHORIZATION_ERROR';
  if (error instanceof RateLimitedError || error instanceof TooManyCallsError || error instanceof QueueTimeoutError) return 'RATE_LIMITED';
  if (error instanceof QueryTimeoutError) return 'QUERY_TIMEOUT';
  if (error instanceof DatabaseUnavailableError) return 'DATABASE_UNAVAILABLE';
  if (error instanceof QueryError) {
    // Class 42 (syntax, unknown table or column), 22 (bad data) and 0A (not supported): the query's fault.
    const state = error.sqlState ?? '';
    return /^(42|22|0A)/.test(state) ? 'VALIDATION_ERROR' : 'DATABASE_ERROR';
  }
  if (error instanceof DataLoadError || error instanceof ConfigError) return 'VALIDATION_ERROR';
  if (error instanceof ZavaError && EMBEDDING_FAILURES.has(error.code)) return 'EMBEDDING_UNAVAILABLE';
  return 'INTERNAL_ERROR';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
