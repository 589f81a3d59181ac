// `zava-mcp catalog import <file.json>`: a retailer's own catalog merged into the database and embedded, all in
// one owner transaction: an invalid file is refused with the line and the place at fault, and a failure at any step
// (the embedding provider included) leaves the database as it was. Two layouts, told apart by their keys: the
// documented one (categories → types → products {sku?, name, description, price}) and the reference system's
// product_data.json (main_categories, with seasonal multipliers, stock levels and OpenAI vectors), streamed.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseCatalog, type Catalog } from '../data/catalog.js';
import {
  readReferenceEmbeddings,
  REFERENCE_EMBEDDING_DIMENSIONS,
  REFERENCE_EMBEDDING_MODEL,
  scanCatalogFile,
  type ReferenceCatalog,
} from '../data/reference-catalog.js';
import { DataLoadError } from '../infra/errors.js';
import { silentProgress, type Progress } from '../infra/progress.js';
import type { ManagedDatabase } from '../db/types.js';
import type { EmbeddingProvider } from './provider.js';
import { createEmbeddingProvider } from './settings.js';
import {
  buildMissingHnswIndexes,
  contentHash,
  dropHnswIndexForLoad,
  loadCorpus,
  noteEmbeddingsChanged,
  planEmbeddings,
  storeEmbeddings,
  storeVectors,
  type QueryFn,
} from './store.js';
import { refreshSalesRollup } from '../db/sales-rollup.js';

/** 1-based line of the value at `path` in JSON text, or undefined if it cannot be found. */
export function lineOfJsonPath(text: string, path: readonly (string | number)[]): number | undefined {
  let pos = 0;
  const ws = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const skipString = () => {
    pos++;
    while (pos < text.length && text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1;
    pos++;
  };
  const readString = () => {
    const start = pos;
    skipString();
    try {
      return JSON.parse(text.slice(start, pos)) as string;
    } catch {
      return '';
    }
  };
  const skipValue = (): void => {
    ws();
    const c = text[pos];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      pos++;
      ws();
      if (text[pos] === close) {
        pos++;
        return;
      }
      for (;;) {
        if (c === '{') {
          ws();
          skipString();
          ws();
          pos++; // ':'
        }
        skipValue();
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        pos++;
        return;
      }
    }
    while (pos < text.length && !/[\s,\]}]/.test(text[pos]!)) pos++;
  };
  const lineAt = (p: number) => text.slice(0, p).split('\n').length;
  const descend = (depth: number): number | undefined => {
    ws();
    if (depth === path.length) return lineAt(pos);
    const key = path[depth];
    const c = text[pos];
    if (c === '{') {
      pos++;
      for (;;) {
        ws();
        if (text[pos] !== '"') return lineAt(pos);
        const keyStart = pos;
        const name = readString();
        ws();
        pos++;
        if (name === String(key)) {
          if (depth + 1 === path.length) return lineAt(keyStart);
          return descend(depth + 1);
        }
        skipValue();
        ws();
        if (text[pos] !== ',') return lineAt(pos);
        pos++;
      }
    }
    if (c === '[') {
      pos++;
      for (let i = 0; ; i++) {
        ws();
        if (i === key) return descend(depth + 1);
        skipValue();
        ws();
        if (text[pos] !== ',') return lineAt(pos);
        pos++;
      }
    }
    return lineAt(pos);
  };
  try {
    return descend(0);
  } catch {
    return undefined;
  }
}

/** parseCatalog with the line (and field) of the first problem in the message. */
export function parseCatalogFile(text: string, source: string): Catalog {
  try {
    JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /position (\d+)/.exec(message);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    throw new DataLoadError(`${source}${line ? `:${line}` : ''}: not valid JSON: ${message}`);
  }
  try {
    return parseCatalog(text, source);
  } catch (error) {
    if (!(error instanceof DataLoadError)) throw error;
    // "source: categories.0.types.1.products.2.price: message" → add the line of that field.
    const rest = error.message.slice(source.length + 2);
    const match = /^([\w.]+): (.*)$/s.exec(rest);
    if (match) {
      const pathParts = match[1]!.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const line = lineOfJsonPath(text, pathParts);
      throw new DataLoadError(`${source}${line ? `:${line}` : ''}: field ${match[1]}: ${match[2]}`);
    }
    const dup = /duplicate (SKU (\S+)|product name "(.*)")/.exec(rest);
    if (dup) {
      const needle = dup[2] ? `"${dup[2]}"` : `"${dup[3]}"`;
      const index = text.lastIndexOf(needle);
      const line = index >= 0 ? text.slice(0, index).split('\n').length : undefined;
      throw new DataLoadError(`${source}${line ? `:${line}` : ''}: ${rest}`);
    }
    throw error;
  }
}

export interface CatalogImportReport {
  readonly layout: 'catalog' | 'reference';
  readonly categories: number;
  readonly types: number;
  readonly productsInserted: number;
  readonly productsUpdated: number;
  readonly embedded: number;
  readonly model: string;
  /** Vectors stored as they came in the file (reference layout: text-embedding-3-small). */
  readonly importedEmbeddings: number;
  /** Products whose stock level was given, and the stores it was set in. */
  readonly stockLevels: number;
  readonly stores: number;
  /** --replace: what went with the old catalog. */
  readonly removed: { readonly products: number; readonly orders: number; readonly orderLines: number };
}

export interface CatalogImportOptions {
  readonly provider?: EmbeddingProvider;
  readonly progress?: Progress;
  /** The file becomes the whole catalog: products not in it are removed (see withOrders). */
  readonly replace?: boolean;
  /** With replace: also remove the orders that hold a removed product (refused otherwise). */
  readonly withOrders?: boolean;
}

const GROSS_MARGIN_PERCENT = 33;
const CATALOG_LOCK_KEY = 7_362_004; // arbitrary, constant: "zava catalog import"

/** Case-insensitive name key: "HAND TOOLS", "Hand  Tools" and "hand tools" are one category. */
export function nameKey(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}

/**
 * The SKU of a product that has none: stable across imports of the same catalog (a re-import updates instead of
 * duplicating), from its category, type and name, case- and spacing-insensitive.
 */
export function generatedSku(category: string, type: string, name: string): string {
  return `IMP-${createHash('sha256').update(`${nameKey(category)}\n${nameKey(type)}\n${nameKey(name)}`).digest('hex').slice(0, 10).toUpperCase()}`;
}

interface ImportRow {
  readonly category: string;
  readonly type: string;
  readonly sku: string;
  readonly name: string;
  readonly description: string;
  readonly price: string;
  readonly cost: string;
  readonly stock: number | null;
}

interface ImportPlan {
  readonly layout: 'catalog' | 'reference';
  readonly categories: readonly { name: string; seasonality: string | null }[];
  readonly rows: readonly ImportRow[];
  /** Stores the file's own vectors once the products exist (reference layout). */
  readonly vectors?: (write: (batch: readonly { sku: string; vector: Float32Array }[]) => Promise<void>) => Promise<void>;
  /** How many products `vectors` stores. */
  readonly vectorCount?: number;
}

const money = (cents: number) => (cents / 100).toFixed(2);

/**
 * Rows in the importer's terms, names folded case-insensitively onto the first spelling in the file (the
 * database's spelling wins over both, in SQL), every product with a SKU, no SKU twice.
 */
function planRows(
  categories: readonly { name: string; seasonality?: readonly number[] | undefined }[],
  products: Iterable<{ category: string; type: string; sku: string | undefined; name: string; description: string; priceCents: number; costCents: number; stock: number | null; where: string }>,
): { categories: ImportPlan['categories']; rows: ImportRow[] } {
  const categorySpelling = new Map<string, { name: string; seasonality: string | null }>();
  for (const c of categories) {
    const key = nameKey(c.name);
    const known = categorySpelling.get(key);
    const seasonality = c.seasonality ? `{${c.seasonality.join(',')}}` : null;
    if (!known) categorySpelling.set(key, { name: c.name.trim(), seasonality });
    else if (seasonality && !known.seasonality) known.seasonality = seasonality;
  }
  const typeSpelling = new Map<string, string>();
  const skus = new Map<string, string>();
  const rows: ImportRow[] = [];
  for (const p of products) {
    if (!categorySpelling.has(nameKey(p.category))) categorySpelling.set(nameKey(p.category), { name: p.category.trim(), seasonality: null });
    const categoryName = categorySpelling.get(nameKey(p.category))!.name;
    const typeKey = `${nameKey(p.category)}\n${nameKey(p.type)}`;
    if (!typeSpelling.has(typeKey)) typeSpelling.set(typeKey, p.type.trim());
    const sku = p.sku ?? generatedSku(p.category, p.type, p.name);
    const first = skus.get(sku);
    if (first !== undefined) {
      throw new DataLoadError(
        p.sku
          ? `duplicate SKU ${sku}: ${first} and ${p.where}`
          : `${p.where}: "${p.name}" has no SKU and another product of the same name and type has none either (${first}); give them SKUs`,
      );
    }
    skus.set(sku, p.where);
    rows.push({
      category: categoryName,
      type: typeSpelling.get(typeKey)!,
      sku,
      name: p.name,
      description: p.description,
      price: money(p.priceCents),
      cost: money(p.costCents),
      stock: p.stock,
    });
  }
  return { categories: [...categorySpelling.values()], rows };
}

function documentedPlan(catalog: Catalog, source: string): ImportPlan {
  const products = catalog.categories.flatMap((category, ci) =>
    category.types.flatMap((type, ti) =>
      type.products.map((product, pi) => {
        const cents = Math.round(product.price * 100);
        return {
          category: category.name,
          type: type.name,
          sku: product.sku,
          name: product.name,
          description: product.description,
          priceCents: cents,
          costCents: Math.round((cents * (100 - GROSS_MARGIN_PERCENT)) / 100),
          stock: null,
          where: `${source} categories.${ci}.types.${ti}.products.${pi}`,
        };
      }),
    ),
  );
  return { layout: 'catalog', ...planRows(catalog.categories, products) };
}

/**
 * The reference layout. Its price is the cost, as the reference generator reads it: the selling price is the cost
 * at a 33% gross margin (cost / 0.67).
 */
export function referencePlan(catalog: ReferenceCatalog, file: string, source: string): ImportPlan {
  const products = catalog.products.map((p) => {
    const costCents = Math.round(p.price * 100);
    return {
      category: p.category,
      type: p.type,
      sku: p.sku,
      name: p.name,
      description: p.description,
      priceCents: Math.round(costCents / (1 - GROSS_MARGIN_PERCENT / 100)),
      costCents,
      stock: p.stockLevel ?? null,
      where: `${source} ${p.where}`,
    };
  });
  const plan = planRows(catalog.categories, products);
  const skuByIndex = plan.rows.map((r) => r.sku);
  const vectorCount = catalog.products.filter((p) => p.hasEmbedding).length;
  return {
    layout: 'reference',
    ...plan,
    ...(vectorCount > 0
      ? {
          vectorCount,
          vectors: (write) =>
            readReferenceEmbeddings(file, source, 64, (batch) => write(batch.map((b) => ({ sku: skuByIndex[b.index]!, vector: b.vector })))),
        }
      : {}),
  };
}

/** Reads and checks a catalog file of either layout before the database is opened. */
export async function readCatalogFile(file: string, source: string): Promise<ImportPlan> {
  const scan = await scanCatalogFile(file, source);
  if (scan.layout === 'reference') return referencePlan(scan.catalog, file, source);
  return documentedPlan(parseCatalogFile(await readFile(file, 'utf8'), source), source);
}

/** Unit vectors, as the search's inner product expects (OpenAI's are already; a file's may be rounded). */
function normalized(vector: Float32Array): Float32Array {
  let sum = 0;
  for (const v of vector) sum += v * v;
  const norm = Math.sqrt(sum);
  if (!(norm > 0)) return vector;
  return vector.map((v) => v / norm);
}

/**
 * Merges a catalog into the database: categories and types by name (case-insensitively), products by SKU (a
 * product without one gets generatedSku), then embeds every new or changed product — all in one transaction.
 */
export async function importCatalog(
  db: ManagedDatabase,
  catalog: Catalog | ImportPlan,
  options: CatalogImportOptions = {},
): Promise<CatalogImportReport> {
  const plan = 'rows' in catalog ? catalog : documentedPlan(catalog, 'catalog');
  const provider = options.provider ?? createEmbeddingProvider();
  const progress = options.progress ?? silentProgress;
  const { rows } = plan;
  try {
    return await db.withAdminTransaction(async (session) => {
      const query: QueryFn = (sql, params) => session.query(sql, params ?? []);
      // One import at a time: two could each add "Hand Tools" and "HAND TOOLS".
      await query('SELECT pg_advisory_xact_lock($1::bigint)', [CATALOG_LOCK_KEY]);
      progress.step(`Importing ${rows.length} products`);
      const json = JSON.stringify(rows);
      // The first category or type of a name (any case) in the database is the one products join.
      const categoryOf = (name: string) => `(SELECT c.category_id FROM retail.categories c WHERE lower(c.category_name) = lower(${name}) ORDER BY c.category_id LIMIT 1)`;
      const typeOf = (categoryId: string, name: string) =>
        `(SELECT t.type_id FROM retail.product_types t WHERE t.category_id = ${categoryId} AND lower(t.type_name) = lower(${name}) ORDER BY t.type_id LIMIT 1)`;
      const categoriesJson = JSON.stringify(plan.categories);
      await query(
        `UPDATE retail.categories c SET seasonal_multipliers = x.seasonality::real[]
           FROM json_to_recordset($1::json) AS x(name text, seasonality text)
          WHERE x.seasonality IS NOT NULL AND c.category_id = ${categoryOf('x.name')}`,
        [categoriesJson],
      );
      const categories = await query(
        `INSERT INTO retail.categories (category_name, seasonal_multipliers)
         SELECT x.name, x.seasonality::real[] FROM json_to_recordset($1::json) AS x(name text, seasonality text)
          WHERE ${categoryOf('x.name')} IS NULL
         RETURNING category_id`,
        [categoriesJson],
      );
      const types = await query(
        `INSERT INTO retail.product_types (category_id, type_name)
         SELECT DISTINCT ON (k.category_id, lower(x.type)) k.category_id, x.type
           FROM json_to_recordset($1::json) AS x(category text, type text)
           CROSS JOIN LATERAL (SELECT ${categoryOf('x.category')} AS category_id) k
          WHERE ${typeOf('k.category_id', 'x.type')} IS NULL
         RETURNING type_id`,
        [json],
      );
      const products = await query(
        `INSERT INTO retail.products (sku, product_name, category_id, type_id, cost, base_price, gross_margin_percent, product_description)
         SELECT x.sku, x.name, k.category_id, ${typeOf('k.category_id', 'x.type')}, x.cost::numeric, x.price::numeric, ${GROSS_MARGIN_PERCENT}, x.description
           FROM json_to_recordset($1::json) AS x(category text, type text, sku text, name text, description text, price text, cost text)
           CROSS JOIN LATERAL (SELECT ${categoryOf('x.category')} AS category_id) k
         ON CONFLICT (sku) DO UPDATE
            SET product_name = EXCLUDED.product_name, category_id = EXCLUDED.category_id, type_id = EXCLUDED.type_id,
                cost = EXCLUDED.cost, base_price = EXCLUDED.base_price, product_description = EXCLUDED.product_description
         RETURNING (xmax = 0) AS inserted`,
        [json],
      );
      const inserted = products.rows.filter((r) => r[0] === true).length;
      const removed = options.replace ? await removeOthers(query, rows, options.withOrders === true) : { products: 0, orders: 0, orderLines: 0 };

      // Stock levels: the file gives one per product; every store gets it. Kept aside too, for the stores a first
      // run creates on a database that has none yet.
      const stocked = rows.filter((r) => r.stock !== null);
      let stores = 0;
      if (stocked.length > 0) {
        const stockJson = JSON.stringify(stocked.map((r) => ({ sku: r.sku, stock: r.stock })));
        await query(
          `INSERT INTO zava_private.catalog_stock_levels (product_id, stock_level)
           SELECT p.product_id, x.stock FROM json_to_recordset($1::json) AS x(sku text, stock int) JOIN retail.products p ON p.sku = x.sku
           ON CONFLICT (product_id) DO UPDATE SET stock_level = EXCLUDED.stock_level`,
          [stockJson],
        );
        await query(
          `INSERT INTO retail.inventory (store_id, product_id, stock_level)
           SELECT s.store_id, p.product_id, x.stock
             FROM json_to_recordset($1::json) AS x(sku text, stock int) JOIN retail.products p ON p.sku = x.sku CROSS JOIN retail.stores s
           ON CONFLICT (store_id, product_id) DO UPDATE SET stock_level = EXCLUDED.stock_level`,
          [stockJson],
        );
        stores = Number((await query('SELECT count(*) FROM retail.stores')).rows[0]![0]);
      }

      // The file's own vectors, under their model; then drop imported vectors the products' text has outgrown.
      let importedEmbeddings = 0;
      const corpus = new Map((await loadCorpus(query)).map((doc) => [doc.sku, doc]));
      // Large loads of vectors build their HNSW index once, at the end of this transaction (search/store.ts).
      if (plan.vectors) {
        await dropHnswIndexForLoad(query, db.hasVector, REFERENCE_EMBEDDING_DIMENSIONS, plan.vectorCount ?? rows.length);
        await plan.vectors(async (batch) => {
          const vectors = batch.map((b) => {
            const doc = corpus.get(b.sku)!;
            return { productId: doc.productId, vector: normalized(b.vector), contentHash: contentHash(doc) };
          });
          await storeVectors(query, db.hasVector, REFERENCE_EMBEDDING_MODEL, REFERENCE_EMBEDDING_DIMENSIONS, vectors, true);
          importedEmbeddings += vectors.length;
          progress.update(`Storing the file's ${REFERENCE_EMBEDDING_MODEL} embeddings`, importedEmbeddings, rows.length);
        });
      }
      const importedRows = await query('SELECT product_id, content_hash FROM retail.product_description_embeddings WHERE imported');
      const hashes = new Map([...corpus.values()].map((doc) => [doc.productId, contentHash(doc)]));
      const outgrown = importedRows.rows.filter((r) => hashes.get(Number(r[0])) !== String(r[1])).map((r) => Number(r[0]));
      if (outgrown.length > 0) {
        await query('DELETE FROM retail.product_description_embeddings WHERE imported AND product_id = ANY ($1::int[])', [`{${outgrown.join(',')}}`]);
      }

      // Embed new and changed products (the local provider refits on the merged catalog, so it re-embeds all).
      const embedding = await planEmbeddings(query, provider);
      await dropHnswIndexForLoad(query, db.hasVector, embedding.dimensions, embedding.pending.length);
      let embedded = 0;
      for (let i = 0; i < embedding.pending.length; i += provider.batchSize) {
        const batch = embedding.pending.slice(i, i + provider.batchSize);
        await storeEmbeddings(query, db.hasVector, provider, batch);
        embedded += batch.length;
        progress.update(`Embedding with ${embedding.model}`, embedded, embedding.pending.length);
      }
      // As a complete rebuild does: computed embeddings of another model are stale (see rebuildEmbeddings).
      await query('DELETE FROM retail.product_description_embeddings WHERE model <> $1 AND NOT imported', [embedding.model]);
      await buildMissingHnswIndexes(query, db.hasVector);
      await session.exec('ANALYZE retail.categories, retail.product_types, retail.products, retail.product_description_embeddings');
      // Product costs, categories or types (and, with --with-orders, orders) may have changed: the analytics roll-up
      // is rebuilt in the same transaction, so the typed tools keep reading it (stale, they would read order lines).
      progress.step('Rebuilding the monthly sales roll-up');
      await refreshSalesRollup(session);
      progress.done(`Imported ${rows.length} products (${inserted} new), embedded ${embedded}`);
      return {
        layout: plan.layout,
        categories: categories.rowCount,
        types: types.rowCount,
        productsInserted: inserted,
        productsUpdated: rows.length - inserted,
        embedded,
        model: embedding.model,
        importedEmbeddings,
        stockLevels: stocked.length,
        stores,
        removed,
      };
    });
  } finally {
    // Committed or rolled back: cached model checks are void either way.
    noteEmbeddingsChanged();
  }
}

/**
 * --replace: removes every product the file does not hold, with its inventory and embeddings, then the product
 * types and categories left empty. Sales are history: when orders hold a removed product, the import is refused
 * unless withOrders, which removes those orders whole (all their lines; customers and stores stay).
 */
async function removeOthers(query: QueryFn, rows: readonly ImportRow[], withOrders: boolean): Promise<CatalogImportReport['removed']> {
  const skus = JSON.stringify(rows.map((r) => r.sku));
  const doomed = await query(
    `SELECT p.product_id FROM retail.products p WHERE NOT EXISTS (SELECT 1 FROM json_array_elements_text($1::json) AS k(sku) WHERE k.sku = p.sku)`,
    [skus],
  );
  if (doomed.rowCount === 0) return { products: 0, orders: 0, orderLines: 0 };
  const ids = `{${doomed.rows.map((r) => Number(r[0])).join(',')}}`;
  const sold = await query(
    `SELECT count(DISTINCT order_id), count(*) FROM retail.order_items WHERE order_id IN (SELECT order_id FROM retail.order_items WHERE product_id = ANY ($1::int[]))`,
    [ids],
  );
  const [orders, orderLines] = (sold.rows[0] as [number, number]).map(Number) as [number, number];
  if (orders > 0 && !withOrders) {
    throw new DataLoadError(
      `--replace would remove ${doomed.rowCount.toLocaleString('en-US')} products that are not in the file, but ${orders.toLocaleString('en-US')} orders ` +
        `(${orderLines.toLocaleString('en-US')} order lines) hold some of them; nothing was changed. Add --with-orders to remove those orders too ` +
        '(customers and stores stay), or import without --replace to add this catalog beside the current one.',
    );
  }
  if (orders > 0) {
    await query(
      `CREATE TEMP TABLE zava_removed_orders ON COMMIT DROP AS
         SELECT DISTINCT order_id FROM retail.order_items WHERE product_id = ANY ($1::int[])`,
      [ids],
    );
    await query('DELETE FROM retail.order_items WHERE order_id IN (SELECT order_id FROM zava_removed_orders)');
    await query('DELETE FROM retail.orders WHERE order_id IN (SELECT order_id FROM zava_removed_orders)');
  }
  await query('DELETE FROM retail.inventory WHERE product_id = ANY ($1::int[])', [ids]);
  await query('DELETE FROM retail.products WHERE product_id = ANY ($1::int[])', [ids]);
  await query('DELETE FROM retail.product_types t WHERE NOT EXISTS (SELECT 1 FROM retail.products p WHERE p.type_id = t.type_id)');
  await query('DELETE FROM retail.categories c WHERE NOT EXISTS (SELECT 1 FROM retail.product_types t WHERE t.category_id = c.category_id)');
  return { products: doomed.rowCount, orders, orderLines };
}
