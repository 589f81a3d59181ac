// Hybrid product search on real databases (embedded PGlite + pgvector, and the PostgreSQL service without
// pgvector, exact scan over cube chunks): ranking, same results on both backends, RLS on stock levels, the model-mix refusal, resumable
// rebuilds, and catalog import that refuses bad files and leaves nothing half-done.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { backendsUnderTest, createTestDatabase, sampleCatalog, type TestDatabase } from './support/databases.js';
import { localCosines } from './support/embeddings.js';
import { SAMPLE_QUERIES as QUERIES } from './support/search-queries.js';
import { ensureEmbeddings, rebuildEmbeddings } from '../src/search/store.js';
import { inRankOrder, searchProducts, SearchInputError, understoodShare, type ProductSearchResult } from '../src/search/search.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { EmbeddingError, EmbeddingModelMismatchError, type EmbeddingProvider, type ProductDocument } from '../src/search/provider.js';
import { importCatalog, parseCatalogFile } from '../src/search/catalog-import.js';
import { runCatalogImport } from '../src/cli/catalog.js';
import { DataLoadError } from '../src/infra/errors.js';
import { hasVectorCopy, vectorLoad } from '../src/search/vector-memory.js';
import { SEARCH_FUNCTION_DIMENSIONS, ensureSearchFunctions, rankedFunctionName, searchFunctionName, searchScan } from '../src/search/functions.js';
import { HNSW_EF_SEARCH, queryVectorParam, searchSql } from '../src/search/search-sql.js';

const HEAD_OFFICE = '00000000-0000-0000-0000-000000000000';
const SEATTLE = 'f47ac10b-58cc-4372-a567-0e02b2c3d479';
const resultsByBackend = new Map<string, string[][]>();
const SMALL_CATALOG = sampleCatalog(2, 2);
const CATALOG_PRODUCTS = SMALL_CATALOG.categories.reduce((sum, category) => sum + category.types.reduce((n, type) => n + type.products.length, 0), 0);

const backends = await backendsUnderTest();

for (const { kind, skip } of backends) {
  describe(`product search on ${kind}`, { skip }, () => {
    let t: TestDatabase;
    let provider: LocalEmbeddingProvider;
    before(async () => {
      t = await createTestDatabase(kind);
      provider = new LocalEmbeddingProvider();
      const report = await ensureEmbeddings(t.db, { provider });
      assert.equal(report.products, 608);
      assert.equal(report.remaining, 0);
    });
    after(async () => t?.cleanup());

    test('finds paint containers, breakers by amperage, SKUs; similarity in percent', async () => {
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const paint = await searchProducts(t.db, hq, { query: 'containers for paint', maxRows: 5 }, { provider });
      assert.equal(paint.results.length, 5);
      assert.ok(paint.results.every((r) => r.sku.startsWith('PS-CON')), paint.results.map((r) => r.sku).join(' '));
      const breakers = await searchProducts(t.db, hq, { query: '15 amp circuit breaker', maxRows: 4 }, { provider });
      assert.deepEqual(new Set(breakers.results.map((r) => r.sku)), new Set(['EL-BRK-001', 'EL-BRK-005', 'EL-BRK-007', 'EL-BRK-009']));
      for (const r of breakers.results) assert.ok(r.similarityPercent >= 30 && r.similarityPercent <= 100);
      const sku = await searchProducts(t.db, hq, { query: 'ht-ham-003' }, { provider });
      assert.equal(sku.results[0]?.sku, 'HT-HAM-003');
      assert.equal(sku.results[0]?.match, 'sku');
      assert.equal(sku.results[0]!.stockLevel, undefined, 'head office has no single store');
      const capped = await searchProducts(t.db, hq, { query: 'hammer', maxRows: 3, similarityThreshold: 20 }, { provider });
      assert.equal(capped.results.length, 3);
      const all: string[][] = [];
      for (const q of QUERIES) all.push((await searchProducts(t.db, hq, { query: q }, { provider })).results.map((r) => `${r.sku}:${r.similarityPercent}`));
      resultsByBackend.set(kind, all);
    });

    test('a product sharing one word with the query does not outrank the closest one; a trade name means its thing', async () => {
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const first = async (query: string) => (await searchProducts(t.db, hq, { query, maxRows: 5 }, { provider })).results.map((r) => r.sku);
      // Pliers whose description shares "cut" and "reach" used to come first by rank fusion; the pole pruner is
      // the embedding's clear first.
      const branches = await first('need to cut branches that are way too high to reach');
      assert.equal(branches[0], 'GO-PRN-004', branches.join(' '));
      // "weed whacker" is a string trimmer, not the sprayer "for weed control"; "channel locks" are pliers.
      const trimmer = await first('weed whacker');
      assert.equal(trimmer[0], 'GO-MOW-006', trimmer.join(' '));
      const pliers = await first('channel locks');
      assert.equal(pliers[0], 'HT-PLR-002', pliers.join(' '));
      // The term keeps weight through its group ("zero VOC" is a feature of paints, not of paint containers).
      const paints = await first('zero VOC paint');
      assert.deepEqual(new Set(paints.slice(0, 2)), new Set(['PS-INT-001', 'PS-INT-002']), paints.join(' '));
    });

    test('similarity reads in rank order, and a description the model cannot read matches nothing', async () => {
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      // Fused ranking puts full-text hits above products with a higher cosine; the percentages must not rise.
      for (const query of ['containers for paint', 'paint for a bathroom ceiling', 'tools for building a deck', 'cordless drill', 'HT-HAM-003', 'hamer']) {
        const shown = (await searchProducts(t.db, hq, { query, maxRows: 20, similarityThreshold: 20 }, { provider })).results.map((r) => r.similarityPercent);
        assert.ok(shown.length > 0, query);
        for (let i = 1; i < shown.length; i++) assert.ok(shown[i]! <= shown[i - 1]!, `${query}: ${shown.join(' ')}`);
      }
      // One nonsense word and one a typo away from "plug": mostly unknown, so nothing at the default threshold.
      for (const nonsense of ['xyzzy plugh', 'qwzx vbnq', 'plugh xyzzy frobozz']) {
        assert.deepEqual((await searchProducts(t.db, hq, { query: nonsense }, { provider })).results, [], nonsense);
      }
      // Things the shop does not sell, in words the model knows: nothing, rather than whatever shares a word.
      for (const query of ['dishwasher', 'a mattress for the guest room', 'gas grill']) {
        assert.deepEqual((await searchProducts(t.db, hq, { query }, { provider })).results, [], query);
      }
      // A typo of a catalog word alone is understood (spelling correction) and keeps its products.
      const hammers = await searchProducts(t.db, hq, { query: 'hamer', maxRows: 5 }, { provider });
      assert.ok(hammers.results.length >= 3 && hammers.results.slice(0, 3).every((r) => r.typeName === 'Hammers & Mallets'), hammers.results.map((r) => r.sku).join(' '));
    });

    test('search functions: one per size and version, stale versions dropped; a missing one falls back inline', async () => {
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const installed = async () =>
        (await t.db.ownerQuery(`SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'zava_search' AND p.proname LIKE 'products%' ORDER BY 1`)).rows.map((r) => String(r[0]));
      // Without pgvector: the cube-chunk scan where cube could be created (migration 13), else the real[] scan.
      const scan = await searchScan(t.db);
      if (kind === 'server' && !t.db.hasVector) assert.equal(scan, 'chunks', 'cube is available on the test service');
      // Without pgvector also the statement ranked in the server process (vector-memory.ts), one for every size.
      const ranked = t.db.hasVector ? [] : [rankedFunctionName().split('.')[1]!];
      const current = [...SEARCH_FUNCTION_DIMENSIONS.map((d) => searchFunctionName(t.db.hasVector, d, scan).split('.')[1]!), ...ranked].sort();
      assert.deepEqual(await installed(), current);
      const answers = async () => {
        const out: string[][] = [];
        for (const q of QUERIES) out.push((await searchProducts(t.db, hq, { query: q }, { provider })).results.map((r) => `${r.sku}:${r.similarityPercent}:${r.match}`));
        return out;
      };
      const viaFunction = await answers();
      // An older version is dropped; the current ones are left alone.
      const type = t.db.hasVector ? 'integer[]' : 'real[]';
      await t.db.withAdminTransaction((session) =>
        session.exec(`CREATE FUNCTION zava_search.products_vector_1024_0123456789ab(${type}) RETURNS integer LANGUAGE sql AS 'SELECT 1'`),
      );
      const cleaned = await ensureSearchFunctions(t.db, t.config.queryRole);
      assert.deepEqual(cleaned, { created: [], dropped: ['products_vector_1024_0123456789ab'] });
      assert.deepEqual(await installed(), current);
      // The function this process has been using disappears (a newer server dropped it): answers do not change.
      const name = searchFunctionName(t.db.hasVector, 1024, scan);
      await t.db.withAdminTransaction((session) => session.exec(`DROP FUNCTION ${name}(${type}, text, text, numeric, integer, integer)`));
      assert.deepEqual(await answers(), viaFunction);
      const restored = await ensureSearchFunctions(t.db, t.config.queryRole);
      assert.deepEqual(restored, { created: [name.split('.')[1]], dropped: [] });
      assert.deepEqual(await answers(), viaFunction);
      if (!t.db.hasVector) {
        // The same for the ranked statement, which these searches use once the embeddings are in memory.
        await vectorLoad(t.db);
        assert.ok(hasVectorCopy(t.db, provider.model));
        const rankedName = rankedFunctionName();
        await t.db.withAdminTransaction((session) =>
          session.exec(`DROP FUNCTION ${rankedName}(integer[], text, text, numeric, integer, integer, integer[], integer, bigint)`),
        );
        assert.deepEqual(await answers(), viaFunction);
        assert.deepEqual(await ensureSearchFunctions(t.db, t.config.queryRole), { created: [rankedName.split('.')[1]], dropped: [] });
        assert.deepEqual(await answers(), viaFunction);
      }
    });

    if (kind === 'embedded') {
      test('the vector ranking can use the inner-product HNSW index (as it does on large catalogs)', async () => {
        const vector = queryVectorParam(await provider.embedQuery('cordless drill'), true);
        const plan = await t.db.withAdminTransaction(async (session) => {
          // At 608 products a sort is cheaper; taking the sort away shows whether the index can serve the ORDER BY.
          await session.exec('SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off');
          return session.query(`EXPLAIN ${searchSql(true, 1024, HNSW_EF_SEARCH)}`, [vector, 'cordless drill', provider.model, 30, 20, null]);
        });
        assert.match(plan.rows.map((r) => String(r[0])).join('\n'), /Index Scan using product_embeddings_hnsw_1024_idx/);
      });
    }

    test('bad parameters are refused before any query', async () => {
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      await assert.rejects(searchProducts(t.db, hq, { query: '  ' }, { provider }), SearchInputError);
      await assert.rejects(searchProducts(t.db, hq, { query: 'x', maxRows: 101 }, { provider }), /max_rows must be a whole number from 1 to 100/);
      await assert.rejects(searchProducts(t.db, hq, { query: 'x', similarityThreshold: 90 }, { provider }), /similarity_threshold must be a percentage from 20 to 80/);
    });

    test("a store manager sees their own store's stock level", async () => {
      const seattle = await t.db.resolveIdentity(SEATTLE);
      assert.deepEqual(seattle.storeIds.length, 1);
      const storeId = (seattle.storeIds as readonly number[])[0]!;
      const response = await searchProducts(t.db, seattle, { query: 'garden hose', maxRows: 5 }, { provider });
      assert.equal(response.storeId, storeId);
      assert.ok(response.results.length > 0);
      for (const r of response.results) {
        const truth = await t.db.ownerQuery('SELECT stock_level FROM retail.inventory WHERE store_id = $1::int AND product_id = $2::int', [storeId, r.productId]);
        assert.equal(r.stockLevel, truth.rowCount ? Number(truth.rows[0]![0]) : null, r.sku);
      }
    });

    test('catalog import CLI refuses an invalid file before opening the database', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'zava-catalog-'));
      try {
        const file = path.join(dir, 'bad.json');
        await writeFile(file, '{\n  "categories": [\n    { "name": "", "types": [] }\n  ]\n}\n');
        await assert.rejects(runCatalogImport(t.config, file), /bad\.json:3: field categories\.0\.name: /);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  // Re-embedding the whole catalog (a model switch, an import the local model refits on) costs in proportion to
  // its size, most on embedded PGlite (HNSW inserts in WebAssembly): these run on the built-in catalog cut to 56
  // products (the database cli-search.test.ts and catalog-import.test.ts use, so the suite builds it once); what
  // they show does not depend on the size. The ranking tests above keep the full catalog.
  describe(`embeddings and catalog changes on ${kind}`, { skip }, () => {
    let t: TestDatabase;
    let provider: LocalEmbeddingProvider;
    before(async () => {
      t = await createTestDatabase(kind, { customers: 40, embeddings: false, catalog: SMALL_CATALOG });
      provider = new LocalEmbeddingProvider();
      assert.equal((await ensureEmbeddings(t.db, { provider })).embedded, CATALOG_PRODUCTS);
    });
    after(async () => t?.cleanup());

    test('refuses to mix models; a rebuild is resumable, one transaction per batch', async () => {
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const other = new LocalEmbeddingProvider(768);
      // An interrupted rebuild with another model: two batches of 20, then "crash".
      const partial = await rebuildEmbeddings(t.db, { provider: other, batchSize: 20, maxBatches: 2 });
      assert.equal(partial.embedded, 40);
      assert.equal(partial.remaining, CATALOG_PRODUCTS - 40);
      await assert.rejects(searchProducts(t.db, hq, { query: 'hammer' }, { provider: other }), (e: unknown) =>
        e instanceof EmbeddingModelMismatchError && /zava-local-v4-768d.*40 products/.test(e.message) && /embeddings rebuild/.test(e.message));
      await assert.rejects(searchProducts(t.db, hq, { query: 'hammer' }, { provider }), EmbeddingModelMismatchError);
      // Resume: only the rest is embedded.
      const resumed = await rebuildEmbeddings(t.db, { provider: other, batchSize: 20 });
      assert.equal(resumed.embedded, CATALOG_PRODUCTS - 40);
      assert.equal(resumed.remaining, 0);
      assert.equal((await searchProducts(t.db, hq, { query: 'hammer', maxRows: 3 }, { provider: other })).results.length, 3);
      await assert.rejects(searchProducts(t.db, hq, { query: 'hammer' }, { provider }), /the query embedding comes from zava-local-v4-1024d/);
      // Back to the default model; nothing left to do afterwards.
      assert.equal((await ensureEmbeddings(t.db, { provider })).embedded, CATALOG_PRODUCTS);
      assert.equal((await ensureEmbeddings(t.db, { provider })).embedded, 0);
    });

    if (kind === 'embedded') {
      test('a large load builds its HNSW index once at the end, also after a failed batch; a missing index is built again', async () => {
        const INDEX = 'retail.product_embeddings_hnsw_1024_idx';
        const index = async () => (await t.db.ownerQuery(`SELECT to_regclass($1)::oid::int, pg_get_indexdef(to_regclass($1))`, [INDEX])).rows[0]!;
        const [oid, definition] = await index();
        assert.match(String(definition), /USING hnsw .*vector_ip_ops\) WITH \(m='32', ef_construction='128'\) WHERE \(dimensions = 1024\)/);
        // The local model as fitted now, not refitted on the catalog (a refit is a new model: everything pending).
        const fitted = (embedDocuments: EmbeddingProvider['embedDocuments']): EmbeddingProvider => ({
          kind: provider.kind, model: provider.model, dimensions: provider.dimensions, batchSize: provider.batchSize, needsCorpus: false, fit() {},
          embedDocuments, embedQuery: (text) => provider.embedQuery(text),
        });
        // A few stale products go into the index as they are stored: the same index.
        await t.db.withAdminTransaction((session) => session.exec("UPDATE retail.products SET product_description = product_description || ' ' WHERE product_id IN (SELECT product_id FROM retail.products ORDER BY product_id LIMIT 3)"));
        assert.equal((await ensureEmbeddings(t.db, { provider: fitted((documents) => provider.embedDocuments(documents)) })).embedded, 3);
        assert.deepEqual(await index(), [oid, definition]);
        // Re-embedding everything: dropped first, built once at the end, the same definition; and when the second
        // batch fails, built again over what the first stored.
        let calls = 0;
        const failsSecond = fitted((documents) => (++calls === 2 ? Promise.reject(new EmbeddingError('provider down')) : provider.embedDocuments(documents)));
        await assert.rejects(rebuildEmbeddings(t.db, { provider: failsSecond, batchSize: 20, force: true }), /provider down/);
        const [afterFailure, failureDefinition] = await index();
        assert.notEqual(afterFailure, oid, 'built again, not kept');
        assert.equal(failureDefinition, definition);
        assert.equal((await rebuildEmbeddings(t.db, { provider, force: true })).embedded, CATALOG_PRODUCTS);
        const [rebuilt, rebuiltDefinition] = await index();
        assert.notEqual(rebuilt, afterFailure);
        assert.equal(rebuiltDefinition, definition);
        // A process that stopped between the drop and the build: the next start's check builds it.
        await t.db.withAdminTransaction((session) => session.exec(`DROP INDEX ${INDEX}`));
        assert.equal((await ensureEmbeddings(t.db, { provider })).embedded, 0);
        assert.equal((await index())[1], definition);
        const hq = await t.db.resolveIdentity(HEAD_OFFICE);
        assert.equal((await searchProducts(t.db, hq, { query: 'hammer', maxRows: 3 }, { provider })).results.length, 3);
      });
    }

    test('catalog import: a bad file is refused with its line; a failed import leaves nothing', async () => {
      const bad = JSON.stringify({ categories: [{ name: 'Pet Supplies', types: [{ name: 'Leashes', products: [{ name: 'Rope Leash', description: 'A leash.', price: 'cheap' }] }] }] }, null, 2);
      assert.throws(() => parseCatalogFile(bad, 'pets.json'), (e: unknown) => e instanceof DataLoadError && /^pets\.json:12: field categories\.0\.types\.0\.products\.0\.price: /.test(e.message));
      assert.throws(() => parseCatalogFile('{"categories": [\n  {"name": "A",,}\n]}', 'broken.json'), /broken\.json:2: not valid JSON/);
      const before = await t.db.ownerQuery('SELECT (SELECT count(*) FROM retail.products), (SELECT count(*) FROM retail.categories), (SELECT count(*) FROM retail.product_description_embeddings)');
      const catalog = parseCatalogFile(
        JSON.stringify({ categories: [{ name: 'Pet Supplies', types: [{ name: 'Leashes', products: [{ sku: 'PET-001', name: 'Zava Rope Dog Leash, 6 ft', description: 'A braided nylon rope leash for walking dogs.', price: 14.99 }, { name: 'Zava Retractable Leash', description: 'Extends to 16 ft for walks in the park.', price: 24.99 }] }] }] }),
        'pets.json',
      );
      const failing: EmbeddingProvider = {
        kind: 'openai', model: 'broken', dimensions: 1024, batchSize: 64, needsCorpus: false, fit() {},
        embedDocuments: async () => { throw new EmbeddingError('provider down'); },
        embedQuery: async () => { throw new EmbeddingError('provider down'); },
      };
      await assert.rejects(importCatalog(t.db, catalog, { provider: failing }), /provider down/);
      const unchanged = await t.db.ownerQuery('SELECT (SELECT count(*) FROM retail.products), (SELECT count(*) FROM retail.categories), (SELECT count(*) FROM retail.product_description_embeddings)');
      assert.deepEqual(unchanged.rows, before.rows, 'nothing half-imported');
      const fresh = new LocalEmbeddingProvider();
      const report = await importCatalog(t.db, catalog, { provider: fresh });
      assert.equal(report.productsInserted, 2);
      assert.equal(report.embedded, CATALOG_PRODUCTS + 2, 'the local model refits on the merged catalog and re-embeds it');
      const hq = await t.db.resolveIdentity(HEAD_OFFICE);
      const found = await searchProducts(t.db, hq, { query: 'leash for my dog', maxRows: 2 }, { provider: fresh });
      assert.equal(found.results[0]?.sku, 'PET-001');
      // Re-importing the same file changes nothing but is accepted (products matched by SKU / stable SKU).
      const again = await importCatalog(t.db, catalog, { provider: fresh });
      assert.deepEqual([again.productsInserted, again.productsUpdated, again.embedded], [0, 2, 0]);
    });
  });
}

describe('backends agree', () => {
  test('embedded (pgvector) and server (exact scan over cube chunks, or real[] without cube) rank identically', { skip: backends.some((b) => b.skip) ? 'needs both backends' : false }, () => {
    const embedded = resultsByBackend.get('embedded');
    const server = resultsByBackend.get('server');
    assert.ok(embedded && server, 'both backends ran');
    // The same products in the same order; the percentages may differ by the last digit, since pgvector computes
    // the cosine in float4 and the exact scan in float8, and a value at a rounding boundary goes either way.
    const skus = (runs: string[][]) => runs.map((run) => run.map((r) => r.split(':')[0]));
    assert.deepEqual(skus(server), skus(embedded));
    server.forEach((run, q) =>
      run.forEach((r, i) => {
        const [a, b] = [Number(r.split(':')[1]), Number(embedded[q]![i]!.split(':')[1])];
        assert.ok(Math.abs(a - b) <= 0.1 + 1e-9, `${QUERIES[q]}: ${r} against ${embedded[q]![i]}`);
      }),
    );
  });
});

void ({} as ProductDocument);

describe('similarity calibration', () => {
  test('a query is believed in full from 60 % of its words understood, not at all below 30 %', () => {
    assert.equal(understoodShare(1), 1);
    assert.equal(understoodShare(0.6), 1);
    assert.equal(understoodShare(0.3), 0);
    assert.equal(understoodShare(0), 0);
    assert.ok(Math.abs(understoodShare(0.45) - 0.5) < 1e-9);
    assert.equal(understoodShare(Number.NaN), 1, 'a provider without the notion is believed');
  });

  test('the local model counts known, spelling-corrected and unknown words', () => {
    const model = new LocalEmbeddingProvider(256);
    model.fit([
      { productId: 1, sku: 'A-1', name: 'Claw Hammer', description: 'A steel claw hammer for nails.', typeName: 'Hammers', categoryName: 'Hand Tools' },
      { productId: 2, sku: 'A-2', name: 'Wall Plug Pack', description: 'Plastic wall plugs for screws in masonry.', typeName: 'Fixings', categoryName: 'Hardware' },
    ]);
    const coverage = (text: string) => model.fittedModel!.queryCoverage(text);
    assert.equal(coverage('claw hammer'), 1);
    assert.equal(coverage('a hammer for the garden'), 1, 'English words the catalog lacks are still understood');
    assert.equal(coverage('10mm A-1'), 1, 'sizes and SKUs count as known');
    assert.equal(coverage('xyzzy'), 0);
    assert.equal(coverage('xyzzy plugh'), 0.375, 'plugh is a typo of plug: 3/4 of a word');
    assert.equal(coverage('the of and'), 1, 'no content word: unspecific, not unknown');
  });

  test('a product query whose head noun the catalog has nothing of is not understood', () => {
    const model = new LocalEmbeddingProvider(256);
    model.fit([
      { productId: 1, sku: 'A-1', name: 'Claw Hammer', description: 'A steel claw hammer for nails.', typeName: 'Hammers', categoryName: 'Hand Tools' },
      { productId: 2, sku: 'A-2', name: 'Wall Plug Pack', description: 'Plastic wall plugs for screws in masonry.', typeName: 'Fixings', categoryName: 'Hardware' },
    ]);
    const fitted = model.fittedModel!;
    assert.equal(fitted.foreignHead('dishwasher'), 'dishwasher');
    assert.equal(fitted.queryCoverage('dishwasher'), 0);
    assert.equal(fitted.foreignHead('steel chisel'), 'chisel', 'a kind of tool, but not one this shop has');
    assert.equal(fitted.foreignHead('a dishwasher for the kitchen'), 'dishwasher', 'the head is what comes before the purpose');
    // What the catalog has, by word, by kind (a hammer is a tool) or as a modifier, stays understood.
    for (const query of ['claw hammer', 'steel hammer', 'tools', 'hardware', 'a hammer for the garden', 'something for the kitchen', 'plug for a dishwasher']) {
      assert.equal(fitted.foreignHead(query), undefined, query);
    }
    assert.equal(fitted.queryCoverage('a hammer for the garden'), 1);
    // The DIY thesaurus knows these words, but this shop has nothing of their groups: foreign all the same.
    assert.equal(fitted.foreignHead('refrigerator'), 'refrigerator');
    assert.equal(fitted.foreignHead('sheetrock'), 'sheetrock');
    // A shop that sells drywall understands the trade name the thesaurus puts beside it.
    const drywall = new LocalEmbeddingProvider(256);
    drywall.fit([{ productId: 1, sku: 'D-1', name: 'Drywall Panel, 4 x 8 ft', description: 'Gypsum board for interior walls.', typeName: 'Drywall', categoryName: 'Building Materials' }]);
    assert.equal(drywall.fittedModel!.foreignHead('sheetrock'), undefined);
    assert.equal(drywall.fittedModel!.queryCoverage('sheetrock'), 1);
  });

  test('in a query, the words of a trade name count for less than the thing it names', () => {
    const cosines = localCosines([
      { productId: 1, sku: 'G-1', name: 'Cordless String Trimmer', description: 'Battery trimmer for edging lawns.', typeName: 'Trimmers', categoryName: 'Garden' },
      { productId: 2, sku: 'G-2', name: 'Pump Sprayer, 2 gal', description: 'A tank sprayer for weed control and fertilizer.', typeName: 'Sprayers', categoryName: 'Garden' },
      { productId: 3, sku: 'H-1', name: 'Keyed Entry Door Lock', description: 'A lock set for front and back doors.', typeName: 'Locks', categoryName: 'Hardware' },
      { productId: 4, sku: 'H-2', name: 'Tongue-and-Groove Pliers', description: 'Adjustable jaws grip pipe and fittings.', typeName: 'Pliers', categoryName: 'Hand Tools' },
    ]);
    const cosine = (query: string, productIndex: number) => cosines(query)[productIndex]!;
    assert.ok(cosine('weed whacker', 0) > cosine('weed whacker', 1), 'the trimmer, not the sprayer for weeds');
    assert.ok(cosine('channel locks', 3) > cosine('channel locks', 2), 'the pliers, not the door lock');
    // A word alone keeps its weight: "weed" still finds the sprayer for weeds.
    assert.ok(cosine('weed', 1) > cosine('weed', 0));
  });

  test('shown similarities never rise down the list; each result keeps at least its own', () => {
    const result = (similarityPercent: number) => ({ similarityPercent }) as ProductSearchResult;
    const shown = inRankOrder([38.7, 30.7, 63.5, 46.7, 62.2, Number.NaN, 33.6].map(result)).map((r) => r.similarityPercent);
    assert.deepEqual(shown.slice(0, 5), [63.5, 63.5, 63.5, 62.2, 62.2]);
    assert.ok(Number.isNaN(shown[5]!), 'a row without a cosine stays without one (dropped by the answer)');
    assert.equal(shown[6], 33.6);
  });
});
