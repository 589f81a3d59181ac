// Catalog import (issue 14) on both backends: the reference system's product_data.json layout (streamed, keys in
// any order, products without SKU, seasonal multipliers, stock levels, text-embedding-3-small vectors kept beside
// the local model's and found by a search on that model), refusals that name the place at fault and change
// nothing, and the importer fixes: repeated names under different SKUs, case-insensitive category and type names,
// --replace, and a first run on a database that holds only an imported catalog.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { backendsUnderTest, createTestDatabase, sampleCatalog, type TestDatabase } from './support/databases.js';
import { referenceVector, writeReferenceCatalog, type RefCategory } from './support/reference-catalog.js';
import { ensureEmbeddings } from '../src/search/store.js';
import { searchProducts } from '../src/search/search.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { EmbeddingError, type EmbeddingProvider, type ProductDocument } from '../src/search/provider.js';
import { generatedSku, importCatalog, readCatalogFile } from '../src/search/catalog-import.js';
import { parseCatalog } from '../src/data/catalog.js';
import { prepareDatabase } from '../src/cli/serve.js';
import { DataLoadError } from '../src/infra/errors.js';
import type { ManagedDatabase } from '../src/db/types.js';

const HEAD_OFFICE = '00000000-0000-0000-0000-000000000000';
/**
 * The built-in catalog cut to two types of two products per category (56 products, "Hammers & Mallets" among them):
 * the importer's behaviour does not depend on the catalog's size, and on embedded PGlite every re-embedding of the
 * whole catalog (the local model refits on each import) costs time in proportion to it. The same database as
 * cli-search.test.ts, so the suite builds it once.
 */
const CATALOG = sampleCatalog(2, 2);
const CATALOG_PRODUCTS = CATALOG.categories.reduce((sum, category) => sum + category.types.reduce((n, type) => n + type.products.length, 0), 0);
const SEASONS = [0.5, 0.6, 0.9, 1.3, 1.6, 1.7, 1.6, 1.4, 1.1, 0.8, 0.6, 0.5];

/** A small file in the reference layout: a built-in category in capitals, a new one, products without SKU. */
const REFERENCE: RefCategory[] = [
  {
    name: 'HAND TOOLS',
    seasonality: SEASONS,
    types: [
      {
        name: 'HAMMERS & MALLETS',
        products: [
          { name: 'Zava Titanium Framing Hammer', sku: 'REF-HAM-001', price: 40.2, description: 'A light titanium framing hammer with a milled face.', stock_level: 12, vectors: true, vectorSeed: 101 },
          { name: 'Zava Titanium Framing Hammer', sku: 'REF-HAM-002', price: 45.5, description: 'The same hammer with a longer, 18 inch handle.', stock_level: 3, vectors: true, vectorSeed: 102 },
        ],
      },
    ],
  },
  {
    name: 'PET SUPPLIES',
    seasonality: SEASONS.slice().reverse(),
    types: [
      {
        name: 'Leashes',
        products: [
          { name: 'Zava Rope Dog Leash, 6 ft', price: 9.5, description: 'A braided nylon rope leash for walking dogs.', stock_level: 40, vectors: true, vectorSeed: 103 },
          { name: 'Zava Reflective Cat Harness', sku: 'REF-PET-002', price: 12, description: 'A soft harness with reflective trim for cats.', vectors: false },
        ],
      },
    ],
  },
];

/** Stand-in for the openai provider with OpenAI's small model: queries are embedded as a product's file vector. */
function openAiLike(queryVectors: Record<string, number>): EmbeddingProvider & { embeddedSkus: string[] } {
  const embeddedSkus: string[] = [];
  return {
    kind: 'openai',
    model: 'text-embedding-3-small',
    dimensions: 1536,
    batchSize: 100,
    needsCorpus: false,
    fit() {},
    embeddedSkus,
    embedDocuments: async (docs: readonly ProductDocument[]) => {
      embeddedSkus.push(...docs.map((d) => d.sku));
      return docs.map((d) => referenceVector(50_000 + d.productId, 1536));
    },
    embedQuery: async (text: string) => referenceVector(queryVectors[text] ?? 1, 1536),
  };
}

/**
 * A fast provider for tests where the model does not matter: hashed vectors, no fitting, so an import embeds only
 * its own products (the local model refits and re-embeds the whole catalog, slow on embedded PGlite).
 */
const hashed: EmbeddingProvider = {
  kind: 'openai',
  model: 'test-hashed-1024',
  dimensions: 1024,
  batchSize: 256,
  needsCorpus: false,
  fit() {},
  embedDocuments: async (docs: readonly ProductDocument[]) => docs.map((d) => referenceVector(90_000 + d.productId, 1024)),
  embedQuery: async () => referenceVector(1, 1024),
};

async function counts(db: ManagedDatabase): Promise<unknown[]> {
  const result = await db.ownerQuery(`
    SELECT (SELECT count(*) FROM retail.categories), (SELECT count(*) FROM retail.product_types), (SELECT count(*) FROM retail.products),
           (SELECT count(*) FROM retail.product_description_embeddings), (SELECT count(*) FROM retail.inventory),
           (SELECT sum(stock_level) FROM retail.inventory), (SELECT count(*) FROM retail.orders), (SELECT count(*) FROM retail.order_items),
           (SELECT count(*) FROM zava_private.catalog_stock_levels),
           (SELECT string_agg(coalesce(seasonal_multipliers::text, '-'), ';' ORDER BY category_id) FROM retail.categories)`);
  return result.rows[0]!.map(String);
}

const backends = await backendsUnderTest();

/** The product HNSW indexes (pgvector only: none on the PostgreSQL service): name, OID, definition. */
async function hnswIndexes(db: TestDatabase['db']): Promise<string[][]> {
  const rows = await db.ownerQuery(
    "SELECT c.relname, c.oid::text, pg_get_indexdef(c.oid) FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw' ORDER BY 1",
  );
  return rows.rows.map((r) => r.map(String));
}

for (const { kind, skip } of backends) {
  describe(`catalog import on ${kind}`, { skip }, () => {
    let t: TestDatabase;
    let dir: string;
    let local: LocalEmbeddingProvider;
    before(async () => {
      t = await createTestDatabase(kind, { customers: 40, embeddings: false, catalog: CATALOG });
      dir = await mkdtemp(path.join(tmpdir(), 'zava-catalog-import-'));
      local = new LocalEmbeddingProvider();
      await ensureEmbeddings(t.db, { provider: local });
    });
    after(async () => {
      await t?.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('reference layout: refused with the place at fault (line and path), nothing changed', async () => {
      const before = await counts(t.db);
      const cases: [string, RefCategory[], RegExp][] = [
        ['price', [{ name: 'PET SUPPLIES', types: [{ name: 'Leashes', products: [{ name: 'Leash', price: 'cheap', description: 'd', vectors: true }] }] }], /"PET SUPPLIES" › "Leashes" › \[0\] › price: must be a number/],
        ['dimensions', [{ name: 'PET SUPPLIES', types: [{ name: 'Leashes', products: [{ name: 'Leash', price: 1, description: 'd', extra: { description_embedding: [0.1, 0.2] } }] }] }], /description_embedding: must hold 1536 numbers \(text-embedding-3-small\), not 2/],
        ['seasons', [{ name: 'PET SUPPLIES', seasonality: [1, 2, 3], types: [{ name: 'Leashes', products: [{ name: 'Leash', price: 1, description: 'd' }] }] }], /"PET SUPPLIES" › washington_seasonal_multipliers: must be a list of 12/],
        ['sku', [{ name: 'A', types: [{ name: 'T', products: [{ name: 'P', sku: 'S-1', price: 1, description: 'd' }, { name: 'Q', sku: 'S-1', price: 1, description: 'd' }] }] }], /"A" › "T" › \[1\] › sku: duplicate SKU S-1 \(also at main_categories › "A" › "T" › \[0\]\)/],
      ];
      for (const [name, categories, message] of cases) {
        const file = path.join(dir, `bad-${name}.json`);
        await writeReferenceCatalog(file, categories);
        const text = await readFile(file, 'utf8');
        const error = await readCatalogFile(file, 'product_data.json').then(() => undefined, (e: unknown) => e);
        assert.ok(error instanceof DataLoadError, name);
        assert.match(error.message, message);
        // The line is exact: the line of the key whose value is at fault.
        const line = Number(/^product_data\.json:(\d+): /.exec(error.message)?.[1]);
        const key = { price: 'price', dimensions: 'description_embedding', seasons: 'washington_seasonal_multipliers', sku: 'sku' }[name]!;
        const lines = text.split('\n');
        const expected = name === 'sku' ? lines.lastIndexOf(lines.filter((l) => l.includes('"sku"')).at(-1)!) + 1 : lines.findIndex((l) => l.includes(`"${key}"`)) + 1;
        assert.equal(line, expected, `${name}: ${error.message}`);
      }
      // Broken JSON: the parser's complaint with its line; a file cut short.
      const broken = path.join(dir, 'broken.json');
      await writeFile(broken, '{\n  "main_categories": {\n    "A": {\n      "T": [ {"name": "P",, } ]\n');
      await assert.rejects(readCatalogFile(broken, 'broken.json'), /^DataLoadError: broken\.json:4: not valid JSON/);
      await writeFile(broken, '{"main_categories": {"A": {"T": [{"name": "P", "price": 1, "description": "d"}');
      await assert.rejects(readCatalogFile(broken, 'broken.json'), /broken\.json:1: not valid JSON: the file ends before its last value is complete/);
      await writeFile(broken, '{"products": []}');
      await assert.rejects(readCatalogFile(broken, 'broken.json'), /neither the documented catalog layout/);
      assert.deepEqual(await counts(t.db), before);
    });

    test('reference layout: a failure inside the transaction (the provider) leaves the database as it was', async () => {
      const file = path.join(dir, 'product_data.json');
      await writeReferenceCatalog(file, REFERENCE, { shuffledKeys: true });
      const before = await counts(t.db);
      const indexes = await hnswIndexes(t.db);
      const failing: EmbeddingProvider = {
        kind: 'openai', model: 'broken', dimensions: 1024, batchSize: 64, needsCorpus: false, fit() {},
        embedDocuments: async () => { throw new EmbeddingError('provider down'); },
        embedQuery: async () => { throw new EmbeddingError('provider down'); },
      };
      await assert.rejects(importCatalog(t.db, await readCatalogFile(file, 'product_data.json'), { provider: failing }), /provider down/);
      assert.deepEqual(await counts(t.db), before, 'vectors, stock levels, categories: all rolled back');
      assert.deepEqual(await hnswIndexes(t.db), indexes, 'the HNSW index dropped for the load is back as it was');
    });

    test('reference layout: keys out of order, no SKU, seasons, stock levels, vectors kept beside the local model and searched by model', async () => {
      const file = path.join(dir, 'product_data.json');
      await writeReferenceCatalog(file, REFERENCE, { shuffledKeys: true });
      const plan = await readCatalogFile(file, 'product_data.json');
      const indexes = await hnswIndexes(t.db);
      const report = await importCatalog(t.db, plan, { provider: local });
      assert.equal(report.layout, 'reference');
      // The local model refits and re-embeds the whole catalog: its index is built once, after the load, as defined.
      const rebuilt = await hnswIndexes(t.db);
      assert.deepEqual(rebuilt.map(([name, , definition]) => [name, definition]), indexes.map(([name, , definition]) => [name, definition]));
      if (t.db.hasVector) {
        assert.equal(indexes.length, 3);
        const oid = (rows: string[][]) => rows.find(([name]) => name === 'product_embeddings_hnsw_1024_idx')?.[1];
        assert.notEqual(oid(rebuilt), oid(indexes));
      }
      assert.deepEqual([report.productsInserted, report.productsUpdated, report.categories, report.types], [4, 0, 1, 1], '"HAND TOOLS" and "HAMMERS & MALLETS" are the built-in ones');
      assert.deepEqual([report.importedEmbeddings, report.stockLevels, report.stores], [3, 3, 8]);
      assert.match(report.model, /^zava-local-/);

      const noSku = generatedSku('PET SUPPLIES', 'Leashes', 'Zava Rope Dog Leash, 6 ft');
      assert.match(noSku, /^IMP-[0-9A-F]{10}$/);
      assert.equal(generatedSku('Pet Supplies', ' leashes ', 'ZAVA ROPE DOG LEASH, 6 FT'), noSku, 'case and spacing do not matter');
      const rows = await t.db.ownerQuery(
        `SELECT p.sku, p.product_name, c.category_name, t.type_name, p.cost::text, p.base_price::text FROM retail.products p
           JOIN retail.categories c USING (category_id) JOIN retail.product_types t USING (type_id)
          WHERE p.sku LIKE 'REF-%' OR p.sku = $1 ORDER BY p.sku`,
        [noSku],
      );
      assert.deepEqual(rows.rows, [
        [noSku, 'Zava Rope Dog Leash, 6 ft', 'PET SUPPLIES', 'Leashes', '9.50', '14.18'],
        ['REF-HAM-001', 'Zava Titanium Framing Hammer', 'Hand Tools', 'Hammers & Mallets', '40.20', '60.00'],
        ['REF-HAM-002', 'Zava Titanium Framing Hammer', 'Hand Tools', 'Hammers & Mallets', '45.50', '67.91'],
        ['REF-PET-002', 'Zava Reflective Cat Harness', 'PET SUPPLIES', 'Leashes', '12.00', '17.91'],
      ]);
      const seasons = await t.db.ownerQuery(
        "SELECT category_name, seasonal_multipliers::text FROM retail.categories WHERE category_name IN ('Hand Tools', 'PET SUPPLIES') ORDER BY 1",
      );
      assert.deepEqual(seasons.rows, [
        ['Hand Tools', `{${SEASONS.join(',')}}`],
        ['PET SUPPLIES', `{${SEASONS.slice().reverse().join(',')}}`],
      ]);
      const stock = await t.db.ownerQuery(
        `SELECT p.sku, count(*), min(i.stock_level), max(i.stock_level) FROM retail.inventory i JOIN retail.products p USING (product_id)
          WHERE p.sku LIKE 'REF-%' OR p.sku = $1 GROUP BY p.sku ORDER BY p.sku`,
        [noSku],
      );
      assert.deepEqual(stock.rows.map((r) => r.map(Number).slice(1)), [[8, 40, 40], [8, 12, 12], [8, 3, 3]], 'every store, the file\'s level; none for a product without one');

      // Two models per product: the file's vectors (imported) and the local model's (every product).
      const models = await t.db.ownerQuery(
        `SELECT model, dimensions, imported, count(*) FROM retail.product_description_embeddings GROUP BY 1, 2, 3 ORDER BY 1`,
      );
      assert.deepEqual(models.rows.map((r) => [String(r[0]).replace(/-[0-9a-f]{10}$/, ''), Number(r[1]), r[2], Number(r[3])]), [
        ['text-embedding-3-small', 1536, true, 3],
        ['zava-local-v4-1024d', 1024, false, CATALOG_PRODUCTS + 4],
      ]);
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const byLocal = await searchProducts(t.db, hq, { query: 'dog leash', maxRows: 3 }, { provider: local });
      assert.equal(byLocal.results[0]?.sku, noSku, 'the local model searches its own embeddings, not the 1536-d ones');

      // The same file again: nothing new (SKUs, generated ones included, are stable), nothing to embed.
      const again = await importCatalog(t.db, await readCatalogFile(file, 'product_data.json'), { provider: local });
      assert.deepEqual([again.productsInserted, again.productsUpdated, again.categories, again.types, again.embedded], [0, 4, 0, 0, 0]);

      // A deployment on OpenAI's small model: the file's vectors are used as they are, only the rest is embedded.
      const openai = openAiLike({ 'light hammer with a long handle': 102 });
      const switched = await ensureEmbeddings(t.db, { provider: openai });
      assert.equal(switched.embedded, CATALOG_PRODUCTS + 1);
      assert.ok(!openai.embeddedSkus.some((sku) => ['REF-HAM-001', 'REF-HAM-002', noSku].includes(sku)), 'the file\'s vectors are not re-embedded');
      const found = await searchProducts(t.db, hq, { query: 'light hammer with a long handle', maxRows: 3 }, { provider: openai });
      assert.equal(found.model, 'text-embedding-3-small');
      assert.equal(found.results[0]?.sku, 'REF-HAM-002');
      assert.equal(found.results[0]?.similarityPercent, 100);
      // The local model's embeddings went (one computed model per product, as before); the file's stayed.
      const after = await t.db.ownerQuery('SELECT model, imported, count(*) FROM retail.product_description_embeddings GROUP BY 1, 2 ORDER BY 2, 1');
      assert.deepEqual(after.rows.map((r) => r.map(String)), [['text-embedding-3-small', 'false', String(CATALOG_PRODUCTS + 1)], ['text-embedding-3-small', 'true', '3']]);
    });

    test('fix: two products may share a name under different SKUs; category and type names match in any case', async () => {
      // The old importer refused the repeated name, and added "HAND TOOLS" beside "Hand Tools".
      const catalog = parseCatalog(
        JSON.stringify({
          categories: [
            { name: 'HAND TOOLS', types: [{ name: 'hammers & mallets', products: [
              { sku: 'DUP-1', name: 'Zava Dead Blow Mallet', description: 'A 2 lb dead blow mallet.', price: 21 },
              { sku: 'DUP-2', name: 'Zava Dead Blow Mallet', description: 'A 3 lb dead blow mallet.', price: 24 },
            ] }] },
            { name: 'Hand  tools', types: [{ name: 'Hammers & Mallets', products: [{ sku: 'DUP-3', name: 'Zava Soft Mallet', description: 'A rubber mallet.', price: 9 }] }] },
          ],
        }),
        'dups.json',
      );
      const before = await t.db.ownerQuery('SELECT count(*) FROM retail.categories');
      const report = await importCatalog(t.db, catalog, { provider: hashed });
      assert.deepEqual([report.productsInserted, report.categories, report.types], [3, 0, 0]);
      assert.deepEqual((await t.db.ownerQuery('SELECT count(*) FROM retail.categories')).rows, before.rows);
      const placed = await t.db.ownerQuery(
        `SELECT DISTINCT c.category_name, t.type_name FROM retail.products p JOIN retail.categories c USING (category_id)
           JOIN retail.product_types t USING (type_id) WHERE p.sku LIKE 'DUP-%'`,
      );
      assert.deepEqual(placed.rows, [['Hand Tools', 'Hammers & Mallets']]);
      // Without SKUs, the same name in the same type would be one product twice: refused, with both places.
      const twins = parseCatalog(
        JSON.stringify({ categories: [{ name: 'A', types: [{ name: 'T', products: [{ name: 'P', description: 'd', price: 1 }, { name: 'p', description: 'e', price: 2 }] }] }] }),
        'twins.json',
      );
      await assert.rejects(importCatalog(t.db, twins, { provider: hashed }), /categories\.0\.types\.0\.products\.1: "p" has no SKU and another product of the same name and type has none either/);
    });

    test('fix: --replace makes the file the whole catalog; refused while orders hold a dropped product unless withOrders', async () => {
      const file = path.join(dir, 'product_data.json');
      const plan = await readCatalogFile(file, 'product_data.json');
      const before = await counts(t.db);
      await assert.rejects(importCatalog(t.db, plan, { provider: hashed, replace: true }), (e: unknown) =>
        e instanceof DataLoadError && /--replace would remove \d+ products that are not in the file, but [\d,]+ orders \([\d,]+ order lines\) hold some of them; nothing was changed\. Add --with-orders/.test(e.message));
      assert.deepEqual(await counts(t.db), before);
      const ordersBefore = Number((await t.db.ownerQuery('SELECT count(*) FROM retail.orders')).rows[0]![0]);
      const report = await importCatalog(t.db, plan, { provider: hashed, replace: true, withOrders: true });
      assert.ok(report.removed.products >= CATALOG_PRODUCTS && report.removed.orders > 0 && report.removed.orderLines >= report.removed.orders, JSON.stringify(report.removed));
      const left = await t.db.ownerQuery(`
        SELECT (SELECT count(*) FROM retail.products), (SELECT string_agg(category_name, ',' ORDER BY category_name) FROM retail.categories),
               (SELECT count(*) FROM retail.product_types), (SELECT count(*) FROM retail.orders),
               (SELECT count(*) FROM retail.order_items i WHERE NOT EXISTS (SELECT 1 FROM retail.products p WHERE p.product_id = i.product_id)),
               (SELECT count(DISTINCT product_id) FROM retail.inventory), (SELECT count(*) FROM retail.stores), (SELECT count(*) FROM retail.customers)`);
      assert.deepEqual(left.rows[0]!.map(String), ['4', 'Hand Tools,PET SUPPLIES', '2', String(ordersBefore - report.removed.orders), '0', '3', '8', '40']);
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const search = await searchProducts(t.db, hq, { query: 'framing hammer', maxRows: 5, similarityThreshold: 20 }, { provider: hashed });
      assert.ok(search.results.length > 0 && search.results.every((r) => r.sku.startsWith('REF-') || r.sku.startsWith('IMP-')), search.results.map((r) => r.sku).join(' '));
    });
  });

  describe(`first run on a ${kind} database that holds only an imported catalog`, { skip }, () => {
    let t: TestDatabase;
    let dir: string;
    before(async () => {
      t = await createTestDatabase(kind, { seeded: false });
      dir = await mkdtemp(path.join(tmpdir(), 'zava-catalog-first-run-'));
    });
    after(async () => {
      await t?.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('fix: serve seeds stores, customers and orders around the imported catalog (it died on a duplicate key)', async () => {
      const file = path.join(dir, 'product_data.json');
      await writeReferenceCatalog(file, REFERENCE);
      const local = new LocalEmbeddingProvider();
      const imported = await importCatalog(t.db, await readCatalogFile(file, 'product_data.json'), { provider: local });
      assert.deepEqual([imported.productsInserted, imported.stockLevels, imported.stores], [4, 3, 0], 'no stores yet: stock levels kept for them');
      const catalogBefore = await t.db.ownerQuery('SELECT product_id, sku FROM retail.products ORDER BY product_id');
      if (kind === 'embedded') await t.db.close(); // PGlite: one process, one handle
      const previous = process.env.ZAVA_CUSTOMERS;
      process.env.ZAVA_CUSTOMERS = '60';
      const lines: string[] = [];
      let db: ManagedDatabase | undefined;
      try {
        db = await prepareDatabase(t.config, (line) => lines.push(line), local, (line) => lines.push(line), undefined, { step() {}, update() {}, done() {} });
        assert.ok(lines.some((l) => /generated around that catalog/.test(l)), lines.join('\n'));
        assert.deepEqual((await db.ownerQuery('SELECT product_id, sku FROM retail.products ORDER BY product_id')).rows, catalogBefore.rows, 'the catalog is kept, ids and all');
        const facts = await db.ownerQuery(`
          SELECT (SELECT count(*) FROM retail.stores), (SELECT count(*) FROM retail.customers), (SELECT count(*) > 0 FROM retail.orders),
                 (SELECT count(*) FROM retail.order_items i WHERE NOT EXISTS (SELECT 1 FROM retail.products p WHERE p.product_id = i.product_id)),
                 (SELECT count(*) FROM retail.categories), (SELECT count(*) FROM retail.product_description_embeddings WHERE imported)`);
        assert.deepEqual(facts.rows[0]!.map(String), ['8', '60', 'true', '0', '2', '3']);
        const stock = await db.ownerQuery(
          `SELECT p.sku, min(i.stock_level), max(i.stock_level), count(*) FROM retail.inventory i JOIN retail.products p USING (product_id)
            WHERE p.sku IN ('REF-HAM-001', 'REF-HAM-002') GROUP BY 1 ORDER BY 1`,
        );
        assert.deepEqual(stock.rows.map((r) => r.slice(1).map(Number)), [[12, 12, 8], [3, 3, 8]], 'the file\'s stock levels in every store the first run created');
        const hq = await db.resolveIdentity(HEAD_OFFICE);
        assert.ok((await searchProducts(db, hq, { query: 'dog leash', maxRows: 2 }, { provider: local })).results.length > 0);
      } finally {
        if (previous === undefined) delete process.env.ZAVA_CUSTOMERS;
        else process.env.ZAVA_CUSTOMERS = previous;
        await db?.close();
      }
    });
  });
}
