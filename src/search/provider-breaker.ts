// A circuit breaker in front of a hosted embedding provider (issue 12, Resilience: "Same for Redis and for the
// embedding provider"), with cockatiel like the database's (src/db/resilience.ts).
// Decisions:
// - Only query embedding (what a search call waits for) goes through it. Catalog embedding at start and in
//   `embeddings rebuild` is a batch job with its own retries and its own error; it neither opens nor waits on it.
// - What counts as a failure: the provider unreachable, timing out, or answering 408, 429 or 5xx after the
//   retries of remote.ts. A 4xx that names a mistake (a bad key: 401/403, a wrong model: 404, a malformed
//   request) is configuration, not an outage: it fails its own call and counts for nothing.
// - After FAILURES_TO_OPEN such failures in a row the breaker opens: searches are answered at once with
//   EmbeddingUnavailableError (tool code EMBEDDING_UNAVAILABLE, with a retry hint and the fallback to use meanwhile)
//   instead of each waiting out the provider's timeouts and retries. After HALF_OPEN_AFTER_MS one search
//   probes; its success closes the breaker.
// - No silent fallback to full-text-only ranking: results ranked without the model would differ in kind from
//   the documented similarity_percent, so the answer says plainly that semantic search is down and points to
//   execute_sales_query with ILIKE, which works without the provider.
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { ZavaError } from '../infra/errors.js';
import { EmbeddingError, type EmbeddingProvider, type EmbedQueryOptions, ForwardingEmbeddingProvider } from './provider.js';

export const FAILURES_TO_OPEN = 5;
export const HALF_OPEN_AFTER_MS = 10_000;

/** The provider's breaker is open: search answers at once until a probe succeeds. Tool code EMBEDDING_UNAVAILABLE. */
export class EmbeddingUnavailableError extends ZavaError {
  constructor(message: string) {
    super('embedding_unavailable', message);
  }
}

/** Whether a provider failure is an outage (counts toward opening), rather than a configuration mistake. */
export function isProviderOutage(error: unknown): boolean {
  if (!(error instanceof EmbeddingError)) return false;
  const status = error.status;
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

export interface ProviderBreakerOptions {
  readonly failuresToOpen?: number;
  readonly halfOpenAfterMs?: number;
  /** Told when the breaker opens, half-opens or closes (the log). */
  readonly onStateChange?: (state: 'closed' | 'half-open' | 'open') => void;
}

/** The provider behind a breaker on query embedding; everything else passes straight through. */
export class BreakerEmbeddingProvider extends ForwardingEmbeddingProvider {
  private readonly breaker;
  private readonly halfOpenAfterMs: number;
  private readonly failuresToOpen: number;
  readonly embedQueryWithCoverage?: EmbeddingProvider['embedQueryWithCoverage'];

  constructor(inner: EmbeddingProvider, options: ProviderBreakerOptions = {}) {
    super(inner);
    this.halfOpenAfterMs = options.halfOpenAfterMs ?? HALF_OPEN_AFTER_MS;
    this.failuresToOpen = options.failuresToOpen ?? FAILURES_TO_OPEN;
    this.breaker = circuitBreaker(handleWhen(isProviderOutage), { halfOpenAfter: this.halfOpenAfterMs, breaker: new ConsecutiveBreaker(this.failuresToOpen) });
    const notify = options.onStateChange;
    if (notify) this.breaker.onStateChange((state) => notify(stateName(state)));
    if (inner.embedQueryWithCoverage) {
      const withCoverage = inner.embedQueryWithCoverage.bind(inner);
      this.embedQueryWithCoverage = (text, queryOptions) => this.guarded(() => withCoverage(text, queryOptions), queryOptions?.signal);
    }
  }

  /** 'open' while searches are refused at once. */
  get state(): 'closed' | 'half-open' | 'open' {
    return stateName(this.breaker.state);
  }

  override embedQuery(text: string, options?: EmbedQueryOptions): Promise<number[]> {
    return this.guarded(() => this.inner.embedQuery(text, options), options?.signal);
  }

  private async guarded<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await this.breaker.execute(() => work(), signal);
    } catch (error) {
      if (!(error instanceof BrokenCircuitError)) throw error;
      throw new EmbeddingUnavailableError(
        `semantic search is unavailable: the embedding provider (${this.inner.kind}) failed ${this.failuresToOpen}+ times in a row, so searches are refused at once for now. ` +
          `Try again in ${Math.ceil(this.halfOpenAfterMs / 1000)} s, or use execute_sales_query with ILIKE filters on retail.products.product_name and product_description meanwhile.`,
      );
    }
  }
}

function stateName(state: CircuitState): 'closed' | 'half-open' | 'open' {
  return state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open';
}
