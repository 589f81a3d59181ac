// semantic_search_products as a service: identity → hybrid product search (src/search) in the caller's
// identity-scoped, read-only transaction → the compact answer of execute_sales_query. A missing or unknown
// identity, missing or mixed-model embeddings and provider failures become the compact error shape with a
// message a model (or operator) can act on; nothing here answers with another identity's rows.
import type { Database, Identity } from '../db/types.js';
import { CallCancelledError, QueryError, QueryTimeoutError, QueueTimeoutError, TooManyCallsError, toolErrorCode, type ToolErrorCode } from '../infra/errors.js';
import type { Logger } from '../infra/logger.js';
import {
  EmbeddingError,
  EmbeddingModelMismatchError,
  SearchInputError,
  searchProducts,
  type EmbeddingProvider,
  type ProductSearchResponse,
} from '../search/index.js';
import { EmbeddingUnavailableError } from '../search/provider-breaker.js';
import { compactError, type CompactOutcome, type CompactResult } from './format.js';
import { describeCommonFailure, resolveCaller } from './query.js';

export interface SearchRequest {
  readonly queryDescription: string;
  readonly maxRows: number;
  readonly similarityThreshold: number;
}

/** Columns of a search answer; stock_level only when the identity has exactly one store. */
export const SEARCH_COLUMNS = ['product_name', 'sku', 'category_name', 'type_name', 'base_price', 'similarity_percent', 'match', 'product_description'] as const;
export const SEARCH_COLUMNS_WITH_STOCK = ['product_name', 'sku', 'category_name', 'type_name', 'base_price', 'similarity_percent', 'stock_level', 'match', 'product_description'] as const;

/** The search response as the compact shape: {"c":[columns],"r":[[values]],"n":rows}. */
export function compactSearch(response: ProductSearchResponse, threshold: number): CompactResult {
  // A query that embeds to the zero vector (no word the model knows) has no cosine with anything: pgvector
  // answers NaN, which PostgreSQL sorts above every threshold. Such rows matched nothing; drop them.
  const results = response.results.filter((p) => Number.isFinite(p.similarityPercent) || p.match !== 'semantic');
  if (results.length === 0) {
    return {
      c: [],
      r: [],
      n: 0,
      msg: 'No rows',
      note: `No product reached ${threshold}% similarity or contained every word of the description. Try other words, or a lower similarity_threshold (down to 20).`,
    };
  }
  const withStock = response.storeId !== null;
  const r = results.map((p) =>
    withStock
      ? [p.productName, p.sku, p.categoryName, p.typeName, p.basePrice, p.similarityPercent, p.stockLevel ?? null, p.match, p.description]
      : [p.productName, p.sku, p.categoryName, p.typeName, p.basePrice, p.similarityPercent, p.match, p.description],
  );
  return { c: [...(withStock ? SEARCH_COLUMNS_WITH_STOCK : SEARCH_COLUMNS)], r, n: r.length };
}

export class ProductSearchService {
  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    /** The embedding provider (default: searchProducts' own, from ZAVA_EMBEDDING_* environment). */
    private readonly provider?: EmbeddingProvider | undefined,
  ) {}

  /** `signal`: the call's own (aborted when its client cancels or goes away), down to the embedding queue and the database. */
  async search(caller: string | Identity | undefined, request: SearchRequest, signal?: AbortSignal): Promise<CompactOutcome> {
    const started = performance.now();
    const fail = (message: string, code: ToolErrorCode): CompactOutcome => ({ result: compactError(message, request.queryDescription, code), isError: true });
    const identity = await resolveCaller(this.db, caller);
    if ('refusal' in identity) return fail(identity.refusal, 'AUTHORIZATION_ERROR');
    try {
      const response = await searchProducts(
        this.db,
        identity,
        { query: request.queryDescription, maxRows: request.maxRows, similarityThreshold: request.similarityThreshold },
        { provider: this.provider, signal },
      );
      const result = compactSearch(response, request.similarityThreshold);
      this.log.debug({ userId: identity.userId, rows: result.n, ms: Math.round(performance.now() - started) }, 'search answered');
      return { result, isError: false };
    } catch (error) {
      return fail(this.describeFailure(error, identity), error instanceof SearchInputError ? 'VALIDATION_ERROR' : toolErrorCode(error));
    }
  }

  private describeFailure(error: unknown, identity: Identity): string {
    if (error instanceof SearchInputError) return error.message;
    if (error instanceof EmbeddingModelMismatchError) {
      this.log.warn({ err: error.message }, 'semantic search refused: stored embeddings do not match the configured provider');
      return `semantic search is unavailable: ${error.message}`;
    }
    if (error instanceof EmbeddingUnavailableError) return error.message; // the breaker is open: logged when it opened
    if (error instanceof EmbeddingError) {
      this.log.error({ err: error.message, status: error.status }, 'embedding provider failed');
      return `semantic search is unavailable right now: the embedding provider failed (${error.message}). Use execute_sales_query with ILIKE filters on retail.products.product_name and product_description instead.`;
    }
    // Waiting too long for a turn (embedding worker or database), too many calls waiting, or the client gone:
    // their messages say so already.
    if (error instanceof QueueTimeoutError || error instanceof TooManyCallsError || error instanceof CallCancelledError) {
      this.log.info({ userId: identity.userId, code: error.code }, 'search not run');
      return error.message;
    }
    if (error instanceof QueryTimeoutError) return `the search ran longer than the ${error.timeoutMs} ms statement timeout and was cancelled. Try again.`;
    if (error instanceof QueryError) {
      this.log.error({ err: error, userId: identity.userId }, 'search query failed');
      return `the search failed in the database: ${error.message}`;
    }
    return describeCommonFailure(error, identity, this.log, 'semantic_search_products', 'the search failed inside the server (logged). Try again shortly.');
  }
}
