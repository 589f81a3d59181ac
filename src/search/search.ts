// Hybrid product search: vector cosine similarity (pgvector HNSW where the extension exists; otherwise an exact
// scan, in the server process over an in-memory copy of the embeddings where one is loaded (vector-memory.ts), else
// in the database) fused with PostgreSQL full-text search over name, SKU, type, category and description: each
// product scores its cosine plus a bonus for its full-text rank (the statement: search-sql.ts). Runs inside the
// caller's identity-scoped, read-only transaction; the query is embedded before it starts, so a hosted model's
// round trip holds no transaction.
import type { Database, Identity } from '../db/types.js';
import { CallCancelledError, ZavaError } from '../infra/errors.js';
import { inSpan } from '../infra/tracing.js';
import type { EmbeddingProvider } from './provider.js';
import { createEmbeddingProvider } from './settings.js';
import { EmbeddingModelMismatchError } from './provider.js';
import { isMissingSearchFunction, rankedSearchStatement, searchStatement } from './functions.js';
import { queryVectorParam } from './search-sql.js';
import { checkStoredModel, loadCorpus } from './store.js';
import { isStaleRanking, rankInProcess } from './vector-memory.js';

export interface SearchParams {
  readonly query: string;
  /** 1..100, default 20. */
  readonly maxRows?: number;
  /** Minimum cosine similarity in percent, 20..80, default 30. Full-text matches of every query word pass too. */
  readonly similarityThreshold?: number;
}

export interface ProductSearchResult {
  readonly productId: number;
  readonly sku: string;
  readonly productName: string;
  readonly categoryName: string;
  readonly typeName: string;
  readonly basePrice: number;
  readonly description: string;
  /**
   * Cosine similarity of query and product embeddings in percent (one decimal), calibrated by how much of the
   * query the model understood (understoodShare) and raised to the best similarity ranked below it
   * (inRankOrder), so it never rises down the list.
   */
  readonly similarityPercent: number;
  /** Why it was found: the embedding, the full text (all words, or the SKU), or both. */
  readonly match: 'semantic' | 'text' | 'both' | 'sku';
  /** The identity's store stock level, when the identity has exactly one store (null when not stocked there). */
  readonly stockLevel?: number | null;
}

export interface ProductSearchResponse {
  readonly query: string;
  readonly model: string;
  readonly storeId: number | null;
  readonly results: ProductSearchResult[];
}

export class SearchInputError extends ZavaError {
  constructor(message: string) {
    super('invalid_search', message);
  }
}

export const SEARCH_DEFAULTS = { maxRows: 20, similarityThreshold: 30 } as const;

export interface SearchOptions {
  /** The embedding provider (default: from ZAVA_EMBEDDING_* environment, shared per process). */
  readonly provider?: EmbeddingProvider | undefined;
  /**
   * Aborted when the caller is gone (HTTP request closed, MCP cancellation): a query waiting for an embedding
   * worker or a database turn leaves the queue, a running statement is cancelled, and the search rejects with
   * CallCancelledError.
   */
  readonly signal?: AbortSignal | undefined;
}

function validate(params: SearchParams): { query: string; maxRows: number; threshold: number } {
  const query = typeof params.query === 'string' ? params.query.trim() : '';
  if (query.length === 0) throw new SearchInputError('query_description must be a non-empty description of the products to find');
  if (query.length > 1000) throw new SearchInputError('query_description must be at most 1000 characters');
  const maxRows = params.maxRows ?? SEARCH_DEFAULTS.maxRows;
  if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > 100) throw new SearchInputError(`max_rows must be a whole number from 1 to 100 (got ${maxRows})`);
  const threshold = params.similarityThreshold ?? SEARCH_DEFAULTS.similarityThreshold;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 20 || threshold > 80) {
    throw new SearchInputError(`similarity_threshold must be a percentage from 20 to 80 (got ${threshold})`);
  }
  return { query, maxRows, threshold };
}

interface ProviderState {
  provider: EmbeddingProvider;
  fitted: boolean;
  /** The fit in progress, shared by the searches that arrive meanwhile (the worker pool fits asynchronously). */
  fitting?: Promise<void> | undefined;
}

const providers = new WeakMap<Database, ProviderState>();
let defaultProvider: EmbeddingProvider | undefined;

function stateFor(db: Database, explicit: EmbeddingProvider | undefined): ProviderState {
  if (explicit) {
    let state = providers.get(db);
    if (!state || state.provider !== explicit) {
      state = { provider: explicit, fitted: false };
      providers.set(db, state);
    }
    return state;
  }
  let state = providers.get(db);
  if (!state) {
    defaultProvider ??= createEmbeddingProvider();
    state = { provider: defaultProvider, fitted: false };
    providers.set(db, state);
  }
  return state;
}

/** A cosine percentage no match reaches: the threshold of a query the model did not understand at all. */
const UNREACHABLE_PERCENT = 101;

/**
 * How far a query's similarities are believed, from the share of its words the model knows (coverage, 0..1):
 * fully from 60 % of the words, not at all below 30 %, linearly between. "xyzzy plugh" (one nonsense word, one a
 * spelling correction away from "plug": coverage 0.375) keeps a quarter of its similarity and so matches
 * nothing at the default threshold, while a query with one unknown brand name beside a known word keeps two thirds.
 */
export function understoodShare(coverage: number): number {
  if (!Number.isFinite(coverage)) return 1;
  return Math.min(1, Math.max(0, (coverage - 0.3) / 0.3));
}

/**
 * The similarity shown with each result, made to read in rank order: results are ranked by fusing the vector
 * and full-text rankings, so a full-text hit can rank above a product with a higher cosine. Each result shows
 * its own calibrated similarity or, when higher, the best one ranked below it: the ranker placed it above
 * that match, so it is at least as relevant. The percentages then never rise down the list.
 */
export function inRankOrder(results: ProductSearchResult[]): ProductSearchResult[] {
  let best = -Infinity;
  const out = new Array<ProductSearchResult>(results.length);
  for (let i = results.length - 1; i >= 0; i--) {
    const result = results[i]!;
    if (Number.isFinite(result.similarityPercent)) best = Math.max(best, result.similarityPercent);
    out[i] = Number.isFinite(best) && best > result.similarityPercent ? { ...result, similarityPercent: best } : result;
  }
  return out;
}

/**
 * semantic_search_products: products ranked by hybrid similarity to `query`, each with a similarity
 * percentage, and the identity's stock level when it has exactly one store. Runs through db.withIdentity.
 */
export async function searchProducts(db: Database, identity: Identity, params: SearchParams, options: SearchOptions = {}): Promise<ProductSearchResponse> {
  const { query, maxRows, threshold } = validate(params);
  const state = stateFor(db, options.provider);
  const storeId = identity.storeIds !== 'all' && identity.storeIds.length === 1 ? identity.storeIds[0]! : null;

  const { signal } = options;
  const fit = (): Promise<void> =>
    (state.fitting ??= (async () => {
      try {
        // Not cancelled with this caller: searches that arrive meanwhile wait for the same fit.
        const corpus = await db.withIdentity(identity, (session) => loadCorpus((sql, p) => session.query(sql, p, { maxRows: 10_000_000 })));
        await state.provider.fit(corpus);
        state.fitted = true;
      } finally {
        state.fitting = undefined;
      }
    })());

  /** `inProcess`: rank the vector part in this process when a current copy of the embeddings is loaded. */
  const run = async (refit: boolean, inProcess = true): Promise<ProductSearchResponse> => {
    const { provider } = state;
    if (provider.needsCorpus && (!state.fitted || refit)) await fit();
    // The model name is read with the query embedding, so a refit finishing meanwhile cannot pair a vector of one
    // fit with the name of another.
    const model = provider.model;
    const embedOptions = { key: identity.userId, signal };
    const { vector, coverage } = await inSpan('embedding.query', { 'zava.embedding.provider': provider.kind }, async () =>
      provider.embedQueryWithCoverage
        ? provider.embedQueryWithCoverage(query, embedOptions)
        : { vector: await provider.embedQuery(query, embedOptions), coverage: 1 },
    );
    // A query already in a worker runs to its end; its caller, if gone meanwhile, stops here.
    if (signal?.aborted) throw new CallCancelledError();
    const understood = understoodShare(coverage);
    // The statement compares raw cosine with the threshold: a partly understood query must reach proportionally
    // more (none at all when nothing was understood) for its semantic matches to count.
    const cosineThreshold = understood > 0 ? Math.min(threshold / understood, UNREACHABLE_PERCENT) : UNREACHABLE_PERCENT;
    // Computed before the transaction: it holds no connection while the CPU works.
    const ranking = inProcess && !db.hasVector ? rankInProcess(db, identity, model, provider.dimensions, vector) : undefined;
    const params = ranking
      ? [ranking.topIds, query, model, cosineThreshold, maxRows, storeId, ranking.cosines, ranking.baseId, ranking.version]
      : [queryVectorParam(vector, db.hasVector), query, model, cosineThreshold, maxRows, storeId];
    return db.withIdentity(identity, async (session) => {
      await checkStoredModel(db, session, model, provider.dimensions);
      const sql = ranking ? await rankedSearchStatement(db, session) : await searchStatement(db, session, db.hasVector, provider.dimensions);
      const result = await session.query(sql, params, { maxRows, queryRoleOnly: true });
      // Nothing found: make sure it is not because the stored embeddings changed model meanwhile.
      if (result.rowCount === 0) await checkStoredModel(db, session, model, provider.dimensions, true);
      const results = result.rows.map((r): ProductSearchResult => {
        const [productId, sku, name, category, type, price, description, similarity, isSku, allWords, semantic, stock] = r;
        const match: ProductSearchResult['match'] = isSku ? 'sku' : semantic && allWords ? 'both' : semantic ? 'semantic' : 'text';
        return {
          productId: Number(productId),
          sku: String(sku),
          productName: String(name),
          categoryName: String(category),
          typeName: String(type),
          basePrice: Number(price),
          description: String(description),
          similarityPercent: Math.round(Number(similarity) * understood * 10) / 10,
          match,
          ...(storeId !== null ? { stockLevel: stock === null || stock === undefined ? null : Number(stock) } : {}),
        };
      });
      return { query, model, storeId, results: inRankOrder(results) };
    }, { signal });
  };

  // The embeddings changed since this process copied them (the statement checked): the in-database scan answers
  // this search, and a reload has started.
  const attempt = (refit: boolean): Promise<ProductSearchResponse> =>
    run(refit).catch((error: unknown) => {
      if (isStaleRanking(db, identity, state.provider.model, state.provider.dimensions, error)) return run(refit, false);
      throw error;
    });

  try {
    return await attempt(false);
  } catch (error) {
    // The catalog may have changed since the local model was fitted (an import in another process): refit once.
    if (error instanceof EmbeddingModelMismatchError && state.provider.needsCorpus && state.fitted) return attempt(true);
    // The search function was dropped by a newer server version: the retry looks again (or runs inline).
    if (isMissingSearchFunction(db, error)) return attempt(false);
    throw error;
  }
}
