// Search speed (results go to BENCHMARKS.md):
//   1. searchProducts at the default catalog on the embedded database, query embedding included (median);
//   2. N synthetic products (default 100,000) on PGlite + pgvector: HNSW median and recall@10 against exact;
//   3. the same vectors on the PostgreSQL service without pgvector: exact-scan median (real[] dot product);
//   4. --server-catalogs=608,1000,10000: searchProducts on the PostgreSQL service without pgvector, on a catalog of
//      each size (the default catalog plus synthetic products, embedded with the local model at 1,024 dimensions),
//      with the vector ranking in this process (vector-memory.ts), then the exact scan over cube chunks (migration
//      13), then (up to 1,000 products) over real[]: medians, CPU per search, and whether they return the same rows.
// Usage: node dist/bench/search-speed.js [--products=100000] [--dims=256] [--m=16] [--ef-construction=64]
//        [--ef=40,100,200,400] [--skip-server] [--server-catalogs=608,1000,10000 [--only-server-catalogs] [--compare-scans]]
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import { loadavg } from 'node:os';
import { loadConfig } from '../src/infra/config.js';
import { openDatabase } from '../src/db/open.js';
import { prepareSchema } from '../src/cli/migrate.js';
import { seedDatabase } from '../src/data/seed.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { ensureEmbeddings, loadCorpus, vectorLiteral } from '../src/search/store.js';
import { searchProducts } from '../src/search/search.js';
import { withScratchDatabase } from './scratch-database.js';
import { HNSW_EF_SEARCH, queryVectorParam, rankedSearchSql, searchSql } from '../src/search/search-sql.js';
import { hasVectorCopy, rankInProcess, vectorCopyStats, vectorLoad } from '../src/search/vector-memory.js';
import type { Identity } from '../src/db/types.js';
import { HNSW_BUILD } from '../src/db/migrations.js';
import type { ProductDocument } from '../src/search/provider.js';
import { labelledQueries } from '../test/support/search-queries.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const QUERIES = [
  'containers for paint', '15 amp circuit breaker', 'LED light bulbs for kitchen ceiling', 'waterproof electrical box for outdoor use',
  'cordless drill', 'garden hose', 'something to cut tree branches', 'safety glasses', 'hamer', '2x4 lumber', 'smart thermostat with wifi',
  'unclog a drain', 'work gloves', 'deck stain', 'space heater for a bedroom', 'storage bins with lids', 'outdoor extension cord', 'grout',
  'recessed lights', 'fix a running toilet',
];

async function defaultCatalog(): Promise<{ corpus: ProductDocument[]; lines: string[] }> {
  return withScratchDatabase(200, async (db) => {
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
  });
}

const BRANDS = [
  'Zava', 'Cascade', 'Rainier', 'Olympic', 'Puget', 'Evergreen', 'Summit', 'Harbor', 'Ironwood', 'Northwind', 'Tidewater',
  'Alder', 'Cedar Ridge', 'Bluestone', 'Granite Peak', 'Salish', 'Columbia', 'Skagit', 'Yakima', 'Whidbey', 'Orca',
  'Timberline', 'Redwood', 'Silverline', 'Coastal', 'Pioneer', 'Frontier', 'Keystone', 'Copperhead', 'Stonegate',
];
const FINISHES = ['', '', '', 'Black', 'White', 'Stainless', 'Brushed Nickel', 'Bronze', 'Gray', 'Red', 'Heavy-Duty', 'Pro', 'Compact', 'Premium', 'Contractor Grade', 'Value Pack'];

/**
 * Synthetic products that look like a large real catalog: every product is a variant of a catalog product
 * kind — another brand, another size taken from products of the same type, a finish or grade — whose
 * description mixes sentences from two or three products of that same type. So products cluster by type the
 * way real catalogs do (many similar drills, many similar hoses) and close variants exist, but no product is
 * a copy of another with a counter appended (the earlier generator's 160 near-identical copies of each
 * catalog product made top-10 sets mostly ties).
 */
function synthetic(corpus: readonly ProductDocument[], count: number): ProductDocument[] {
  const out: ProductDocument[] = [];
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const byType = new Map<string, ProductDocument[]>();
  for (const doc of corpus) byType.set(doc.typeName, [...(byType.get(doc.typeName) ?? []), doc]);
  const measure = /\b\d+(?:[-/.]\d+)*(?:\/\d+)?\s?(?:in\.|ft|gal|oz|lb|V|W|Amp|amp|mm|qt|pack|-Pack|Piece|pc)\b/g;
  const sentences = (text: string) => text.split(/(?<=\.)\s+/).filter(Boolean);
  for (let i = 0; i < count; i++) {
    const a = pick(corpus);
    const sameType = byType.get(a.typeName)!;
    const b = pick(sameType);
    const c = pick(sameType);
    // Sizes come from products of the same type, so a drill gets drill sizes and a hose gets hose lengths.
    const sizes = sameType.flatMap((d) => d.name.match(measure) ?? []);
    let name = a.name.replace(/^Zava\s+/, '');
    if (sizes.length > 0 && rand() < 0.6) name = name.replace(measure, () => pick(sizes));
    const finish = pick(FINISHES);
    name = `${pick(BRANDS)} ${name}${finish ? `, ${finish}` : ''}`;
    const parts = [...sentences(a.description).slice(0, 1 + Math.floor(rand() * 2)), pick(sentences(b.description)), ...(rand() < 0.5 ? [pick(sentences(c.description))] : [])];
    out.push({ productId: i + 1, sku: `SYN-${i + 1}`, name, typeName: a.typeName, categoryName: a.categoryName, description: parts.join(' ') });
  }
  return out;
}

/**
 * searchProducts on the PostgreSQL service without pgvector at `size` products: the default catalog plus synthetic
 * products, embedded with the local model. Measured with the vector ranking in this process, then (a new handle,
 * ZAVA_SEARCH_MEMORY_MB=0) with the cube-chunk scan, then up to 1,000 products (the chunk table renamed away, a new
 * handle) with the real[] scan; the answers are compared row for row.
 */
async function serverCatalog(size: number, base: readonly ProductDocument[]): Promise<string[]> {
  const adminUrl = process.env.ZAVA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `zava_bench_search_${process.pid}_${size}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const config = loadConfig({ databaseUrl: url.toString() }, {});
  const handles: Awaited<ReturnType<typeof openDatabase>>[] = [];
  try {
    const db = await openDatabase(config);
    handles.push(db);
    if (db.hasVector) return [`server catalog ${size}: skipped (this PostgreSQL has pgvector)`];
    await prepareSchema(db, config);
    await seedDatabase(db, { customers: 1, seed: 1 });
    const extra = synthetic(base, Math.max(0, size - base.length));
    for (let i = 0; i < extra.length; i += 2000) {
      const rows = extra.slice(i, i + 2000).map((d) => ({ sku: `SYN-${d.productId}`, name: d.name, type_name: d.typeName, category_name: d.categoryName, description: d.description }));
      await db.ownerQuery(
        `INSERT INTO retail.products (sku, product_name, category_id, type_id, cost, base_price, product_description)
         SELECT x.sku, x.name, c.category_id, t.type_id, 10, 15, x.description
           FROM json_to_recordset($1::json) AS x(sku text, name text, type_name text, category_name text, description text)
           JOIN retail.categories c ON c.category_name = x.category_name
           JOIN retail.product_types t ON t.type_name = x.type_name AND t.category_id = c.category_id`,
        [JSON.stringify(rows)],
      );
    }
    const provider = new LocalEmbeddingProvider();
    let t = performance.now();
    const report = await ensureEmbeddings(db, { provider });
    const embedS = (performance.now() - t) / 1000;
    const hq = await db.resolveIdentity('00000000-0000-0000-0000-000000000000');
    // CPU time is what a loaded machine does not distort much: PostgreSQL's (every backend of this database, from
    // /proc/<pid>/schedstat: the service runs on this machine) and this process's, per search.
    const backendCpuMs = async () => {
      const pids = (await admin.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1`, [name])).rows.map((r: { pid: number }) => r.pid);
      let total = 0;
      for (const pid of pids) {
        try {
          total += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
        } catch {
          // a backend that ended meanwhile
        }
      }
      return { total, pids: new Set(pids) };
    };
    const measure = async (handle: typeof db) => {
      for (const q of QUERIES) await searchProducts(handle, hq, { query: q }, { provider }); // warm-up
      // The in-process copy loads in the background after the first search: measured with it in place.
      await vectorLoad(handle);
      const times: number[] = [];
      const answers: string[] = [];
      const pgBefore = await backendCpuMs();
      const nodeBefore = process.cpuUsage();
      for (let round = 0; round < 3; round++) {
        for (const q of QUERIES) {
          const s = performance.now();
          const r = await searchProducts(handle, hq, { query: q }, { provider });
          times.push(performance.now() - s);
          if (round === 0) answers.push(JSON.stringify(r.results));
        }
      }
      const node = process.cpuUsage(nodeBefore);
      const pgAfter = await backendCpuMs();
      const samePids = [...pgAfter.pids].every((pid) => pgBefore.pids.has(pid));
      return {
        median: median(times),
        pgCpu: (pgAfter.total - pgBefore.total) / times.length,
        nodeCpu: (node.user + node.system) / 1000 / times.length,
        samePids,
        answers,
      };
    };
    const describe = (m: Awaited<ReturnType<typeof measure>>) =>
      `median ${m.median.toFixed(1)} ms wall, PostgreSQL CPU ${m.pgCpu.toFixed(1)} ms${m.samePids ? '' : ' (backends changed meanwhile)'} + this process ${m.nodeCpu.toFixed(1)} ms per search`;
    const inProcess = await measure(db);
    const copy = vectorCopyStats(db);
    if (!copy || !hasVectorCopy(db, provider.model)) throw new Error('the embeddings were not loaded into memory');
    const loadAverage = loadavg()[0]!;
    // The in-database scans: new handles that hold no copy (read when a load would start).
    process.env.ZAVA_SEARCH_MEMORY_MB = '0';
    const chunkHandle = await openDatabase(config);
    handles.push(chunkHandle);
    await prepareSchema(chunkHandle, config);
    const chunks = await measure(chunkHandle);
    const compared = process.argv.includes('--compare-scans') ? await compareScans(db, hq, provider, size <= 1000) : undefined;
    // The real[] scan (up to 1,000 products: 4.5 s a search at 10,000): a new handle finds no chunk table and
    // installs (and uses) the real[] search functions.
    let array: Awaited<ReturnType<typeof measure>> | undefined;
    if (size <= 1000) {
      await db.ownerQuery('ALTER TABLE zava_search.embedding_chunks RENAME TO embedding_chunks_away');
      const plain = await openDatabase(config);
      handles.push(plain);
      await prepareSchema(plain, config);
      array = await measure(plain);
    }
    delete process.env.ZAVA_SEARCH_MEMORY_MB;
    const same = inProcess.answers.every((a, i) => a === chunks.answers[i] && (!array || a === array.answers[i]));
    return [
      `PostgreSQL service without pgvector, ${report.products.toLocaleString('en-US')} products (embedded in ${embedS.toFixed(0)} s), searchProducts as head office, ${QUERIES.length * 3} searches (load average ${loadAverage.toFixed(1)} on 2 cores):`,
      `  vector ranking in this process: ${describe(inProcess)} (copy of ${copy.products.toLocaleString('en-US')} embeddings: ${(copy.bytes / 1048576).toFixed(1)} MB, loaded in ${copy.loadMs.toFixed(0)} ms)`,
      `  exact scan over cube chunks:    ${describe(chunks)}`,
      ...(array ? [`  exact scan over real[]:         ${describe(array)}`] : []),
      `  same answers: ${same ? 'yes' : 'NO'}`,
      ...(compared ? [`  ${compared}`] : []),
    ];
  } finally {
    for (const handle of handles) await handle.close().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

/**
 * --compare-scans: every labelled evaluation query through the ranked statement (the vector ranking of this
 * process), the cube-chunk scan and (withArray) the real[] scan (max_rows 100, threshold 20: the most rows), as
 * head office under RLS; counts the queries whose rows differ in any column.
 */
async function compareScans(db: Awaited<ReturnType<typeof openDatabase>>, identity: Identity, provider: LocalEmbeddingProvider, withArray: boolean): Promise<string> {
  const queries = labelledQueries();
  let differing = 0;
  let rows = 0;
  for (const q of queries) {
    const vector = await provider.embedQuery(q);
    const ranking = rankInProcess(db, identity, provider.model, provider.dimensions, vector);
    if (!ranking) throw new Error('no in-process copy');
    const params = [queryVectorParam(vector, false), q, provider.model, 20, 100, null];
    const [ranked, chunks, array] = await db.withIdentity(identity, async (session) => [
      await session.query(rankedSearchSql(), [ranking.topIds, q, provider.model, 20, 100, null, ranking.cosines, ranking.baseId, ranking.version], { maxRows: 100 }),
      await session.query(searchSql(false, provider.dimensions, undefined, 'chunks'), params, { maxRows: 100 }),
      withArray ? await session.query(searchSql(false, provider.dimensions, undefined, 'array'), params, { maxRows: 100 }) : undefined,
    ]);
    rows += ranked!.rowCount;
    const expected = JSON.stringify(chunks!.rows);
    if (JSON.stringify(ranked!.rows) !== expected || (array && JSON.stringify(array.rows) !== expected)) differing++;
  }
  return `all ${queries.length} labelled queries of the five evaluation sets through the in-process ranking, the cube-chunk scan${withArray ? ' and the real[] scan' : ''} (max_rows 100, threshold 20: ${rows} rows): ${differing} differ`;
}

async function main(): Promise<void> {
  const serverCatalogs = arg('server-catalogs', '').split(',').filter(Boolean).map(Number);
  if (serverCatalogs.length > 0) {
    const base = await withScratchDatabase(1, (db) => loadCorpus((sql, params) => db.ownerQuery(sql, params)));
    const lines: string[] = [];
    for (const size of serverCatalogs) {
      const out = await serverCatalog(size, base);
      process.stdout.write(`${out.join('\n')}\n`);
      lines.push(...out);
    }
    if (process.argv.includes('--only-server-catalogs')) return;
  }
  const products = Number(arg('products', '100000'));
  const dims = Number(arg('dims', '256'));
  const m = Number(arg('m', String(HNSW_BUILD.m)));
  const efConstruction = Number(arg('ef-construction', String(HNSW_BUILD.efConstruction)));
  const efList = arg('ef', `40,100,200,${HNSW_EF_SEARCH}`).split(',').map(Number);
  const lines: string[] = [];
  const { corpus, lines: first } = await defaultCatalog();
  lines.push(...first);
  process.stdout.write(`${first.join('\n')}\n`);

  if (products === 0) return; // --products=0: the default-catalog measurement only
  const provider = new LocalEmbeddingProvider(dims);
  provider.fit(corpus);
  let t = performance.now();
  const docs = synthetic(corpus, products);
  const vectors = await provider.embedDocuments(docs);
  // The speed queries plus every labelled evaluation query: ~100 queries of every kind.
  const labelled = (JSON.parse(await readFile(new URL('../../eval/search-queries.json', import.meta.url), 'utf8')) as { queries: { query: string }[] }).queries;
  const queryTexts = [...new Set([...QUERIES, ...labelled.map((q) => q.query)])];
  const queries = await Promise.all(queryTexts.map((q) => provider.embedQuery(q)));
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
  await pglite.exec(`SET maintenance_work_mem = '512MB'; CREATE INDEX items_hnsw ON items USING hnsw (v vector_ip_ops) WITH (m = ${m}, ef_construction = ${efConstruction}); ANALYZE items`);
  const buildS = (performance.now() - t) / 1000;
  // Unit vectors: inner product (`<#>`, as product search uses) ranks exactly as cosine distance.
  const knn = `SELECT id, (v <#> $1::vector) AS d FROM items ORDER BY v <#> $1::vector LIMIT 10`;
  const exact: { ids: number[]; kth: number }[] = [];
  const exactTimes: number[] = [];
  await pglite.exec('SET enable_indexscan = off');
  for (const q of queries) {
    const s = performance.now();
    const r = await pglite.query<{ id: number; d: number }>(knn, [vectorLiteral(q, true)]);
    exactTimes.push(performance.now() - s);
    exact.push({ ids: r.rows.map((x) => x.id), kth: r.rows.at(-1)?.d ?? 0 });
  }
  await pglite.exec('SET enable_indexscan = on');
  lines.push(`${products.toLocaleString('en-US')} synthetic products, ${dims} dimensions, ${queries.length} queries, PGlite + pgvector (load ${loadS.toFixed(0)} s, HNSW m=${m} ef_construction=${efConstruction} build ${buildS.toFixed(0)} s):`);
  lines.push(`  exact scan (no index) median ${median(exactTimes).toFixed(1)} ms`);
  // recall@10: the share of the exact top-10 ids the index returned; "within-distance" recall (as ann-benchmarks
  // counts it) also accepts a returned product exactly as near as the exact 10th (a tie), within 1e-6.
  const measure = async (ef: number, inQuery: boolean) => {
    const sql = inQuery
      ? `SELECT id, (v <#> $1::vector) AS d FROM items WHERE (SELECT set_config('hnsw.ef_search', '${ef}', true)) IS NOT NULL ORDER BY v <#> $1::vector LIMIT 10`
      : knn;
    if (!inQuery) await pglite.exec(`SET hnsw.ef_search = ${ef}`);
    else await pglite.exec('RESET hnsw.ef_search');
    const times: number[] = [];
    let hits = 0;
    let within = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < queries.length; i++) {
        if (inQuery) await pglite.exec('BEGIN');
        const s = performance.now();
        const r = await pglite.query<{ id: number; d: number }>(sql, [vectorLiteral(queries[i]!, true)]);
        times.push(performance.now() - s);
        if (inQuery) await pglite.exec('COMMIT');
        if (round === 0) {
          hits += r.rows.filter((x) => exact[i]!.ids.includes(x.id)).length;
          within += r.rows.filter((x) => x.d <= exact[i]!.kth + 1e-6).length;
        }
      }
    }
    const n = queries.length * 10;
    return `median ${median(times).toFixed(2)} ms, recall@10 vs exact ${(hits / n).toFixed(3)} (within-distance ${(within / n).toFixed(3)})`;
  };
  for (const ef of efList) lines.push(`  HNSW ef_search=${ef} (SET): ${await measure(ef, false)}`);
  lines.push(`  HNSW ef_search=${efList.at(-1)} set by the query itself (set_config in an init plan, as searchProducts does): ${await measure(efList.at(-1)!, true)}`);
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
      // Seconds per query: the 20 speed queries only.
      const serverQueries = Math.min(queries.length, QUERIES.length);
      for (let i = 0; i < serverQueries; i++) {
        const s = performance.now();
        const r = await client.query(`SELECT id FROM zava_bench_items ORDER BY pg_temp.dot(v, $1::real[]) DESC LIMIT 10`, [vectorLiteral(queries[i]!, false)]);
        times.push(performance.now() - s);
        hits += r.rows.filter((x: { id: number }) => exact[i]!.ids.includes(x.id)).length;
      }
      lines.push(`PostgreSQL service (${(await client.query('SHOW server_version')).rows[0].server_version}, no pgvector), same ${products.toLocaleString('en-US')} vectors as real[]: exact scan median ${median(times).toFixed(0)} ms ${serverQueries} queries (agreement with pgvector exact top-10: ${(hits / (serverQueries * 10)).toFixed(3)})`);
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
