// What every tool needs, shared by all MCP server instances of one process (HTTP: one for 2025-era requests and
// a pool for 2026-07-28 exchanges; stdio: one per connection), and who is calling.
import type { StatementKeys } from '../infra/cache/statement-key.js';
import type { AuthInfo } from '@modelcontextprotocol/server';
import type { CallPipeline } from './pipeline.js';
import type { Database, Identity } from '../db/types.js';
import type { AuditSink } from '../infra/audit.js';
import type { Logger } from '../infra/logger.js';
import type { QueryService } from '../analytics/query.js';
import type { SchemaService } from '../analytics/schema.js';
import type { CompactResult } from '../analytics/format.js';
import type { Readiness } from '../infra/health.js';
import type { ServerMetrics } from '../infra/metrics.js';

/**
 * semantic_search_products as a service (src/analytics/product-search.ts over src/search): the caller's
 * identity → ranked products in the compact shape of execute_sales_query, or the compact error shape.
 */
export interface ProductSearch {
  /** What the ranking depends on besides the data: the embedding provider (and a hosted one's model). */
  readonly cacheScope?: string | undefined;
  search(
    caller: string | Identity | undefined,
    request: { queryDescription: string; maxRows: number; similarityThreshold: number },
    signal?: AbortSignal,
  ): Promise<{ result: CompactResult; isError: boolean }>;
}

export interface ServerDeps {
  readonly db: Database;
  readonly queries: QueryService;
  readonly schemas: SchemaService;
  readonly search?: ProductSearch | undefined;
  readonly log: Logger;
  /** Counts calls in progress, so shutdown can wait for them. */
  readonly inFlight: InFlight;
  /** The one call pipeline every tool goes through (identity, rate limit, error codes, listeners). */
  readonly pipeline: CallPipeline;
  /** The process's Prometheus metrics (GET /metrics); absent: none. */
  readonly metrics?: ServerMetrics | undefined;
  /** What operators see at GET /health?detail=1: slow queries, pools, the breaker (absent: nothing more). */
  readonly operatorView?: (() => Record<string, unknown>) | undefined;
  /** The audit trail (issue 11): every finished tool call is recorded here; absent → not recorded. */
  readonly audit?: AuditSink | undefined;
  /** The result cache's statement keys (execute_sales_query); absent: ad-hoc SQL is not cached. */
  readonly statementKeys?: StatementKeys | undefined;
  /** What GET /ready reports (absent: always ready). */
  readonly readiness?: Readiness | undefined;
}

/**
 * The per-request identity as the HTTP edge hands it to the SDK: its auth-info pass-through, which reaches the
 * handler as `ctx.http.authInfo` on both eras without a web Request. Development mode carries the x-rls-user-id
 * header here; the OAuth work will carry the verified token in the same place.
 */
export function headerIdentity(userId: string | undefined): AuthInfo | undefined {
  return userId === undefined ? undefined : { token: '', clientId: 'x-rls-user-id', scopes: [], extra: { userId } };
}

/**
 * Who is calling, as the transport knows it. HTTP servers serve many requests, so the identity is never stored
 * on a server: it is read per tool call from that call's own request (the auth info the edge attached: the
 * x-rls-user-id header in dev mode, the verified token in jwt mode). stdio has one identity for the process:
 * --rls-user-id (dev) or its verified token (jwt). The call pipeline (pipeline.ts) resolves it per call.
 */
export interface Caller {
  readonly transport: 'http' | 'stdio';
  /** stdio, dev mode: the process's manager UUID. */
  readonly processUserId?: string | undefined;
  /** stdio, jwt mode: the process's verified token (re-verified when it expires). */
  readonly processAuthInfo?: (() => AuthInfo | undefined) | undefined;
}

/** Work in progress, counted so a graceful shutdown can drain it. */
export class InFlight {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.count++;
    try {
      return await work();
    } finally {
      this.count--;
      if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** Resolves when nothing is in flight, or after timeoutMs (then false). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
