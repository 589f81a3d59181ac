// Search speed (results go to docs/search-benchmarks.md):
//   1. searchProducts at the default catalog on the embedded database, query embedding included (median);
//   2. N synthetic products (default 100,000) on PGlite + pgvector: HNSW median and recall@10 against exact;
//   3. the same vectors on the PostgreSQL service without pgvector: exact-scan median (real[] dot product).
// Usage: node dist/bench/search-speed.js [--products=100000] [--dims=256] [--skip-server]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import { loadConfig } from '../src/infra/config.js';
import { migrateDatabase, openDatabase } from '../src/db/open.js';
import { seedDatabase } from '../src/data/seed.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { ensureEmbeddings, loadCorpus, vectorLiteral } from '../src/search/store.js';
import { searchProducts } from '../src/search/search.js';
import type { ProductDocument } from '../src/search/provider.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const QUERIES = [
  'containers for paint', '15 amp circuit breaker', 'LED light bulbs for kitchen ceiling', 'waterproof electrical box for outdoor use',
  'cordless drill', 'garden hose', 'something to cut tree branches', 'safety glasses', 'hamer', '2x4 lumber', 'smart thermostat with wifi',
  'unclog a drain', 'work gloves', 'deck stain', 'space heater for a bedroom', 'storage bins with lids', 'outdoor extension cord', 'grout',
  'recessed lights', 'fix a running toilet',
];

async function defaultCatalog(): Promise<{ corpus: ProductDocument[]; lines: string[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zava-speed-'));
  const config = loadConfig({ dataDir: path.join(dir, 'pglite') }, {});
  const db = await openDatabase(config);
  try {
    await migrateDatabase(db, config);
    await seedDatabase(db, { customers: 200, seed: 1 });
    const provider = new LocalEmbeddingProvider();
    await ensureEmbeddings(db, { provider });
    const hq = await db.resolveIdentity('00000000-0000-0000-0000-000000000000');
    const store = await db.resolveIdentity('f47ac10b-58cc-4372-a567-0e02b2c3d479');
    for (const q of QUERIES) await searchProducts(db, hq, { query: q }, { provider }); // warm-up
    const times: number[] = [];
    const storeTimes: number[] = [];
    const embedTimes: number[] = [];
    const empty: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (const q of QUERIES) {
        let t = performance.now();
        await searchProducts(db, hq, { query: q }, { provider });
        times.push(performance.now() - t);
        t = performance.now();
        await searchProducts(db, store, { query: q }, { provider });
        storeTimes.push(performance.now() - t);
        t = performance.now();
        await provider.embedQuery(q);
        embedTimes.push(performance.now() - t);
        t = performance.now();
        await db.withIdentity(hq, (s) => s.query('SELECT 1'));
        empty.push(performance.now() - t);
      }
    }
    const corpus = await loadCorpus((sql, params) => db.ownerQuery(sql, params));
    return {
      corpus,
      lines: [
        `default catalog (${corpus.length} products, ${provider.model}), embedded PGlite, ${times.length} searches:`,
        `  searchProducts median ${median(times).toFixed(1)} ms as head office, ${median(storeTimes).toFixed(1)} ms as a store manager (with stock level)`,
        `  of which: query embedding median ${median(embedTimes).toFixed(2)} ms; an empty withIdentity transaction (SELECT 1) median ${median(empty).toFixed(1)} ms`,
      ],
    };
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Synthetic products: names, types and descriptions of catalog products recombined, so vectors look real. */
function synthetic(corpus: readonly ProductDocument[], count: number): ProductDocument[] {
  const out: ProductDocument[] = [];
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < count; i++) {
    const a = corpus[Math.floor(rand() * corpus.length)]!;
    const b = corpus[Math.floor(rand() * corpus.length)]!;
    out.push({ productId: i + 1, sku: `SYN-${i + 1}`, name: `${a.name} ${i % 97}`, typeName: a.typeName, categoryName: a.categoryName, description: `${a.description} ${b.description.split('. ')[0]}` });
  }
  return out;
}

async function main(): Promise<void> {
  const products = Number(arg('products', '100000'));
  const dims = Number(arg('dims', '256'));
  const lines: string[] = [];
  const { corpus, lines: first } = await defaultCatalog();
  lines.push(...first);
  process.stdout.write(`${first.join('\n')}\n`);

  const provider = new LocalEmbeddingProvider(dims);
  provider.fit(corpus);
  let t = performance.now();
  const docs = synthetic(corpus, products);
  const vectors = await provider.embedDocuments(docs);
  const queries = await Promise.all(QUERIES.map((q) => provider.embedQuery(q)));
  process.stdout.write(`embedded ${products} synthetic products at ${dims} dimensions in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

  const pglite = await PGlite.create({ extensions: { vector } });
  await pglite.exec(`CREATE EXTENSION vector; CREATE TABLE items (id int PRIMARY KEY, v vector(${dims}) NOT NULL)`);
  t = performance.now();
  for (let i = 0; i < products; i += 5000) {
    const chunk = vectors.slice(i, i + 5000).map((v, j) => `${i + j + 1}\t${vectorLiteral(v, true)}`).join('\n');
    await pglite.query(`COPY items (id, v) FROM '/dev/blob'`, [], { blob: new Blob([`${chunk}\n`]) });
  }
  const loadS = (performance.now() - t) / 1000;
  t = performance.now();
  await pglite.exec(`SET maintenance_work_mem = '512MB'; CREATE INDEX items_hnsw ON items USING hnsw (v vector_cosine_ops) WITH (m = 16, ef_construction = 64); ANALYZE items`);
  const buildS = (performance.now() - t) / 1000;
  const knn = `SELECT id FROM items ORDER BY v <=> $1::vector LIMIT 10`;
  const exact: number[][] = [];
  const exactTimes: number[] = [];
  await pglite.exec('SET enable_indexscan = off');
  for (const q of queries) {
    const s = performance.now();
    const r = await pglite.query<{ id: number }>(knn, [vectorLiteral(q, true)]);
    exactTimes.push(performance.now() - s);
    exact.push(r.rows.map((x) => x.id));
  }
  await pglite.exec('SET enable_indexscan = on');
  lines.push(`${products.toLocaleString('en-US')} synthetic products, ${dims} dimensions, PGlite + pgvector (load ${loadS.toFixed(0)} s, HNSW m=16 ef_construction=64 build ${buildS.toFixed(0)} s):`);
  lines.push(`  exact scan (no index) median ${median(exactTimes).toFixed(1)} ms`);
  for (const ef of [40, 100]) {
    await pglite.exec(`SET hnsw.ef_search = ${ef}`);
    const times: number[] = [];
    let hits = 0;
    for (let round = 0; round < 3; round++) {
      queries.forEach(() => undefined);
      for (let i = 0; i < queries.length; i++) {
        const s = performance.now();
        const r = await pglite.query<{ id: number }>(knn, [vectorLiteral(queries[i]!, true)]);
        times.push(performance.now() - s);
        if (round === 0) hits += r.rows.filter((x) => exact[i]!.includes(x.id)).length;
      }
    }
    lines.push(`  HNSW ef_search=${ef}: median ${median(times).toFixed(2)} ms, recall@10 vs exact ${(hits / (queries.length * 10)).toFixed(3)}`);
  }
  await pglite.close();
  process.stdout.write(`${lines.slice(first.length).join('\n')}\n`);

  if (!process.argv.includes('--skip-server')) {
    const url = process.env.ZAVA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query(`DROP TABLE IF EXISTS zava_bench_items; CREATE TEMP TABLE zava_bench_items (id int PRIMARY KEY, v real[] NOT NULL)`);
      await client.query(`CREATE OR REPLACE FUNCTION pg_temp.dot(a real[], b real[]) RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT sum(x::double precision * y) FROM unnest(a, b) AS t(x, y) $$`);
      for (let i = 0; i < products; i += 5000) {
        await client.query(
          `INSERT INTO zava_bench_items SELECT x.id, x.v::real[] FROM json_to_recordset($1::json) AS x(id int, v text)`,
          [JSON.stringify(vectors.slice(i, i + 5000).map((v, j) => ({ id: i + j + 1, v: vectorLiteral(v, false) })))],
        );
      }
      await client.query('ANALYZE zava_bench_items');
      const times: number[] = [];
      let hits = 0;
      for (let i = 0; i < queries.length; i++) {
        const s = performance.now();
        const r = await client.query(`SELECT id FROM zava_bench_items ORDER BY pg_temp.dot(v, $1::real[]) DESC LIMIT 10`, [vectorLiteral(queries[i]!, false)]);
        times.push(performance.now() - s);
        hits += r.rows.filter((x: { id: number }) => exact[i]!.includes(x.id)).length;
      }
      lines.push(`PostgreSQL service (${(await client.query('SHOW server_version')).rows[0].server_version}, no pgvector), same ${products.toLocaleString('en-US')} vectors as real[]: exact scan median ${median(times).toFixed(0)} ms (agreement with pgvector exact top-10: ${(hits / (queries.length * 10)).toFixed(3)})`);
      process.stdout.write(`${lines.at(-1)}\n`);
    } catch (error) {
      lines.push(`PostgreSQL service: skipped (${(error as Error).message})`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`search-speed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
