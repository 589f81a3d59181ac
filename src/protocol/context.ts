// What every tool needs, shared by all MCP server instances of one process (HTTP keeps a pool of servers,
// one per request in progress; stdio builds one per connection), and who is calling.
import type { ServerContext } from '@modelcontextprotocol/server';
import type { Database } from '../db/types.js';
import type { Logger } from '../infra/logger.js';
import type { QueryService } from '../analytics/query.js';
import type { SchemaService } from '../analytics/schema.js';
import type { CompactResult } from '../analytics/format.js';

/**
 * semantic_search_products as a service (src/analytics/product-search.ts over src/search): the caller's
 * identity → ranked products in the compact shape of execute_sales_query, or the compact error shape.
 */
export interface ProductSearch {
  search(
    userId: string | undefined,
    request: { queryDescription: string; maxRows: number; similarityThreshold: number },
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
}

/** What a tool handler knows about the request it came in: its HTTP headers (none on stdio) and its signal. */
export interface CallInfo {
  readonly headers?: { get(name: string): string | null } | undefined;
  /** Aborted when the client cancels the call or its HTTP request closes (the SDK aborts handlers on close). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Adapts a tool handler written against CallInfo to the SDK's callback: the SDK's context (v2: `ctx.http.req`,
 * `ctx.mcpReq.signal`) is read in this one place, so the tools do not depend on its shape.
 */
export function withCall<A, R>(handler: (args: A, call: CallInfo) => Promise<R>): (args: A, ctx: ServerContext) => Promise<R> {
  return (args, ctx) => handler(args, { headers: ctx.http?.req?.headers, signal: ctx.mcpReq.signal });
}

/**
 * Who is calling. HTTP servers are pooled and reused across requests, so the identity is never stored on a
 * server: it is read per tool call from that call's own request (the x-rls-user-id header); stdio has one
 * identity for the process (--rls-user-id). Resolved, and refused if missing or unknown, per call.
 */
export interface Caller {
  readonly transport: 'http' | 'stdio';
  /** The manager UUID as given for this call, or undefined. */
  userIdOf(call: CallInfo): string | undefined;
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
