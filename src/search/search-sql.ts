// The hybrid search as one SQL statement: the vector top-N (pgvector HNSW or an exact scan), the full-text top-N,
// the SKU match, the fusion (cosine plus a full-text bonus), names, and the identity's stock level. Runs as the
// caller (RLS applies).
import { EMBEDDING_CHUNK_DIMENSIONS, EMBEDDING_CHUNKS_PER_ROW } from '../db/migrations.js';
import { vectorLiteral } from './store.js';

/** Candidates taken from each ranked list before fusion. */
export const CANDIDATES = 100;
/**
 * How the two lists are fused: a product scores its cosine plus a bonus for its place in the full-text list,
 * TEXT_BONUS · (TEXT_RANK_K + 1) / (TEXT_RANK_K + rank): 0.05 for the first text hit, 0.027 for the sixth, 0.003
 * for the hundredth. The bonus brings exact terms ("15 amp", a brand, a measurement) up and breaks ties, but a
 * product that only shares a common word with the query ("cut" and "reach" in pliers, asked "cut branches that
 * are way too high to reach") no longer outranks one the embedding finds much closer. Reciprocal rank fusion of
 * both lists, used before, kept ranks only: the vector list's first and fifth products scored almost alike
 * (k = 60), so any text hit outvoted the embedding's best. Chosen on the sets whose failures have been read
 * (BENCHMARKS.md, session 13, "Cosine fusion").
 */
const TEXT_BONUS = 0.05;
const TEXT_RANK_K = 5;

/**
 * The HNSW candidate list for the vector part (transaction-local, set by the search statement itself); at least
 * CANDIDATES so the list is full. Measured at 100,000 products (BENCHMARKS.md): recall@10 against exact search
 * 0.95–0.98 at 200–400.
 */
export const HNSW_EF_SEARCH = 400;

/**
 * Scale of the integer query vector. PGlite parses floats slowly (strtof in WebAssembly: ~1.8 ms for a 1024-d
 * vector, a fifth of a search) and integers fast, so the query travels as round(x · 2^24) in an int[] and is
 * normalized back in SQL. Components are at most 1 (unit vectors), so they fit an int4, and the rounding error
 * (2^-25 per component) is below float4's own precision for the stored embeddings.
 */
const QUERY_SCALE = 2 ** 24;

/** The query-vector parameter ($1) of searchSql: a quantized int[] where pgvector exists, else a real[]. */
export function queryVectorParam(values: readonly number[], hasVector: boolean): string {
  if (hasVector) return `{${values.map((v) => Math.round(v * QUERY_SCALE)).join(',')}}`;
  return vectorLiteral(values, false);
}

/**
 * How the exact scan reads embeddings where pgvector is missing: the real[] column (executor arithmetic per
 * coordinate), or the cube chunks of migration 13 (distances in C; the same inner products to float8 precision).
 */
export type ExactScan = 'array' | 'chunks';

/**
 * The search statement. Parameters: $1 query vector (queryVectorParam), $2 query text, $3 model, $4 threshold
 * (percent), $5 max rows, $6 store id (or null). Embeddings are unit vectors, so cosine similarity is the inner
 * product — pgvector's `<#>` (negative inner product, a third of the arithmetic of `<=>`), with HNSW indexes
 * built on vector_ip_ops. Every scan is filtered on the model, so embeddings of another model are never compared.
 */
export function searchSql(hasVector: boolean, dimensions: number, efSearch?: number, exactScan: ExactScan = 'array'): string {
  const d = Math.trunc(dimensions);
  if (!hasVector && exactScan === 'chunks') return chunkSearchSql(d);
  // The query vector is computed once, in an init plan: a bare `$1::…` next to a column would be converted again
  // for every row scanned.
  const queryVector = hasVector ? `(SELECT public.l2_normalize($1::int[]::public.vector(${d})))` : `(SELECT $1::real[])`;
  // Distance = minus the cosine similarity: ascending order is the index order (ORDER BY distance LIMIT n).
  const distance = (alias: string) =>
    hasVector
      ? `(${alias}.description_embedding::public.vector(${d}) OPERATOR(public.<#>) ${queryVector})`
      : `(- zava_search.dot(${alias}.description_embedding, ${queryVector}))`;
  // hnsw.ef_search set by the statement itself (transaction-local) in an init plan evaluated before the index
  // scan starts.
  const efGate = hasVector && efSearch ? `AND (SELECT set_config('hnsw.ef_search', '${Math.trunc(efSearch)}', true)) IS NOT NULL` : '';
  // The query words as tsqueries, each in an init plan (a value, not a join): the full-text side is then a GIN
  // bitmap index scan rather than a scan of the table with a join filter.
  const anyWords = `(SELECT replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery)`;
  const allWords = `(SELECT plainto_tsquery('english', $2))`;
  const vectorTop = `SELECT e.product_id, ${distance('e')} AS distance
                FROM retail.product_description_embeddings e
               WHERE e.dimensions = ${d} AND e.model = $3 ${efGate}
               ORDER BY distance
               LIMIT ${CANDIDATES}`;
  const cosOf = `(SELECT round((- ${distance('e')})::numeric, 4) FROM retail.product_description_embeddings e
                               WHERE e.product_id = h.product_id AND e.model = $3)`;
  return fusionSql(vectorTop, cosOf, allWords, anyWords);
}

/**
 * The exact scan over the cube chunks of migration 13 (a PostgreSQL without pgvector where cube could be created).
 * The query is cut into the same 100-coordinate cubes once, in init plans; a product's inner product is
 * (Σ ‖a_k‖² + ‖q‖² − Σ ‖a_k − q_k‖²) / 2 over its rows (eight cubes each), summed in one pass over the chunk
 * table (one aggregate, no per-product subquery). Ties in the top-N are broken by product id (the real[] scan
 * leaves exact ties in sort order); the ranking then rounds to 4 decimals exactly as the other scans do.
 */
function chunkSearchSql(d: number): string {
  const n = EMBEDDING_CHUNK_DIMENSIONS;
  const perRow = EMBEDDING_CHUNKS_PER_ROW;
  const cubes = Math.ceil(d / n);
  const queryCube = (k: number) => `(SELECT zava_search.cube(($1::real[])[${k * n + 1} : ${(k + 1) * n}]::double precision[]))`;
  const queryNorm = `(SELECT sum(x::double precision * x) FROM unnest($1::real[]) AS x)`;
  // Σ ‖a_k − q_k‖² over the cubes of one row, by its part number.
  const parts = Array.from({ length: Math.ceil(cubes / perRow) }, (_, part) => {
    const terms: string[] = [];
    for (let j = 0; j < perRow && part * perRow + j < cubes; j++) terms.push(`(c.c${j} OPERATOR(zava_search.<->) ${queryCube(part * perRow + j)}) ^ 2`);
    return `WHEN ${part} THEN ${terms.join(' + ')}`;
  });
  const rowTerm = `c.norm2 - CASE c.part ${parts.join(' ')} END`;
  // Each row's term is computed below the aggregate (OFFSET 0 keeps the subquery apart): grouped as they were,
  // the planner sorted whole rows, cubes included, before a group aggregate.
  const vectorTop = `SELECT t.product_id, - (sum(t.term) + ${queryNorm}) / 2 AS distance
                FROM (SELECT c.product_id, ${rowTerm} AS term
                        FROM zava_search.embedding_chunks c
                       WHERE c.dimensions = ${d} AND c.model = $3
                      OFFSET 0) t
               GROUP BY t.product_id
               ORDER BY distance, t.product_id
               LIMIT ${CANDIDATES}`;
  const cosOf = `(SELECT round(((sum(${rowTerm}) + ${queryNorm}) / 2)::numeric, 4) FROM zava_search.embedding_chunks c
                               WHERE c.product_id = h.product_id AND c.model = $3)`;
  return fusionSql(vectorTop, cosOf, `(SELECT plainto_tsquery('english', $2))`, `(SELECT replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery)`);
}

/** rankedSearchSql's cosine for a product id without an embedding (read as NULL; not NULL itself: see vector-memory.ts). */
export const NO_EMBEDDING = 32_767;

/**
 * The search with the vector part ranked by the caller (src/search/vector-memory.ts: the exact scan in the server
 * process, where pgvector is missing). Parameters: $1 the vector top-N product ids (int[]), $2–$6 as searchSql,
 * $7 every product's cosine rounded to 4 decimals, times 10,000 (int[], indexed by product id − $8 + 1;
 * NO_EMBEDDING where a product has none), $8 the lowest product id, $9 the embeddings version the ranking was computed
 * from. zava_search.embeddings_at($9) raises (SQLSTATE ZV001) unless the statement's own snapshot holds exactly
 * those embeddings (migration 16), and each candidate must still have a visible embedding of the model: the ranking
 * only orders product ids, everything returned is read here, as the caller, under RLS. The rest is the statement
 * of the other scans, so the answers are the same row for row.
 */
export function rankedSearchSql(): string {
  const cos = (id: string) => `nullif(($7::int[])[${id} - $8::int + 1], ${NO_EMBEDDING}) * 0.0001`;
  const vectorTop = `SELECT v.product_id, - ${cos('v.product_id')} AS distance
                FROM unnest($1::int[]) AS v(product_id)
               WHERE (SELECT zava_search.embeddings_at($9::bigint))
                 AND EXISTS (SELECT 1 FROM retail.product_description_embeddings e WHERE e.product_id = v.product_id AND e.model = $3)`;
  const cosOf = `(SELECT ${cos('h.product_id')} FROM retail.product_description_embeddings e WHERE e.product_id = h.product_id AND e.model = $3)`;
  return fusionSql(vectorTop, cosOf, `(SELECT plainto_tsquery('english', $2))`, `(SELECT replace(plainto_tsquery('english', $2)::text, ' & ', ' | ')::tsquery)`);
}

/** The statement around the vector part: the vector top-N (`vectorTop`: product_id, distance) and a product's cosine (`cosOf`). */
function fusionSql(vectorTop: string, cosOf: string, allWords: string, anyWords: string): string {
  return `
    WITH vec AS (
      SELECT v.product_id, round((- v.distance)::numeric, 4) AS cos FROM (${vectorTop}) v
    ),
    txt AS (
      SELECT t.product_id, t.all_words, row_number() OVER (ORDER BY t.rank DESC, t.product_id) AS r
        FROM (SELECT e.product_id, round(ts_rank_cd(e.search_document, ${anyWords})::numeric, 6) AS rank,
                     e.search_document @@ ${allWords} AS all_words
                FROM retail.product_description_embeddings e
               WHERE e.search_document @@ ${anyWords} AND e.model = $3) t
       ORDER BY r
       LIMIT ${CANDIDATES}
    ),
    hits AS (
      SELECT u.product_id, max(u.cos) AS cos, min(u.tr) AS tr, bool_or(u.is_sku) AS is_sku, bool_or(u.all_words) AS all_words
        FROM (SELECT product_id, cos, NULL::bigint AS tr, false AS is_sku, NULL::boolean AS all_words FROM vec
              UNION ALL SELECT product_id, NULL, r, false, all_words FROM txt
              UNION ALL SELECT p.product_id, NULL, NULL, true, NULL FROM retail.products p WHERE upper(p.sku) = upper(btrim($2))) u
       GROUP BY u.product_id
    ),
    scored AS MATERIALIZED (
      -- Candidates from one list only are looked up by key for what the other list would have told: the
      -- similarity of a text or SKU hit, and whether a vector hit has every query word (only needed when more
      -- products matched a word than the text list holds).
      SELECT h.product_id, h.is_sku,
             coalesce(h.all_words,
                      (SELECT count(*) >= ${CANDIDATES} FROM txt)
                      AND (SELECT e.search_document @@ ${allWords} FROM retail.product_description_embeddings e
                            WHERE e.product_id = h.product_id AND e.model = $3),
                      false) AS all_words,
             coalesce(h.cos, ${cosOf}) AS cos, h.tr
        FROM hits h
    ),
    top AS (
      SELECT s.*, coalesce(s.cos, 0) + ${TEXT_BONUS} * coalesce(${TEXT_RANK_K + 1}.0 / (${TEXT_RANK_K} + s.tr), 0) AS score
        FROM scored s
       WHERE s.is_sku OR s.all_words OR s.cos * 100 >= $4::numeric
       ORDER BY s.is_sku DESC, score DESC, s.cos DESC, s.product_id
       LIMIT $5::int
    )
    -- The answer rows (at most max_rows) are looked up by key: a lateral subquery kept apart (OFFSET 0) so the
    -- planner does not hash-join the whole products table for a handful of rows. The stock level is only read
    -- for an identity with one store (a NULL store id skips the lookup and its row-level-security check).
    SELECT p.product_id, p.sku, p.product_name,
           (SELECT category_name FROM retail.categories WHERE category_id = p.category_id),
           (SELECT type_name FROM retail.product_types WHERE type_id = p.type_id),
           p.base_price::numeric, p.product_description,
           round(100 * t.cos, 1) AS similarity, t.is_sku, t.all_words, t.cos * 100 >= $4::numeric AS semantic,
           CASE WHEN $6::int IS NOT NULL THEN
             (SELECT i.stock_level FROM retail.inventory i WHERE i.product_id = p.product_id AND i.store_id = $6::int)
           END,
           t.score
      FROM top t
      CROSS JOIN LATERAL (SELECT * FROM retail.products p WHERE p.product_id = t.product_id OFFSET 0) p
     ORDER BY t.is_sku DESC, t.score DESC, t.cos DESC, p.product_id`;
}
