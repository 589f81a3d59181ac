// The exact scan over cube chunks (migration 13) on the PostgreSQL service without pgvector: the same answers as
// the exact scan over real[] (row for row, similarities and fusion scores included) on the test queries and the
// labelled evaluation queries, as the query role under RLS; chunks kept in step by catalog import and embedding
// rebuilds; and the embedded backend (pgvector, HNSW) without any of it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { queryRoleUrl } from '../src/db/server/backend.js';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';
import { labelledQueries, SAMPLE_QUERIES as QUERIES } from './support/search-queries.js';
import { ensureEmbeddings, rebuildEmbeddings } from '../src/search/store.js';
import { searchProducts } from '../src/search/search.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { importCatalog, parseCatalogFile } from '../src/search/catalog-import.js';
import { searchFunctionName } from '../src/search/functions.js';
import { queryVectorParam, searchSql } from '../src/search/search-sql.js';
import { EMBEDDING_CHUNK_DIMENSIONS, EMBEDDING_CHUNKS_PER_ROW } from '../src/db/migrations.js';
import { migrateDatabase } from '../src/db/open.js';

const HEAD_OFFICE = '00000000-0000-0000-0000-000000000000';
/** Every 8th labelled query of each evaluation set: 40 queries of every kind (all of them: bench/search-speed.ts --server-catalogs=608 --compare-scans). */
const LABELLED = labelledQueries(8);

const backends = await backendsUnderTest();
const server = backends.find((b) => b.kind === 'server')!;

describe('exact scan over cube chunks (PostgreSQL service without pgvector)', { skip: server.skip }, () => {
  let t: TestDatabase;
  let provider: LocalEmbeddingProvider;
  /** The provider of the stored embeddings after the import test (fitted on the merged catalog). */
  let current: LocalEmbeddingProvider | undefined;
  before(async () => {
    t = await createTestDatabase('server');
    provider = new LocalEmbeddingProvider();
    await ensureEmbeddings(t.db, { provider });
  });
  after(async () => t?.cleanup());

  /**
   * Chunk rows expected (one per 800 coordinates of each stored embedding) and found, and embeddings whose cubes,
   * read back in order, are not exactly their coordinates (as float8) or whose rows' squared norms do not add up.
   */
  const chunkCounts = async () => {
    const perRow = EMBEDDING_CHUNK_DIMENSIONS * EMBEDDING_CHUNKS_PER_ROW;
    const cubes = Array.from({ length: EMBEDDING_CHUNKS_PER_ROW }, (_, j) => `c.c${j}`);
    const r = await t.db.ownerQuery(
      `SELECT (SELECT coalesce(sum((dimensions + ${perRow - 1}) / ${perRow}), 0) FROM retail.product_description_embeddings)::int,
              (SELECT count(*) FROM zava_search.embedding_chunks)::int,
              (SELECT count(*) FROM retail.product_description_embeddings e
                WHERE (SELECT string_agg(btrim(x::text, '()'), ', ' ORDER BY c.part, j)
                         FROM zava_search.embedding_chunks c CROSS JOIN LATERAL unnest(ARRAY[${cubes.join(', ')}]) WITH ORDINALITY AS u(x, j)
                        WHERE c.product_id = e.product_id AND c.model = e.model AND x IS NOT NULL)
                      IS DISTINCT FROM array_to_string(e.description_embedding::float8[], ', ')
                   OR abs((SELECT sum(norm2) FROM zava_search.embedding_chunks c WHERE c.product_id = e.product_id AND c.model = e.model)
                          - (SELECT sum(x::float8 * x) FROM unnest(e.description_embedding) AS x)) > 1e-12)::int`,
    );
    const [expected, found, mismatched] = r.rows[0] as [number, number, number];
    return { expected, found, mismatched };
  };

  /** The two exact scans' answers (max 100 rows: every candidate that passes), run as the query role under RLS. */
  const bothScans = async (queries: readonly string[], model: LocalEmbeddingProvider) => {
    const hq = await t.db.resolveIdentity(HEAD_OFFICE);
    const differing: string[] = [];
    let rows = 0;
    for (const q of queries) {
      // The lowest threshold (20%): the most rows pass, so the most similarities and fusion scores are compared.
      const params = [queryVectorParam(await model.embedQuery(q), false), q, model.model, 20, 100, null];
      const [array, chunks] = await t.db.withIdentity(hq, async (session) => [
        await session.query(searchSql(false, model.dimensions, undefined, 'array'), params, { maxRows: 100 }),
        await session.query(searchSql(false, model.dimensions, undefined, 'chunks'), params, { maxRows: 100 }),
      ]);
      rows += chunks.rowCount;
      if (JSON.stringify(chunks.rows) !== JSON.stringify(array.rows)) differing.push(q);
    }
    return { differing, rows };
  };

  test('every embedding is stored as cube chunks, read under RLS, and searches run on them', async () => {
    assert.deepEqual(await chunkCounts(), { expected: 608 * 2, found: 608 * 2, mismatched: 0 }); // 1,024 coordinates: 8 + 3 cubes
    const installed = (await t.db.ownerQuery(`SELECT proname FROM pg_proc WHERE proname LIKE 'products\\_%' ORDER BY 1`)).rows.map((r) => String(r[0]));
    assert.ok(installed.includes(searchFunctionName(false, 1024, 'chunks').split('.')[1]!), installed.join(' '));
    // The chunk functions, and the statement ranked in the server process (vector-memory.ts).
    assert.ok(installed.every((name) => name.startsWith('products_chunks_') || name.startsWith('products_ranked_')), installed.join(' '));
    const hq = await t.db.resolveIdentity(HEAD_OFFICE);
    // Row Level Security as on the embeddings: the query role reads the chunks under a signed context only.
    const withContext = await t.db.withIdentity(hq, (session) => session.query('SELECT count(*)::int FROM zava_search.embedding_chunks'));
    assert.equal(withContext.rows[0]?.[0], 608 * 2);
    const bare = new pg.Client({ connectionString: queryRoleUrl(t.config) });
    await bare.connect();
    try {
      assert.equal((await bare.query('SELECT count(*)::int AS n FROM zava_search.embedding_chunks')).rows[0].n, 0, 'no context, no rows');
    } finally {
      await bare.end();
    }
    const paint = await searchProducts(t.db, hq, { query: 'containers for paint', maxRows: 5 }, { provider });
    assert.ok(paint.results.length === 5 && paint.results.every((r) => r.sku.startsWith('PS-CON')), paint.results.map((r) => r.sku).join(' '));
  });

  test('the same rows as the exact scan over real[], on the test queries and the labelled evaluation queries', async () => {
    const { differing, rows } = await bothScans([...QUERIES, ...LABELLED], provider);
    assert.ok(LABELLED.length >= 40 && rows > 400, `${LABELLED.length} labelled queries, ${rows} rows compared`);
    assert.deepEqual(differing, []);
  });

  test('chunks follow a catalog import, a rebuild with another model and back, a delete and a truncate', async () => {
    const catalog = parseCatalogFile(
      JSON.stringify({ categories: [{ name: 'Pet Supplies', types: [{ name: 'Leashes', products: [{ sku: 'PET-001', name: 'Zava Rope Dog Leash, 6 ft', description: 'A braided nylon rope leash for walking dogs.', price: 14.99 }, { sku: 'PET-002', name: 'Zava Retractable Leash', description: 'Extends to 16 ft for walks in the park.', price: 24.99 }] }] }] }),
      'pets.json',
    );
    const fresh = new LocalEmbeddingProvider();
    current = fresh;
    const report = await importCatalog(t.db, catalog, { provider: fresh });
    assert.equal(report.embedded, 610, 'the local model refits on the merged catalog and re-embeds it');
    assert.deepEqual(await chunkCounts(), { expected: 610 * 2, found: 610 * 2, mismatched: 0 });
    const hq = await t.db.resolveIdentity(HEAD_OFFICE);
    assert.equal((await searchProducts(t.db, hq, { query: 'leash for my dog', maxRows: 2 }, { provider: fresh })).results[0]?.sku, 'PET-001');
    assert.deepEqual((await bothScans(['leash for my dog', ...QUERIES], fresh)).differing, []);

    // Another model (768 dimensions: one row of 8 cubes), then back to 1,024: no chunk of a replaced embedding stays.
    const other = new LocalEmbeddingProvider(768);
    await rebuildEmbeddings(t.db, { provider: other });
    assert.deepEqual(await chunkCounts(), { expected: 610, found: 610, mismatched: 0 });
    assert.deepEqual((await bothScans(QUERIES, other)).differing, []);
    await rebuildEmbeddings(t.db, { provider: fresh });
    assert.deepEqual(await chunkCounts(), { expected: 610 * 2, found: 610 * 2, mismatched: 0 });
    assert.deepEqual((await bothScans(QUERIES, fresh)).differing, []);

    await t.db.ownerQuery(`DELETE FROM retail.product_description_embeddings WHERE product_id = (SELECT product_id FROM retail.products WHERE sku = 'PET-002')`);
    assert.deepEqual(await chunkCounts(), { expected: 609 * 2, found: 609 * 2, mismatched: 0 });
    // TRUNCATE (the seed's --replace) empties them too; rolled back here.
    await assert.rejects(
      t.db.withAdminTransaction(async (session) => {
        await session.exec('TRUNCATE retail.product_description_embeddings');
        const left = await session.query('SELECT count(*)::int FROM zava_search.embedding_chunks');
        throw new Error(`rolled back with ${String(left.rows[0]?.[0])} chunk rows`);
      }),
      /rolled back with 0 chunk rows/,
    );
    assert.deepEqual(await chunkCounts(), { expected: 609 * 2, found: 609 * 2, mismatched: 0 });
  });

  test('upgrading a database that already has embeddings: migration 13 fills the chunks from them', async () => {
    // Back to the state before migration 13, embeddings kept.
    await t.db.withAdminTransaction((session) =>
      session.exec(`
        DROP TRIGGER embedding_chunks ON retail.product_description_embeddings;
        DROP TRIGGER embedding_chunks_delete ON retail.product_description_embeddings;
        DROP TRIGGER embedding_chunks_truncate ON retail.product_description_embeddings;
        DROP TABLE zava_search.embedding_chunks;
        DROP FUNCTION zava_search.sync_embedding_chunks(), zava_search.drop_embedding_chunks(), zava_search.embedding_chunk_rows(real[]);
        DROP EXTENSION cube;
        DELETE FROM zava_meta.schema_migrations WHERE version = 13;`),
    );
    const report = await migrateDatabase(t.db, t.config);
    assert.deepEqual(report.applied.map((m) => m.version), [13]);
    assert.deepEqual(await chunkCounts(), { expected: 609 * 2, found: 609 * 2, mismatched: 0 });
    assert.ok(current, 'runs after the import test');
    assert.deepEqual((await bothScans(QUERIES, current)).differing, []);
  });
});

describe('embedded backend (pgvector): no chunks, the HNSW search as before', () => {
  test('no chunk table; the search functions are the pgvector ones', async () => {
    const t = await createTestDatabase('embedded');
    try {
      assert.equal((await t.db.ownerQuery(`SELECT to_regclass('zava_search.embedding_chunks') IS NULL`)).rows[0]?.[0], true);
      const installed = (await t.db.ownerQuery(`SELECT proname FROM pg_proc WHERE proname LIKE 'products\\_%' ORDER BY 1`)).rows.map((r) => String(r[0]));
      assert.equal(installed.length, 3);
      assert.ok(installed.every((name) => name.startsWith('products_vector_')), installed.join(' '));
      assert.ok(installed.includes(searchFunctionName(true, 1024).split('.')[1]!));
    } finally {
      await t.cleanup();
    }
  });
});
