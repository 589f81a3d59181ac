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

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
