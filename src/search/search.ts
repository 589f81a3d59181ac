// Hybrid product search: vector cosine similarity (pgvector HNSW where the extension exists, an exact scan over
// real[] otherwise) fused with PostgreSQL full-text search over name, SKU, type, category and description by
// reciprocal rank fusion. Runs inside the caller's identity-scoped, read-only transaction.
import type { Database, Identity } from '../db/types.js';
import { ZavaError } from '../infra/errors.js';
import type { EmbeddingProvider } from './provider.js';
import { createEmbeddingProvider } from './settings.js';
import { EmbeddingModelMismatchError } from './provider.js';
import { assertStoredModel, loadCorpus, vectorLiteral } from './store.js';

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
  /** Cosine similarity of query and product embeddings, in percent (one decimal). */
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
/** Candidates taken from each ranked list before fusion. */
const CANDIDATES = 100;
const RRF_K = 60;

export interface SearchOptions {
  /** The embedding provider (default: from ZAVA_EMBEDDING_* environment, shared per process). */
  readonly provider?: EmbeddingProvider;
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

function searchSql(hasVector: boolean, dimensions: number): string {
  const d = Math.trunc(dimensions);
  const queryVector = hasVector ? `$1::public.vector(${d})` : '$1::real[]';
  const similarity = (alias: string) =>
    hasVector
      ? `(1 - (${alias}.description_embedding::public.vector(${d}) OPERATOR(public.<=>) q.v))`
      : `zava_search.dot(${alias}.description_embedding, q.v)`;
  const vectorOrder = hasVector
    ? `e.description_embedding::public.vector(${d}) OPERATOR(public.<=>) q.v`
    : `zava_search.dot(e.description_embedding, q.v) DESC`;
  return `
    WITH q AS (
      SELECT ${queryVector} AS v,
             replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery AS any_words,
             plainto_tsquery('english', $2) AS all_words
    ),
    vec AS (
      SELECT e.product_id
        FROM retail.product_description_embeddings e, q
       WHERE e.dimensions = ${d}
       ORDER BY ${vectorOrder}
       LIMIT $3::int
    ),
    txt AS (
      SELECT e.product_id, round(ts_rank_cd(e.search_document, q.any_words)::numeric, 6) AS score
        FROM retail.product_description_embeddings e, q
       WHERE e.search_document @@ q.any_words
       ORDER BY score DESC, e.product_id
       LIMIT $3::int
    ),
    sku AS (
      SELECT p.product_id FROM retail.products p WHERE upper(p.sku) = upper(btrim($2))
    ),
    candidates AS (
      SELECT product_id FROM vec UNION SELECT product_id FROM txt UNION SELECT product_id FROM sku
    ),
    scored AS (
      SELECT c.product_id,
             round(${similarity('e')}::numeric, 4) AS cos,
             e.search_document @@ q.all_words AS all_words,
             EXISTS (SELECT 1 FROM sku s WHERE s.product_id = c.product_id) AS is_sku,
             t.score AS text_score
        FROM candidates c
        JOIN retail.product_description_embeddings e ON e.product_id = c.product_id
        CROSS JOIN q
        LEFT JOIN txt t ON t.product_id = c.product_id
    ),
    vr AS (
      SELECT s.product_id, row_number() OVER (ORDER BY s.cos DESC, s.product_id) AS r
        FROM scored s WHERE s.product_id IN (SELECT product_id FROM vec)
    ),
    tr AS (
      SELECT product_id, row_number() OVER (ORDER BY score DESC, product_id) AS r FROM txt
    ),
    ranked AS (
      SELECT s.*, vr.r AS vec_rank, tr.r AS text_rank
        FROM scored s LEFT JOIN vr ON vr.product_id = s.product_id LEFT JOIN tr ON tr.product_id = s.product_id
    )
    SELECT p.product_id, p.sku, p.product_name, c.category_name, t.type_name, p.base_price, p.product_description,
           round(100 * r.cos, 1) AS similarity,
           r.is_sku, r.all_words, r.cos * 100 >= $4::numeric AS semantic,
           i.stock_level,
           coalesce(1.0 / (${RRF_K} + r.vec_rank), 0) + coalesce(1.0 / (${RRF_K} + r.text_rank), 0) AS rrf
      FROM ranked r
      JOIN retail.products p ON p.product_id = r.product_id
      JOIN retail.product_types t ON t.type_id = p.type_id
      JOIN retail.categories c ON c.category_id = p.category_id
      LEFT JOIN retail.inventory i ON i.product_id = p.product_id AND i.store_id = $6::int
     WHERE r.is_sku OR r.all_words OR r.cos * 100 >= $4::numeric
     ORDER BY r.is_sku DESC, rrf DESC, r.cos DESC, p.product_id
     LIMIT $5::int`;
}

interface ProviderState {
  provider: EmbeddingProvider;
  fitted: boolean;
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

/**
 * semantic_search_products: products ranked by hybrid similarity to `query`, each with a similarity
 * percentage, and the identity's stock level when it has exactly one store. Runs through db.withIdentity.
 */
export async function searchProducts(db: Database, identity: Identity, params: SearchParams, options: SearchOptions = {}): Promise<ProductSearchResponse> {
  const { query, maxRows, threshold } = validate(params);
  const state = stateFor(db, options.provider);
  const storeId = identity.storeIds !== 'all' && identity.storeIds.length === 1 ? identity.storeIds[0]! : null;

  const run = async (refit: boolean): Promise<ProductSearchResponse> => {
    const { provider } = state;
    return db.withIdentity(identity, async (session) => {
      if (provider.needsCorpus && (!state.fitted || refit)) {
        provider.fit(await loadCorpus((sql, p) => session.query(sql, p, { maxRows: 10_000_000 })));
        state.fitted = true;
      }
      await assertStoredModel(session, provider.model, provider.dimensions, db.hasVector ? { efSearch: Math.max(40, CANDIDATES) } : {});
      const vector = await provider.embedQuery(query);
      const result = await session.query(
        searchSql(db.hasVector, provider.dimensions),
        [vectorLiteral(vector, db.hasVector), query, CANDIDATES, threshold, maxRows, storeId],
        { maxRows },
      );
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
          similarityPercent: Number(similarity),
          match,
          ...(storeId !== null ? { stockLevel: stock === null || stock === undefined ? null : Number(stock) } : {}),
        };
      });
      return { query, model: provider.model, storeId, results };
    });
  };

  try {
    return await run(false);
  } catch (error) {
    // The catalog may have changed since the local model was fitted (an import in another process): refit once.
    if (error instanceof EmbeddingModelMismatchError && state.provider.needsCorpus && state.fitted) return run(true);
    throw error;
  }
}
