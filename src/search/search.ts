// Hybrid product search: vector cosine similarity (pgvector HNSW where the extension exists, an exact scan over
// real[] otherwise) fused with PostgreSQL full-text search over name, SKU, type, category and description by
// reciprocal rank fusion. Runs inside the caller's identity-scoped, read-only transaction.
import type { Database, Identity } from '../db/types.js';
import { ZavaError } from '../infra/errors.js';
import type { EmbeddingProvider } from './provider.js';
import { createEmbeddingProvider } from './settings.js';
import { EmbeddingModelMismatchError } from './provider.js';
import { checkStoredModel, loadCorpus, vectorLiteral } from './store.js';

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
/**
 * Weight of the full-text list in the fusion. Full text matches any query word (so "15 amp" and SKUs are never
 * lost), which also ranks products that share one common word; at half weight it breaks ties and adds exact
 * terms without outvoting the embedding.
 */
const TEXT_WEIGHT = 0.5;

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

/**
 * The HNSW candidate list for the vector part (transaction-local, set by the search statement itself); at least
 * CANDIDATES so the list is full. Measured at 100,000 products with the indexes of migration 4 (m 32,
 * ef_construction 128): recall@10 against exact 0.951 at 200, 0.976 at 400, median 4.8 and 6.3 ms.
 */
export const HNSW_EF_SEARCH = 400;

/**
 * The search in one statement (one round trip, one plan): the vector top-N (pgvector HNSW or an exact scan), the
 * full-text top-N, the SKU match, reciprocal rank fusion, names, and the identity's stock level. Parameters:
 * $1 query vector, $2 query text, $3 model, $4 threshold (percent), $5 max rows, $6 store id (or null). Every
 * scan is filtered on the model, so embeddings of another model are never compared, even before the (cached)
 * model check notices them. Written to plan quickly (PGlite plans it on every call): the candidate set is a
 * materialized CTE and names are looked up by key, which keeps each join search small.
 */
export function searchSql(hasVector: boolean, dimensions: number, efSearch?: number): string {
  const d = Math.trunc(dimensions);
  // The query vector is parsed once, in an init plan: a bare `$1::vector` next to a column would be parsed again
  // for every row scanned (the sandbox passes parameters as text), which costs more than the distances.
  const queryVector = hasVector ? `(SELECT $1::public.vector(${d}))` : `(SELECT $1::real[])`;
  // The cosine similarity of a stored embedding, and the distance the index orders by (ORDER BY distance LIMIT n).
  const similarity = (alias: string) =>
    hasVector
      ? `(1 - (${alias}.description_embedding::public.vector(${d}) OPERATOR(public.<=>) ${queryVector}))`
      : `zava_search.dot(${alias}.description_embedding, ${queryVector})`;
  const distance = hasVector
    ? `e.description_embedding::public.vector(${d}) OPERATOR(public.<=>) ${queryVector}`
    : `zava_search.dot(e.description_embedding, ${queryVector})`;
  const fromDistance = hasVector ? '1 - v.distance' : 'v.distance';
  // Optionally, hnsw.ef_search set by the statement itself (transaction-local) in an init plan evaluated before
  // the index scan starts — for callers whose transaction has not set it already.
  const efGate = hasVector && efSearch ? `AND (SELECT set_config('hnsw.ef_search', '${Math.trunc(efSearch)}', true)) IS NOT NULL` : '';
  // The query words as tsqueries, each in an init plan (a value, not a join): the full-text side is then a GIN
  // bitmap index scan rather than a scan of the table with a join filter.
  const anyWords = `(SELECT replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery)`;
  const allWords = `(SELECT plainto_tsquery('english', $2))`;
  return `
    WITH vec AS (
      SELECT v.product_id, round((${fromDistance})::numeric, 4) AS cos,
             row_number() OVER (ORDER BY round((${fromDistance})::numeric, 4) DESC, v.product_id) AS r
        FROM (SELECT e.product_id, ${distance} AS distance
                FROM retail.product_description_embeddings e
               WHERE e.dimensions = ${d} AND e.model = $3 ${efGate}
               ORDER BY distance${hasVector ? '' : ' DESC'}
               LIMIT ${CANDIDATES}) v
    ),
    txt AS (
      SELECT e.product_id,
             row_number() OVER (ORDER BY round(ts_rank_cd(e.search_document, ${anyWords})::numeric, 6) DESC, e.product_id) AS r
        FROM retail.product_description_embeddings e
       WHERE e.search_document @@ ${anyWords} AND e.model = $3
       ORDER BY r
       LIMIT ${CANDIDATES}
    ),
    hits AS MATERIALIZED (
      SELECT c.product_id, c.is_sku, c.vr, c.tr,
             coalesce(c.cos, round(${similarity('e')}::numeric, 4)) AS cos,
             e.search_document @@ ${allWords} AS all_words
        FROM (SELECT u.product_id, max(u.cos) AS cos, min(u.vr) AS vr, min(u.tr) AS tr, bool_or(u.is_sku) AS is_sku
                FROM (SELECT product_id, cos, r AS vr, NULL::bigint AS tr, false AS is_sku FROM vec
                      UNION ALL SELECT product_id, NULL, NULL, r, false FROM txt
                      UNION ALL SELECT p.product_id, NULL, NULL, NULL, true FROM retail.products p WHERE upper(p.sku) = upper(btrim($2))) u
               GROUP BY u.product_id) c
        JOIN retail.product_description_embeddings e ON e.product_id = c.product_id AND e.model = $3
    )
    SELECT p.product_id, p.sku, p.product_name,
           (SELECT category_name FROM retail.categories WHERE category_id = p.category_id),
           (SELECT type_name FROM retail.product_types WHERE type_id = p.type_id),
           p.base_price::numeric, p.product_description,
           round(100 * h.cos, 1) AS similarity, h.is_sku, h.all_words, h.cos * 100 >= $4::numeric AS semantic,
           (SELECT i.stock_level FROM retail.inventory i WHERE i.product_id = p.product_id AND i.store_id = $6::int),
           coalesce(1.0 / (${RRF_K} + h.vr), 0) + ${TEXT_WEIGHT} * coalesce(1.0 / (${RRF_K} + h.tr), 0) AS rrf
      FROM hits h
      JOIN retail.products p ON p.product_id = h.product_id
     WHERE h.is_sku OR h.all_words OR h.cos * 100 >= $4::numeric
     ORDER BY h.is_sku DESC, rrf DESC, h.cos DESC, p.product_id
     LIMIT $5::int`;
}

/**
 * Embedding sizes with a plan-cached search function (migration 5): the local provider (1024), nomic/ollama
 * (768), OpenAI small (1536). Other sizes run searchSql inline.
 */
export const SEARCH_FUNCTION_DIMENSIONS: readonly number[] = [768, 1024, 1536];

/** The search function for an embedding type and size (version 1: searchSql as of migration 5). */
export function searchFunctionName(hasVector: boolean, dimensions: number): string {
  return `zava_search.products_v1_${hasVector ? 'vector' : 'real'}_${Math.trunc(dimensions)}`;
}

/**
 * DDL of the search function for one embedding type and size: searchSql in a PL/pgSQL function, whose plan is
 * made once per connection and reused (a generic plan), where a statement sent as text is planned on every call
 * — at the default catalog planning cost about as much as running it. SECURITY INVOKER: it runs with the
 * caller's grants and row-level security. Created by a migration, so a change to searchSql needs a new
 * migration that creates the next version of these functions.
 */
export function createSearchFunctionSql(hasVector: boolean, dimensions: number, role: string): string {
  const name = searchFunctionName(hasVector, dimensions);
  const args = `${hasVector ? 'public.vector' : 'real[]'}, text, text, numeric, integer, integer`;
  return `
    CREATE FUNCTION ${name}(${args})
      RETURNS TABLE (r_product_id integer, r_sku text, r_product_name text, r_category_name text, r_type_name text,
                     r_base_price numeric, r_description text, r_similarity numeric, r_is_sku boolean,
                     r_all_words boolean, r_semantic boolean, r_stock_level integer, r_rrf numeric)
      LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $fn$
      BEGIN
        RETURN QUERY ${searchSql(hasVector, dimensions, hasVector ? HNSW_EF_SEARCH : undefined)};
      END
      $fn$;
    REVOKE ALL ON FUNCTION ${name}(${args}) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION ${name}(${args}) TO ${role};`;
}

/** The statement searchProducts sends: the search function where one exists for the size, else searchSql. */
export function searchStatement(hasVector: boolean, dimensions: number): string {
  if (!SEARCH_FUNCTION_DIMENSIONS.includes(Math.trunc(dimensions))) {
    return searchSql(hasVector, dimensions, hasVector ? HNSW_EF_SEARCH : undefined);
  }
  const vector = hasVector ? '$1::public.vector' : '$1::real[]';
  return `SELECT * FROM ${searchFunctionName(hasVector, dimensions)}(${vector}, $2::text, $3::text, $4::numeric, $5::int, $6::int)`;
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
      await checkStoredModel(db, session, provider.model, provider.dimensions);
      const vector = await provider.embedQuery(query);
      const sql = searchStatement(db.hasVector, provider.dimensions);
      const params = [vectorLiteral(vector, db.hasVector), query, provider.model, threshold, maxRows, storeId];
      const result = await session.query(sql, params, { maxRows });
      // Nothing found: make sure it is not because the stored embeddings changed model meanwhile.
      if (result.rowCount === 0) await checkStoredModel(db, session, provider.model, provider.dimensions, true);
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
