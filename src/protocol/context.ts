// What every tool needs, shared by all MCP server instances of one process (HTTP builds a server per
// request; stdio builds one), and who is calling.
import type { Database } from '../db/types.js';
import type { Logger } from '../infra/logger.js';
import type { QueryService } from '../analytics/query.js';
import type { SchemaService } from '../analytics/schema.js';

/** Semantic product search, plugged in by the search module when it lands (src/search). */
export interface ProductSearch {
  search(
    userId: string | undefined,
    request: { queryDescription: string; maxRows: number; similarityThreshold: number },
  ): Promise<{ result: Record<string, unknown>; text: string; isError: boolean }>;
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

/** The caller of one request (HTTP) or of the whole process (stdio). */
export interface Caller {
  /** The manager UUID as given (x-rls-user-id or --rls-user-id); resolved, and refused if unknown, per call. */
  readonly userId: string | undefined;
  readonly transport: 'http' | 'stdio';
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
