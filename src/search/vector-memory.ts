// The exact vector scan in the server process, for product search on a PostgreSQL without pgvector (issue 14).
// In PostgreSQL the exact scan costs ~10 µs of CPU per 1,024-dimension product even over cube chunks (migration
// 13; BENCHMARKS.md), 15 ms of a search at 1,000 products and 135 ms at 10,000. Here each model's embeddings are
// held coordinate-major (dense, or only the non-zeros where that is smaller), the query's inner product with every
// product is computed in JS over the non-zero terms only, and the search statement receives the top-N product ids and every
// product's rounded cosine (search-sql.ts rankedSearchSql), so full text, fusion, stock and RLS stay in the one
// statement and the answers stay those of the in-database scan, row for row.
//
// Decision, made here: the copy is current exactly when its embeddings version (migration 16) is the one the
// search statement's own snapshot sees; the statement checks it and refuses (ZV001) otherwise. Any write to the
// embeddings (an import, a rebuild, on any server sharing the database) therefore takes effect on the next
// search: the refused search runs again with the in-database scan, and a reload starts in the background; until it
// is done searches use the in-database scan. Searches never wait for a load.
//
// The copy is read as the caller (the query role under the signed context, RLS applying). The embeddings' policy
// is the same for every identity (is_authenticated, migration 2), so one copy ranks for all of them; the
// statement still re-reads every candidate's embedding row, and every returned field, as the caller.
//
// Memory: at most 4 bytes per coordinate (4 MB per 1,000 products at 1,024 dimensions; the local model's mostly
// zero vectors take ~1.8 MB, stored sparse), bounded by ZAVA_SEARCH_MEMORY_MB (default 256) per database handle on
// products × dimensions × 4 bytes: a catalog above it keeps the in-database scan.
import type { Database, Identity, ReadSession } from '../db/types.js';
import { ConfigError, QueryError } from '../infra/errors.js';
import { CANDIDATES, NO_EMBEDDING } from './search-sql.js';

export const DEFAULT_SEARCH_MEMORY_MB = 256;

/** ZAVA_SEARCH_MEMORY_MB: the most embedding memory a database handle holds (0: always the in-database scan). */
export function searchMemoryBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.ZAVA_SEARCH_MEMORY_MB?.trim();
  if (raw === undefined || raw === '') return DEFAULT_SEARCH_MEMORY_MB * 1024 * 1024;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`ZAVA_SEARCH_MEMORY_MB must be a whole number of megabytes (got "${raw}")`);
  return Number(raw) * 1024 * 1024;
}

/** SQLSTATE of zava_search.embeddings_at: the embeddings changed since the copy was loaded. */
export const STALE_EMBEDDINGS_SQLSTATE = 'ZV001';

/**
 * Product ids are the index of the cosine array the statement receives: a catalog whose ids are spread over more
 * than this many times its size (plus a margin) keeps the in-database scan rather than send mostly NULLs.
 */
const MAX_ID_SPREAD = 4;
const ID_SPREAD_MARGIN = 1024;
/** Rows per load statement (each a few KB of text): every statement stays far under a session's byte budget. */
const LOAD_PAGE = 1000;
/** After a failed or refused load (over the cap), how long before another is tried. */
const RETRY_MS = 30_000;

/** One model's embeddings, as of one embeddings version. */
export interface Matrix {
  readonly version: string;
  /** Product ids, ascending. */
  readonly ids: Int32Array;
  /** Coordinate-major: coordinate k of product i at k · n + i (dense embeddings). */
  readonly columns?: Float32Array | undefined;
  /** Or, for mostly-zero embeddings (the local model's), only the non-zeros of each coordinate: see toSparse. */
  readonly sparse?: SparseColumns | undefined;
  readonly bytes: number;
  readonly n: number;
  /** How long the load took (ms). */
  readonly loadMs: number;
}

interface Slot {
  readonly model: string;
  readonly dimensions: number;
  matrix?: Matrix | undefined;
  loading?: Promise<void> | undefined;
  /** No load before this time (after a failure, or a catalog over the cap or too spread out). */
  retryAt: number;
}

const slots = new WeakMap<object, Slot>();

/** What a search statement needs from the in-process ranking (parameters $1, $7, $8, $9 of rankedSearchSql). */
export interface VectorRanking {
  readonly topIds: string;
  /** Every product's cosine, rounded (roundCosine), indexed by product id − baseId; NO_EMBEDDING where none. */
  readonly cosines: string;
  readonly baseId: number;
  readonly version: string;
}

/**
 * The vector ranking for `query` from the in-memory copy, or undefined when there is none for this model yet (a
 * load then starts in the background, read as `identity`).
 */
export function rankInProcess(db: Database, identity: Identity, model: string, dimensions: number, query: readonly number[]): VectorRanking | undefined {
  if (db.hasVector) return undefined; // the HNSW path
  const slot = slotFor(db, model, dimensions);
  const matrix = slot.matrix;
  if (!matrix) {
    startLoad(db, identity, slot);
    return undefined;
  }
  return rank(matrix, query);
}

/** The search statement refused the copy (ZV001): drop it and load the current embeddings in the background. */
export function isStaleRanking(db: Database, identity: Identity, model: string, dimensions: number, error: unknown): boolean {
  if (!(error instanceof QueryError) || error.sqlState !== STALE_EMBEDDINGS_SQLSTATE) return false;
  const slot = slotFor(db, model, dimensions);
  slot.matrix = undefined;
  slot.retryAt = 0;
  startLoad(db, identity, slot);
  return true;
}

/** The load in progress for a database handle, if any (tests and benches wait for it). */
export function vectorLoad(db: object): Promise<void> {
  return slots.get(db)?.loading ?? Promise.resolve();
}

/** Whether a database handle holds a current-looking copy for this model (tests and benches). */
export function hasVectorCopy(db: object, model: string): boolean {
  const slot = slots.get(db);
  return slot?.model === model && slot.matrix !== undefined;
}

/** The copy a database handle holds: products, bytes of embeddings, and how long it took to load (benches). */
export function vectorCopyStats(db: object): { products: number; bytes: number; loadMs: number } | undefined {
  const matrix = slots.get(db)?.matrix;
  return matrix && { products: matrix.n, bytes: matrix.bytes, loadMs: matrix.loadMs };
}

function slotFor(db: object, model: string, dimensions: number): Slot {
  let slot = slots.get(db);
  // One model per handle: the configured provider's (a refit of the local model is a new model name).
  if (!slot || slot.model !== model || slot.dimensions !== dimensions) {
    slot = { model, dimensions, retryAt: 0 };
    slots.set(db, slot);
  }
  return slot;
}

function startLoad(db: Database, identity: Identity, slot: Slot): void {
  if (slot.loading || Date.now() < slot.retryAt) return;
  const capBytes = searchMemoryBytes();
  slot.loading = db
    .withIdentity(identity, (session) => loadMatrix(session, slot.model, slot.dimensions, capBytes), { timeoutMs: 120_000 })
    .then((matrix) => {
      if (slots.get(db) !== slot) return;
      slot.matrix = matrix;
      if (!matrix) slot.retryAt = Date.now() + RETRY_MS;
    })
    .catch(() => {
      slot.retryAt = Date.now() + RETRY_MS; // searches keep the in-database scan meanwhile
    })
    .finally(() => {
      slot.loading = undefined;
    });
}

/**
 * Reads one model's embeddings in pages by product id. Every page also reads the embeddings version; pages of
 * different versions (a write between them) start the load again, so the copy is one version's embeddings exactly.
 * Undefined: no embeddings, over the memory cap, or ids too spread out.
 */
async function loadMatrix(session: ReadSession, model: string, dimensions: number, capBytes: number): Promise<Matrix | undefined> {
  const started = performance.now();
  for (let attempt = 0; attempt < 5; attempt++) {
    const head = await session.query(
      `SELECT (SELECT version FROM zava_search.embeddings_version)::text, count(*)::int, min(product_id), max(product_id)
         FROM retail.product_description_embeddings WHERE model = $1 AND dimensions = $2::int`,
      [model, dimensions],
    );
    const [version, count, minId, maxId] = head.rows[0] as [string, number, number | null, number | null];
    const n = Number(count);
    if (n === 0 || n * dimensions * 4 > capBytes || Number(maxId) - Number(minId) + 1 > MAX_ID_SPREAD * n + ID_SPREAD_MARGIN) return undefined;
    const ids: number[] = [];
    const vectors: Float32Array[] = [];
    let consistent = true;
    let after = -2_147_483_648;
    for (;;) {
      const page = await session.query(
        `SELECT (SELECT version FROM zava_search.embeddings_version)::text, e.product_id, e.description_embedding::text
           FROM retail.product_description_embeddings e
          WHERE e.model = $1 AND e.dimensions = $2::int AND e.product_id > $3::int
          ORDER BY e.product_id LIMIT ${LOAD_PAGE}`,
        [model, dimensions, after],
        { maxRows: LOAD_PAGE },
      );
      for (const [pageVersion, id, text] of page.rows) {
        if (String(pageVersion) !== version) consistent = false;
        ids.push(Number(id));
        vectors.push(parseVector(String(text), dimensions));
      }
      if (!consistent || page.rowCount < LOAD_PAGE) break;
      after = ids[ids.length - 1]!;
    }
    if (!consistent || ids.length !== n) continue;
    return { ...buildMatrix(version, ids, vectors, dimensions), loadMs: performance.now() - started };
  }
  return undefined; // written to throughout: the in-database scan, tried again later
}

/**
 * The in-memory layout of one version's embeddings (`ids` ascending): sparse columns when that is smaller (8 bytes a
 * non-zero against 4 a coordinate; the local model's embeddings are 25–36 % non-zeros, and the scan then does about
 * half the work), else dense columns. `layout` forces one (tests: both give the same sums).
 */
export function buildMatrix(
  version: string,
  ids: readonly number[],
  vectors: readonly Float32Array[],
  dimensions: number,
  layout?: 'dense' | 'sparse',
): Omit<Matrix, 'loadMs'> {
  const n = ids.length;
  let nonZero = 0;
  for (const v of vectors) for (let k = 0; k < dimensions; k++) if (v[k] !== 0) nonZero++;
  const base = { version, ids: Int32Array.from(ids), n };
  if (layout === 'sparse' || (layout === undefined && nonZero * 2 < n * dimensions)) {
    return { ...base, sparse: toSparse(vectors, dimensions, nonZero), bytes: nonZero * 8 + (dimensions + 1) * 4 };
  }
  const columns = new Float32Array(n * dimensions);
  for (let i = 0; i < n; i++) {
    const v = vectors[i]!;
    for (let k = 0; k < dimensions; k++) columns[k * n + i] = v[k]!;
  }
  return { ...base, columns, bytes: columns.byteLength };
}

/** Compressed sparse columns: coordinate k's non-zeros are products rows[starts[k] … starts[k + 1]), in product order. */
interface SparseColumns {
  readonly starts: Int32Array;
  readonly rows: Int32Array;
  readonly values: Float32Array;
}

function toSparse(vectors: readonly Float32Array[], dimensions: number, nonZero: number): SparseColumns {
  const starts = new Int32Array(dimensions + 1);
  for (const v of vectors) for (let k = 0; k < dimensions; k++) if (v[k] !== 0) starts[k + 1]!++;
  for (let k = 0; k < dimensions; k++) starts[k + 1]! += starts[k]!;
  const next = starts.slice(0, dimensions);
  const rows = new Int32Array(nonZero);
  const values = new Float32Array(nonZero);
  vectors.forEach((v, i) => {
    for (let k = 0; k < dimensions; k++) {
      if (v[k] === 0) continue;
      const at = next[k]!++;
      rows[at] = i;
      values[at] = v[k]!;
    }
  });
  return { starts, rows, values };
}

/** A real[] in PostgreSQL's text form ('{0.1,-2e-05,0,…}'): float4 values, exactly as stored. */
function parseVector(text: string, dimensions: number): Float32Array {
  const out = new Float32Array(dimensions);
  const parts = text.slice(1, -1).split(',');
  if (parts.length !== dimensions) throw new Error(`embedding has ${parts.length} coordinates, expected ${dimensions}`);
  for (let k = 0; k < dimensions; k++) out[k] = Number(parts[k]);
  return out;
}

/**
 * The exact ranking: inner products in float64 of the float4 coordinates, with the query as the in-database scan
 * receives it (8 significant digits, then float4: store.ts vectorLiteral), the top CANDIDATES by cosine with ties
 * broken by product id (as the cube scan's ORDER BY distance, product_id), and every product's cosine rounded as
 * PostgreSQL's round(float8::numeric, 4) rounds it (roundCosine).
 */
export function rank(matrix: Omit<Matrix, 'loadMs'>, query: readonly number[]): VectorRanking {
  const { n, columns, sparse, ids } = matrix;
  // Each product's sum runs over the coordinates in order; terms where either side is zero add exactly nothing
  // and are skipped (the local model's vectors are mostly zeros), so both layouts give the same sums.
  const sums = new Float64Array(n);
  for (let k = 0; k < query.length; k++) {
    const v = query[k]!;
    if (v === 0) continue;
    const q = Math.fround(Number(v.toPrecision(8)));
    if (sparse) {
      const { rows, values } = sparse;
      for (let j = sparse.starts[k]!, end = sparse.starts[k + 1]!; j < end; j++) sums[rows[j]!]! += q * values[j]!;
    } else {
      const offset = k * n;
      for (let i = 0; i < n; i++) sums[i]! += q * columns![offset + i]!;
    }
  }
  // The CANDIDATES-th largest cosine; products above it, then those equal to it in id order.
  const take = Math.min(CANDIDATES, n);
  const cut = kthLargest(sums.slice(), take);
  const top: number[] = [];
  for (let i = 0; i < n; i++) if (sums[i]! > cut) top.push(ids[i]!);
  for (let i = 0; i < n && top.length < take; i++) if (sums[i] === cut) top.push(ids[i]!);
  // Dense by product id; NO_EMBEDDING (not NULL) where there is none: PostgreSQL finds an element of an array with
  // NULLs by counting from the start (6 ms for 200 look-ups at 10,000 products), of one without by offset.
  const baseId = ids[0]!;
  const span = ids[n - 1]! - baseId + 1;
  const cosines = new Array<number>(span).fill(NO_EMBEDDING);
  for (let i = 0; i < n; i++) cosines[ids[i]! - baseId] = roundCosine(sums[i]!);
  return { topIds: `{${top.join(',')}}`, cosines: `{${cosines.join(',')}}`, baseId, version: matrix.version };
}

/** The k-th largest value (1-based) of `values`, which it reorders (Hoare's selection: linear on average). */
function kthLargest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  const target = values.length - k; // its index in ascending order
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const swap = values[i]!;
        values[i++] = values[j]!;
        values[j--] = swap;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return values[target]!;
}

/**
 * round(x::numeric, 4) · 10,000 as PostgreSQL computes it: float8 to numeric keeps 15 significant digits, then
 * rounds half away from zero. Away from a tie the plain product rounds the same; within 1e-9 of one the decimal
 * text decides, as it does in PostgreSQL.
 */
export function roundCosine(x: number): number {
  const scaled = x * 10_000;
  const floor = Math.floor(scaled);
  if (Math.abs(scaled - floor - 0.5) > 1e-9) return Math.round(scaled) + 0; // + 0: no -0 in the text
  const text = x.toPrecision(15);
  if (/e/.test(text)) return 0; // |x| < 1e-6
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const digits = fraction.padEnd(5, '0');
  let magnitude = Number(whole) * 10_000 + Number(digits.slice(0, 4));
  if (digits[4]! >= '5') magnitude++;
  return negative && magnitude !== 0 ? -magnitude : magnitude;
}
