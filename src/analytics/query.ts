// execute_sales_query as a service: identity → SQL guard → one READ ONLY transaction under the caller's RLS
// context → the compact answer. Every failure becomes the compact error shape with a message a model can act
// on; nothing here ever answers with another identity's rows or a stack trace.
import type { Database, Identity } from '../db/types.js';
import {
  CallCancelledError,
  DatabaseUnavailableError,
  QueryError,
  QueryTimeoutError,
  QueueTimeoutError,
  TooManyCallsError,
  toolErrorCode,
  type ToolErrorCode,
  UnknownIdentityError,
} from '../infra/errors.js';
import type { Logger } from '../infra/logger.js';
import { inSpan } from '../infra/tracing.js';
import { compactError, compactRows, type Caps, type CompactOutcome } from './format.js';
import type { SqlGuard } from './guard.js';

export interface QueryServiceOptions extends Caps {
  /** Longest SQL text accepted, in characters. */
  readonly maxQueryLength: number;
  /** Statement timeout for every query, in milliseconds. */
  readonly statementTimeoutMs: number;
}

/**
 * Resolves the caller, or says why not: a missing or unknown identity is refused with a message, never
 * answered as head office.
 */
export async function resolveCaller(db: Database, caller: string | Identity | undefined): Promise<Identity | { refusal: string }> {
  // The call pipeline (src/protocol/pipeline.ts) hands over the identity it resolved (dev or jwt mode).
  if (typeof caller === 'object') return caller;
  try {
    return await db.resolveIdentity(caller);
  } catch (error) {
    if (error instanceof UnknownIdentityError) return { refusal: `${error.message}. No data is available without a known identity.` };
    throw error;
  }
}

/** The failures every tool describes the same way; `unexpected` is the tool's own words for a bug. */
export function describeCommonFailure(error: unknown, identity: Identity, log: Logger, tool: string, unexpected: string): string {
  if (error instanceof UnknownIdentityError) return error.message;
  if (error instanceof DatabaseUnavailableError) {
    // The cause (driver message: user, host, port, database) is logged, never answered.
    log.error({ err: error, cause: error.cause }, 'database unavailable');
    return `the database is unavailable right now (${error.message}). Try again shortly.`;
  }
  // The database is fine: this call waited too long for its turn, its identity sent too many at once, or its
  // client went away. Each says so in its own words.
  if (error instanceof QueueTimeoutError || error instanceof TooManyCallsError) {
    log.warn({ userId: identity.userId, code: error.code }, `${tool} not run: ${error.code}`);
    return error.message;
  }
  if (error instanceof CallCancelledError) {
    log.info({ userId: identity.userId }, `${tool} cancelled by its client`);
    return error.message;
  }
  log.error({ err: error, userId: identity.userId }, `unexpected failure in ${tool}`);
  return unexpected;
}

export class QueryService {
  constructor(
    private readonly db: Database,
    private readonly guard: SqlGuard,
    private readonly options: QueryServiceOptions,
    private readonly log: Logger,
    /** Explains an empty answer whose filters name values that do not exist (see filter-hints.ts). */
    private readonly emptyAnswerHint?: (sql: string) => Promise<string | undefined>,
  ) {}

  async execute(caller: string | Identity | undefined, sql: string, signal?: AbortSignal): Promise<CompactOutcome> {
    const started = performance.now();
    const fail = (message: string, code: ToolErrorCode = 'VALIDATION_ERROR'): CompactOutcome => ({ result: compactError(message, sql, code), isError: true });
    const identity = await resolveCaller(this.db, caller);
    if ('refusal' in identity) return fail(identity.refusal, 'AUTHORIZATION_ERROR');
    if (sql.trim() === '') return fail('the query is empty: give one SELECT statement');
    if (sql.length > this.options.maxQueryLength) {
      return fail(
        `the query is ${sql.length} characters long; the limit is ${this.options.maxQueryLength}. Write a shorter query (aggregate in SQL instead of listing values).`,
      );
    }
    let verdict;
    try {
      verdict = await inSpan('sql.guard', {}, () => this.guard(sql));
    } catch (error) {
      // A guard that cannot decide refuses: the query never reaches the database.
      this.log.warn({ err: error, userId: identity.userId }, 'SQL guard failed; query refused');
      return fail('the query could not be checked, so it was refused. Simplify it and try again.', 'INTERNAL_ERROR');
    }
    if (!verdict.ok) {
      this.log.info({ userId: identity.userId, reason: verdict.reason }, 'query refused by the SQL guard');
      return fail(`query refused: ${verdict.reason ?? 'only one read-only SELECT statement is allowed'}`);
    }
    try {
      const rows = await this.db.withIdentity(identity, (session) => session.query(sql, [], { maxRows: this.options.maxRows, maxBytes: this.options.maxResultBytes }), {
        timeoutMs: this.options.statementTimeoutMs,
        signal,
      });
      const result = compactRows(rows, this.options);
      if (result.n === 0 && this.emptyAnswerHint) {
        const hint = await this.emptyAnswerHint(sql).catch(() => undefined);
        if (hint) result.note = hint;
      }
      this.log.debug({ userId: identity.userId, rows: result.n, truncated: result.truncated === true, ms: Math.round(performance.now() - started) }, 'query answered');
      return { result, isError: false };
    } catch (error) {
      return fail(this.describeFailure(error, identity), toolErrorCode(error));
    }
  }

  private describeFailure(error: unknown, identity: Identity): string {
    if (error instanceof QueryTimeoutError) {
      this.log.warn({ userId: identity.userId, timeoutMs: error.timeoutMs }, 'query cancelled at the statement timeout');
      return `the query ran longer than the ${error.timeoutMs} ms statement timeout and was cancelled. Filter to a shorter period, aggregate, or simplify joins.`;
    }
    if (error instanceof QueryError) {
      const parts = [error.message];
      if (error.detail) parts.push(`Detail: ${error.detail}`);
      if (error.hint) parts.push(`Hint: ${error.hint}`);
      if (error.position !== undefined) parts.push(`(at character ${error.position})`);
      if (error.sqlState === '42P01' || error.sqlState === '42703') parts.push('Call get_multiple_table_schemas for the exact table and column names.');
      return parts.join(' ');
    }
    return describeCommonFailure(error, identity, this.log, 'execute_sales_query', 'the query failed inside the server (logged). Try a simpler query.');
  }
}
