// Embedding storage: each product's embedding with its model name and dimension, its full-text document and a
// content hash. Rebuilds are batched, one owner transaction per batch, and resumable: a rerun embeds only the
// products whose embedding is missing, from another model, or older than the product's text.
import { createHash } from 'node:crypto';
import { silentProgress, type Progress } from '../infra/progress.js';
import { hnswIndexName, hnswIndexStatement, SEARCH_INDEX_DIMENSIONS } from '../db/migrations.js';
import type { ManagedDatabase, ReadSession, RowSet, SqlParam } from '../db/types.js';
import { EmbeddingModelMismatchError, type EmbeddingProvider, type ProductDocument } from './provider.js';
import { createEmbeddingProvider } from './settings.js';

export type QueryFn = (sql: string, params?: readonly SqlParam[]) => Promise<RowSet>;

export const CORPUS_SQL = `
  SELECT p.product_id, p.sku, p.product_name, p.product_description, t.type_name, c.category_name
    FROM retail.products p
    JOIN retail.product_types t ON t.type_id = p.type_id
    JOIN retail.categories c ON c.category_id = p.category_id
   ORDER BY p.product_id`;

export async function loadCorpus(query: QueryFn): Promise<ProductDocument[]> {
  const result = await query(CORPUS_SQL);
  return result.rows.map((r) => ({
    productId: Number(r[0]),
    sku: String(r[1]),
    name: String(r[2]),
    description: String(r[3]),
    typeName: String(r[4]),
    categoryName: String(r[5]),
  }));
}

export function contentHash(doc: ProductDocument): string {
  return createHash('sha256')
    .update(`${doc.sku}\n${doc.name}\n${doc.typeName}\n${doc.categoryName}\n${doc.description}`)
    .digest('hex')
    .slice(0, 16);
}

/** Text form of an embedding: pgvector '[…]' or PostgreSQL array '{…}', 8 significant digits (float4 exact). */
export function vectorLiteral(values: readonly number[], hasVector: boolean): string {
  const body = values.map((v) => (v === 0 ? '0' : v.toPrecision(8))).join(',');
  return hasVector ? `[${body}]` : `{${body}}`;
}

/** The full-text document: name (A) and SKU (A), product type (B), category (C), description (D). */
const ANALYZE_LOCK_KEY = 7_362_003; // arbitrary, constant: "zava embeddings analyze"

const SEARCH_DOCUMENT_SQL = `
  setweight(to_tsvector('english', p.product_name), 'A') ||
  setweight(to_tsvector('simple', p.sku), 'A') ||
  setweight(to_tsvector('english', t.type_name), 'B') ||
  setweight(to_tsvector('english', c.category_name), 'C') ||
  setweight(to_tsvector('english', p.product_description), 'D')`;

function upsertSql(hasVector: boolean): string {
  const cast = hasVector ? 'public.vector' : 'real[]';
  return `
    INSERT INTO retail.product_description_embeddings
           (product_id, description_embedding, model, dimensions, search_document, content_hash, imported, updated_at)
    SELECT x.product_id, x.embedding::${cast}, $2, $3::int, ${SEARCH_DOCUMENT_SQL}, x.content_hash, $4::boolean, now()
      FROM json_to_recordset($1::json) AS x(product_id int, embedding text, content_hash text)
      JOIN retail.products p ON p.product_id = x.product_id
      JOIN retail.product_types t ON t.type_id = p.type_id
      JOIN retail.categories c ON c.category_id = p.category_id
    ON CONFLICT (product_id, model) DO UPDATE
       SET description_embedding = EXCLUDED.description_embedding,
           dimensions = EXCLUDED.dimensions, search_document = EXCLUDED.search_document,
           content_hash = EXCLUDED.content_hash, imported = EXCLUDED.imported, updated_at = now()`;
}

/**
 * Stores ready-made embeddings (one model) for products, e.g. the vectors an imported catalog came with, inside
 * the caller's transaction. `imported` rows are kept when another provider embeds the catalog.
 */
export async function storeVectors(
  query: QueryFn,
  hasVector: boolean,
  model: string,
  dimensions: number,
  rows: readonly { productId: number; vector: ArrayLike<number>; contentHash: string }[],
  imported: boolean,
): Promise<void> {
  if (rows.length === 0) return;
  const json = JSON.stringify(
    rows.map((r) => ({ product_id: r.productId, embedding: vectorLiteral(Array.from(r.vector), hasVector), content_hash: r.contentHash })),
  );
  await query(upsertSql(hasVector), [json, model, dimensions, imported]);
  noteEmbeddingsChanged();
}

export interface EmbeddingPlan {
  readonly model: string;
  readonly dimensions: number;
  readonly corpus: readonly ProductDocument[];
  /** Products to (re-)embed, in product order. */
  readonly pending: readonly ProductDocument[];
}

/** Fits the provider if it needs the catalog and works out which products need embedding. */
export async function planEmbeddings(query: QueryFn, provider: EmbeddingProvider, force = false): Promise<EmbeddingPlan> {
  const corpus = await loadCorpus(query);
  if (provider.needsCorpus) await provider.fit(corpus);
  // Embeddings of other models (kept imported vectors, or a previous provider's) do not count either way.
  const existing = await query('SELECT product_id, model, dimensions, content_hash FROM retail.product_description_embeddings WHERE model = $1', [
    provider.model,
  ]);
  const stored = new Map(existing.rows.map((r) => [Number(r[0]), { model: String(r[1]), dimensions: Number(r[2]), hash: String(r[3]) }]));
  const pending = corpus.filter((doc) => {
    if (force) return true;
    const row = stored.get(doc.productId);
    return !row || row.model !== provider.model || row.dimensions !== provider.dimensions || row.hash !== contentHash(doc);
  });
  return { model: provider.model, dimensions: provider.dimensions, corpus, pending };
}

/** Embeds and stores one batch inside the caller's owner transaction. */
export async function storeEmbeddings(
  query: QueryFn,
  hasVector: boolean,
  provider: EmbeddingProvider,
  batch: readonly ProductDocument[],
): Promise<void> {
  if (batch.length === 0) return;
  const vectors = await provider.embedDocuments(batch);
  const rows = batch.map((doc, i) => ({
    product_id: doc.productId,
    embedding: vectorLiteral(vectors[i]!, hasVector),
    content_hash: contentHash(doc),
  }));
  await query(upsertSql(hasVector), [JSON.stringify(rows), provider.model, provider.dimensions, false]);
  // One computed model per product, as before embeddings were keyed by model: a provider switch replaces.
  await query('DELETE FROM retail.product_description_embeddings WHERE product_id = ANY ($1::int[]) AND model <> $2 AND NOT imported', [
    `{${batch.map((doc) => doc.productId).join(',')}}`,
    provider.model,
  ]);
  noteEmbeddingsChanged();
}

export interface RebuildOptions {
  readonly provider?: EmbeddingProvider;
  readonly progress?: Progress;
  /** Products per transaction (default: the provider's batch size). */
  readonly batchSize?: number;
  /** Re-embed everything, even products that are up to date. */
  readonly force?: boolean;
  /** Stop after this many batches (an interrupted run, for tests and step-wise rebuilds). */
  readonly maxBatches?: number;
}

export interface RebuildReport {
  readonly model: string;
  readonly dimensions: number;
  readonly products: number;
  /** Products embedded by this run. */
  readonly embedded: number;
  /** Products still pending (0 when complete). */
  readonly remaining: number;
  readonly batches: number;
  readonly ms: number;
}

const HNSW_LOCK_KEY = 7_362_004; // arbitrary, constant: "zava embeddings hnsw index"

/**
 * Loads of at least this many embeddings, and at least a quarter of the index's rows afterwards, drop the HNSW
 * index of their dimension first and build it once at the end. pgvector inserting into the graph row by row cost
 * 9.7 s of CPU for the 608 products of the built-in catalog in PGlite (1024 dimensions, m 32, ef_construction 128),
 * building it over the same rows 1.2 s; at a quarter of the rows the two are about even. Searches in between scan
 * exactly (the planner's choice at this catalog's size anyway).
 */
const BULK_INDEX_MIN_ROWS = 32;

/** A load this size of embeddings of this size may build its HNSW index afterwards (before counting the index's rows). */
function mayBuildHnswAfter(hasVector: boolean, dimensions: number, incoming: number): boolean {
  return hasVector && (SEARCH_INDEX_DIMENSIONS as readonly number[]).includes(dimensions) && incoming >= BULK_INDEX_MIN_ROWS;
}

/**
 * Inside the caller's transaction: drops the HNSW index of `dimensions` when storing `incoming` embeddings of
 * that size is better done by one build afterwards (buildMissingHnswIndexes); returns whether it did. Writers
 * take turns on an advisory lock. On PostgreSQL the drop locks the table until the transaction ends.
 */
export async function dropHnswIndexForLoad(query: QueryFn, hasVector: boolean, dimensions: number, incoming: number): Promise<boolean> {
  if (!mayBuildHnswAfter(hasVector, dimensions, incoming)) return false;
  const rows = Number((await query('SELECT count(*) FROM retail.product_description_embeddings WHERE dimensions = $1', [dimensions])).rows[0]![0]);
  if (incoming * 4 < rows + incoming) return false;
  await query('SELECT pg_advisory_xact_lock($1::bigint)', [HNSW_LOCK_KEY]);
  await query(`DROP INDEX IF EXISTS ${hnswIndexName(dimensions)}`);
  return true;
}

/** Whether a product HNSW index is missing (a bulk load dropped it, or stopped between its drop and its build). */
async function hnswIndexMissing(query: QueryFn): Promise<boolean> {
  const names = `{${SEARCH_INDEX_DIMENSIONS.map((dimensions) => hnswIndexName(dimensions)).join(',')}}`;
  return (await query('SELECT bool_or(to_regclass(n) IS NULL) FROM unnest($1::text[]) AS n', [names])).rows[0]![0] === true;
}

/** Inside the caller's transaction: builds the product HNSW indexes that are missing, as the migrations define them. */
export async function buildMissingHnswIndexes(query: QueryFn, hasVector: boolean): Promise<void> {
  if (!hasVector || !(await hnswIndexMissing(query))) return;
  await query('SELECT pg_advisory_xact_lock($1::bigint)', [HNSW_LOCK_KEY]);
  for (const dimensions of SEARCH_INDEX_DIMENSIONS) await query(hnswIndexStatement(dimensions));
}

/**
 * Builds missing HNSW indexes in a transaction of their own, which only opens when one is missing (every server
 * start comes through here: an embedded write would make the readers copy a new snapshot).
 */
async function ensureHnswIndexes(db: ManagedDatabase): Promise<void> {
  if (!db.hasVector || !(await hnswIndexMissing((sql, params) => db.ownerQuery(sql, params)))) return;
  await db.withAdminTransaction((session) => buildMissingHnswIndexes((sql, params) => session.query(sql, params), true));
}

/** `zava-mcp embeddings rebuild`: embed what is missing or stale, one transaction per batch, resumable. */
export async function rebuildEmbeddings(db: ManagedDatabase, options: RebuildOptions = {}): Promise<RebuildReport> {
  const started = Date.now();
  const provider = options.provider ?? createEmbeddingProvider();
  const progress = options.progress ?? silentProgress;
  const plan = await planEmbeddings((sql, params) => db.ownerQuery(sql, params), provider, options.force === true);
  const batchSize = Math.max(1, options.batchSize ?? provider.batchSize);
  const label = `Embedding products with ${plan.model}`;
  let embedded = 0;
  let batches = 0;
  if (plan.pending.length > 0) progress.update(label, 0, plan.pending.length);
  const indexAfter =
    mayBuildHnswAfter(db.hasVector, plan.dimensions, plan.pending.length) &&
    (await db.withAdminTransaction((session) =>
      dropHnswIndexForLoad((sql, params) => session.query(sql, params), db.hasVector, plan.dimensions, plan.pending.length),
    ));
  try {
    for (let i = 0; i < plan.pending.length; i += batchSize) {
      if (options.maxBatches !== undefined && batches >= options.maxBatches) break;
      const batch = plan.pending.slice(i, i + batchSize);
      // Embed outside the transaction for remote providers would be cheaper on locks, but one batch is small and
      // keeping it inside means a failed batch leaves nothing behind.
      await db.withAdminTransaction((session) => storeEmbeddings((sql, params) => session.query(sql, params), db.hasVector, provider, batch));
      embedded += batch.length;
      batches++;
      progress.update(label, embedded, plan.pending.length);
    }
  } catch (error) {
    // The index comes back over whatever was stored; the batch's error is the one to report.
    if (indexAfter) await ensureHnswIndexes(db).catch(() => undefined);
    throw error;
  }
  await ensureHnswIndexes(db);
  if (embedded === plan.pending.length) {
    // Complete: computed embeddings of other models left on products that were already current for this one (by
    // an imported vector) would make the model check refuse; they are stale now.
    const staleSql = 'FROM retail.product_description_embeddings WHERE (model < $1 OR model > $1) AND NOT imported';
    if ((await db.ownerQuery(`SELECT EXISTS (SELECT 1 ${staleSql})`, [plan.model])).rows[0]?.[0] === true) {
      await db.ownerQuery(`DELETE ${staleSql}`, [plan.model]);
      noteEmbeddingsChanged();
    }
  }
  if (embedded > 0 && embedded === plan.pending.length) {
    // Concurrent ANALYZEs of one table collide ("tuple concurrently updated"): replicas embedding at once take turns.
    await db.withAdminTransaction(async (session) => {
      await session.query('SELECT pg_advisory_xact_lock($1::bigint)', [ANALYZE_LOCK_KEY]);
      await session.exec('ANALYZE retail.product_description_embeddings');
    });
  }
  const remaining = plan.pending.length - embedded;
  if (plan.pending.length > 0) progress.done(`${label}: ${embedded} embedded${remaining ? `, ${remaining} left` : ''}`);
  return {
    model: plan.model,
    dimensions: plan.dimensions,
    products: plan.corpus.length,
    embedded,
    remaining,
    batches,
    ms: Date.now() - started,
  };
}

/**
 * Makes sure every product has an up-to-date embedding from the configured provider: call it after seeding
 * and at server start. Does nothing (beyond one read) when all embeddings are current.
 */
export async function ensureEmbeddings(
  db: ManagedDatabase,
  options: Omit<RebuildOptions, 'force' | 'maxBatches'> = {},
): Promise<RebuildReport> {
  return rebuildEmbeddings(db, options);
}

/** Bumped whenever this process writes embeddings: every cached model check is void afterwards. */
let embeddingsGeneration = 0;
export function noteEmbeddingsChanged(): void {
  embeddingsGeneration++;
}

/** How long a passed model check is trusted when nothing in this process wrote embeddings (another may have). */
export const MODEL_CHECK_TTL_MS = 5_000;
const passedChecks = new WeakMap<object, Map<string, { generation: number; at: number }>>();

/**
 * assertStoredModel, remembered per database handle: after a pass, searches skip the check (one statement
 * fewer) until this process writes embeddings (rebuild, import) or MODEL_CHECK_TTL_MS passes. Searches filter
 * every scan on the model as well, so a change by another process in between cannot mix models; it only shows
 * up as fewer results until the next check. `force` checks regardless (e.g. after an empty answer).
 */
export async function checkStoredModel(
  db: object,
  session: ReadSession,
  model: string,
  dimensions: number,
  force = false,
): Promise<void> {
  const key = `${model}\u0000${dimensions}`;
  let checks = passedChecks.get(db);
  const cached = checks?.get(key);
  if (!force && cached && cached.generation === embeddingsGeneration && Date.now() - cached.at < MODEL_CHECK_TTL_MS) return;
  const generation = embeddingsGeneration;
  checks?.delete(key);
  await assertStoredModel(session, model, dimensions);
  if (!checks) passedChecks.set(db, (checks = new Map()));
  checks.set(key, { generation, at: Date.now() });
}

export interface StoredModel {
  readonly model: string;
  readonly dimensions: number;
  readonly products: number;
}

/** Models in the embeddings table, with how many products each covers (owner-side, for status and messages). */
export async function storedModels(query: QueryFn): Promise<StoredModel[]> {
  const result = await query(
    'SELECT model, dimensions, count(*) FROM retail.product_description_embeddings GROUP BY model, dimensions ORDER BY count(*) DESC, model',
  );
  return result.rows.map((r) => ({ model: String(r[0]), dimensions: Number(r[1]), products: Number(r[2]) }));
}

/**
 * Refuses to compare a query embedding with stored embeddings of another model. Cheap on large tables: two
 * index probes on the model column. Imported embeddings of another model (a catalog's own vectors, kept beside the
 * configured provider's) are not a mix: every search filters on the model.
 */
export async function assertStoredModel(
  session: ReadSession,
  model: string,
  dimensions: number,
  settings: { efSearch?: number } = {},
): Promise<void> {
  // The HNSW candidate-list size is set in the same round trip (transaction-local).
  const check = await session.query(
    `SELECT EXISTS (SELECT 1 FROM retail.product_description_embeddings WHERE (model < $1 OR model > $1 OR dimensions <> $2::int) AND NOT imported),
            EXISTS (SELECT 1 FROM retail.product_description_embeddings WHERE model = $1)${settings.efSearch ? `,
            set_config('hnsw.ef_search', $3, true)` : ''}`,
    settings.efSearch ? [model, dimensions, String(settings.efSearch)] : [model, dimensions],
  );
  const [others, mine] = check.rows[0] as [boolean, boolean];
  if (!others && mine) return;
  const models = await storedModels((sql, params) => session.query(sql, params));
  if (models.length === 0) {
    throw new EmbeddingModelMismatchError(
      'no product embeddings are stored yet; run `zava-mcp embeddings rebuild` (or start the server, which embeds the catalog)',
    );
  }
  const described = models.map((m) => `${m.model} (${m.dimensions} dimensions, ${m.products} products)`).join(', ');
  throw new EmbeddingModelMismatchError(
    `the query embedding comes from ${model} (${dimensions} dimensions) but the stored product embeddings come from ${described}; ` +
      'embeddings of different models cannot be compared. Run `zava-mcp embeddings rebuild` with the configured provider ' +
      '(ZAVA_EMBEDDING_PROVIDER) to re-embed the catalog, or configure the provider that made the stored embeddings.',
  );
}
