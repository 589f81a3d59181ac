// The vector ranking in the server process (src/search/vector-memory.ts) on the PostgreSQL service without
// pgvector: the same rows as the in-database exact scan for several identities (stock levels and RLS included),
// a catalog import seen by the very next search on this handle and on a second handle sharing the database, the
// memory cap, and the embedded backend (pgvector) keeping its HNSW path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';
import { labelledQueries, SAMPLE_QUERIES as QUERIES } from './support/search-queries.js';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { ensureEmbeddings } from '../src/search/store.js';
import { searchProducts } from '../src/search/search.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { importCatalog, parseCatalogFile } from '../src/search/catalog-import.js';
import { queryVectorParam, rankedSearchSql, searchSql } from '../src/search/search-sql.js';
import { buildMatrix, hasVectorCopy, rank, rankInProcess, roundCosine, vectorLoad } from '../src/search/vector-memory.js';
import { openDatabase } from '../src/db/open.js';
import { prepareSchema } from '../src/cli/migrate.js';
import type { Identity, ManagedDatabase } from '../src/db/types.js';

/** Every 10th labelled query of each evaluation set (all of them: bench/search-speed.ts --compare-scans). */
const LABELLED = labelledQueries(10);
const WHO = [HEAD_OFFICE_USER_ID, STORES[0]!.managerId, STORES[3]!.managerId, REGIONAL_MANAGERS[0]!.managerId];

const backends = await backendsUnderTest();
const server = backends.find((b) => b.kind === 'server')!;

describe('vector ranking in the server process (PostgreSQL service without pgvector)', { skip: server.skip }, () => {
  let t: TestDatabase;
  let provider: LocalEmbeddingProvider;
  let second: ManagedDatabase | undefined;
  before(async () => {
    t = await createTestDatabase('server');
    provider = new LocalEmbeddingProvider();
    await ensureEmbeddings(t.db, { provider });
  });
  after(async () => {
    await second?.close();
    await t?.cleanup();
  });

  /** Searches once (which starts the load) and waits for the copy. */
  /** Another handle on the same database, as another server process opens it. */
  const open = async () => {
    const db = await openDatabase(t.config);
    await prepareSchema(db, t.config);
    return db;
  };

  const loaded = async (db: ManagedDatabase, identity: Identity, model: LocalEmbeddingProvider) => {
    await searchProducts(db, identity, { query: 'hammer' }, { provider: model });
    await vectorLoad(db);
    assert.ok(hasVectorCopy(db, model.model), 'the embeddings are held in memory');
  };

  /** Each query through the ranked statement and through the in-database exact scan, as `identity`, 100 rows at 20 %. */
  const bothPaths = async (db: ManagedDatabase, identity: Identity, queries: readonly string[], model: LocalEmbeddingProvider) => {
    const storeId = identity.storeIds !== 'all' && identity.storeIds.length === 1 ? identity.storeIds[0]! : null;
    const differing: string[] = [];
    let rows = 0;
    for (const q of queries) {
      const vector = await model.embedQuery(q);
      const ranking = rankInProcess(db, identity, model.model, model.dimensions, vector);
      assert.ok(ranking, 'a copy is loaded');
      const [inDatabase, inProcess] = await db.withIdentity(identity, async (session) => [
        await session.query(searchSql(false, model.dimensions, undefined, 'chunks'), [queryVectorParam(vector, false), q, model.model, 20, 100, storeId], { maxRows: 100 }),
        await session.query(rankedSearchSql(), [ranking.topIds, q, model.model, 20, 100, storeId, ranking.cosines, ranking.baseId, ranking.version], { maxRows: 100 }),
      ]);
      rows += inProcess.rowCount;
      if (JSON.stringify(inProcess.rows) !== JSON.stringify(inDatabase.rows)) differing.push(q);
    }
    return { differing, rows };
  };

  test('the same rows as the in-database scan for every identity, and the same searchProducts answers', async () => {
    const hq = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
    await loaded(t.db, hq, provider);
    for (const userId of WHO) {
      const identity = await t.db.resolveIdentity(userId);
      const { differing, rows } = await bothPaths(t.db, identity, [...QUERIES, ...LABELLED], provider);
      assert.deepEqual(differing, [], userId);
      assert.ok(rows > 300, `${rows} rows compared`);
    }
    // Whole answers (stock levels of a one-store manager included): a handle with the copy against one without.
    second = await open();
    process.env.ZAVA_SEARCH_MEMORY_MB = '0'; // read when a load starts: the second handle keeps the in-database scan
    try {
      const seattle = await t.db.resolveIdentity(STORES[0]!.managerId);
      for (const q of QUERIES) {
        const a = await searchProducts(t.db, seattle, { query: q }, { provider });
        const b = await searchProducts(second, seattle, { query: q }, { provider });
        assert.deepEqual(a, b, q);
        assert.ok(a.results.every((r) => r.stockLevel !== undefined), 'a one-store manager sees stock levels');
      }
      await vectorLoad(second);
      assert.equal(hasVectorCopy(second, provider.model), false, 'over the cap: no copy');
    } finally {
      delete process.env.ZAVA_SEARCH_MEMORY_MB;
    }
    await second.close();
    second = undefined;
  });

  test('a catalog import is seen by the next search, on this handle and on a second one sharing the database', async () => {
    const hq = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
    second = await open();
    await loaded(t.db, hq, provider);
    await loaded(second, hq, provider);
    // The import refits the local model on the merged catalog (a new model name, so no copy yet).
    const catalog = parseCatalogFile(
      JSON.stringify({ categories: [{ name: 'Pet Supplies', types: [{ name: 'Leashes', products: [{ sku: 'PET-001', name: 'Zava Rope Dog Leash, 6 ft', description: 'A braided nylon rope leash for walking dogs.', price: 14.99 }] }] }] }),
      'pets.json',
    );
    // Imported through the second handle with the same provider object: the first handle's copy is of the old embeddings.
    await importCatalog(second, catalog, { provider });
    for (const db of [t.db, second]) {
      const r = await searchProducts(db, hq, { query: 'leash for my dog', maxRows: 3 }, { provider });
      assert.equal(r.results[0]?.sku, 'PET-001', 'the imported product is found at once');
    }
    // The copies reload in the background and then give the in-database scan's rows again.
    for (const db of [t.db, second]) {
      await searchProducts(db, hq, { query: 'leash' }, { provider });
      await vectorLoad(db);
      assert.ok(hasVectorCopy(db, provider.model));
      assert.deepEqual((await bothPaths(db, hq, ['leash for my dog', ...QUERIES], provider)).differing, []);
    }
    // A write that keeps the model: the leash's embedding replaced by a hammer's, on the first handle. The second
    // handle's copy is stale; its next search must answer as a handle without a copy (the in-database scan) does.
    const before = await searchProducts(second, hq, { query: 'leash for my dog', maxRows: 5 }, { provider });
    await t.db.ownerQuery(
      `UPDATE retail.product_description_embeddings e SET description_embedding = h.description_embedding
         FROM retail.product_description_embeddings h
        WHERE e.model = h.model AND e.product_id = (SELECT product_id FROM retail.products WHERE sku = 'PET-001')
          AND h.product_id = (SELECT product_id FROM retail.products WHERE sku = 'HT-HAM-003')`,
    );
    const third = await open(); // its first search runs the in-database scan
    try {
      const truth = await searchProducts(third, hq, { query: 'leash for my dog', maxRows: 5 }, { provider });
      const seen = await searchProducts(second, hq, { query: 'leash for my dog', maxRows: 5 }, { provider });
      assert.notDeepEqual(truth, before, 'the update changes the answer');
      assert.deepEqual(seen, truth);
    } finally {
      await third.close();
    }
  });

  test('cosines round as PostgreSQL rounds float8 to numeric(…, 4)', async () => {
    const samples = [0.12345, -0.12345, 0.00005, -0.00005, 0.99995, 0.123449999999999, 0.1234499999999999, 1, -1, 0, 1e-9, 0.5, 0.30000000000000004];
    const r = await t.db.ownerQuery(`SELECT (round(x::numeric, 4) * 10000)::int FROM unnest($1::float8[]) WITH ORDINALITY AS u(x, i) ORDER BY i`, [`{${samples.map(String).join(',')}}`]);
    assert.deepEqual(samples.map(roundCosine), r.rows.map((row) => Number(row[0])));
  });
});

describe('the in-process ranking itself', () => {
  test('dense and sparse layouts give the exact top 100 (ties by id) and the same cosines as a plain dot product', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const dimensions = 64;
    // 500 products, ids with gaps, half the coordinates zero, and some exact duplicates (ties at the cut).
    const ids = Array.from({ length: 500 }, (_, i) => 10 + i * 2 + (i > 250 ? 7 : 0));
    const vectors = ids.map(() => Float32Array.from({ length: dimensions }, () => (random() < 0.5 ? 0 : random() - 0.5)));
    for (let i = 0; i < 60; i++) vectors[300 + i] = vectors[i]!;
    const query = Array.from({ length: dimensions }, () => (random() < 0.3 ? 0 : random() - 0.5));
    const q = query.map((v) => Math.fround(Number(v.toPrecision(8))));
    const dots = vectors.map((v) => v.reduce((sum, x, k) => sum + (x === 0 || q[k] === 0 ? 0 : q[k]! * x), 0));
    const order = ids.map((id, i) => ({ id, dot: dots[i]! })).sort((a, b) => b.dot - a.dot || a.id - b.id);
    const expectedTop = new Set(order.slice(0, 100).map((o) => o.id));
    for (const layout of ['dense', 'sparse'] as const) {
      const ranking = rank(buildMatrix('1', ids, vectors, dimensions, layout), query);
      const top = ranking.topIds.slice(1, -1).split(',').map(Number);
      assert.equal(top.length, 100, layout);
      assert.deepEqual(new Set(top), expectedTop, layout);
      const cosines = ranking.cosines.slice(1, -1).split(',').map(Number);
      assert.equal(ranking.baseId, 10);
      assert.equal(cosines.length, ids.at(-1)! - 10 + 1);
      ids.forEach((id, i) => assert.equal(cosines[id - 10], roundCosine(dots[i]!), `${layout} ${id}`));
      assert.equal(cosines[1], 32_767, 'an id without an embedding');
    }
  });
});

describe('embedded backend (pgvector): no in-process copy, the HNSW search as before', () => {
  test('searches do not load the embeddings into memory', async () => {
    const t = await createTestDatabase('embedded');
    try {
      const provider = new LocalEmbeddingProvider();
      const hq = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
      const r = await searchProducts(t.db, hq, { query: 'containers for paint', maxRows: 3 }, { provider });
      assert.equal(r.results.length, 3);
      await vectorLoad(t.db);
      assert.equal(hasVectorCopy(t.db, provider.model), false);
      assert.equal(rankInProcess(t.db, hq, provider.model, provider.dimensions, await provider.embedQuery('paint')), undefined);
    } finally {
      await t.cleanup();
    }
  });
});
