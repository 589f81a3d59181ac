// Embedded backend (issue 9): memory per reader worker, throughput at 8 clients by number of readers, a victim's
// latency while another identity floods, and the peak RSS during oversized-result calls — on a copy of a seeded
// data directory (the reference dataset: `zava-mcp db seed --data-dir DIR`), through the data-access API.
// Usage: node dist/bench/embedded-readers.js --data-dir DIR [--readers 1,2,3,4] [--seconds 5] [--clients 8]
import { cp, rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { EmbeddedDatabase } from '../src/db/embedded/backend.js';
import { openDatabase } from '../src/db/open.js';
import { prepareSchema } from '../src/cli/migrate.js';
import type { Identity, ManagedDatabase } from '../src/db/types.js';
import { loadConfig } from '../src/infra/config.js';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    readers: { type: 'string', default: '1,2,3,4' },
    seconds: { type: 'string', default: '5' },
    clients: { type: 'string', default: '8' },
  },
});
const source = values['data-dir'];
if (!source) throw new Error('--data-dir DIR (a seeded embedded data directory; it is copied, not changed) is required');
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const MB = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

const LOOKUP = 'SELECT customer_id, first_name, last_name FROM retail.customers WHERE customer_id = $1::int';
const AGGREGATE = 'SELECT store_id, count(*), sum(total_amount) FROM retail.order_items WHERE product_id = $1::int GROUP BY store_id';
const TOP20 = `SELECT p.product_name, sum(oi.total_amount) AS revenue FROM retail.order_items oi
  JOIN retail.products p ON p.product_id = oi.product_id GROUP BY p.product_name ORDER BY revenue DESC LIMIT 20`;

async function throughput(db: ManagedDatabase, identities: Identity[], sql: string, maxParam: number): Promise<number> {
  let calls = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const identity = identities[i % identities.length]!;
      while (performance.now() < deadline) {
        await db.withIdentity(identity, (s) => s.query(sql, [1 + Math.floor(Math.random() * maxParam)]));
        calls++;
      }
    }),
  );
  return calls / seconds;
}

function peakDuring<T>(run: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  return run().then((result) => (clearInterval(timer), { result, peak: Math.max(peak, process.memoryUsage().rss) }));
}

interface Row {
  readers: number;
  writerRss: number;
  perReader: number;
  readerHeap: number;
  lookups: number;
  aggregates: number;
  top20: number;
  victimP50: number;
  victimP99: number;
  oversizedPeak: number;
}

async function measure(readers: number): Promise<Row> {
  const dataDir = `${source}.bench-${process.pid}`;
  await cp(source!, dataDir, { recursive: true });
  const config = loadConfig({ dataDir }, { ZAVA_EMBEDDED_READERS: String(readers), ZAVA_IDENTITY_CONCURRENCY: String(readers), ZAVA_LOG_LEVEL: 'error' });
  const before = process.memoryUsage().rss;
  const db = await openDatabase(config);
  try {
    const writerRss = process.memoryUsage().rss - before;
    await prepareSchema(db, config); // the copy may predate the latest migrations
    const identities = await Promise.all(STORES.map((store) => db.resolveIdentity(store.managerId)));
    const headOffice = await db.resolveIdentity(HEAD_OFFICE_USER_ID);
    const customers = Number((await db.ownerQuery('SELECT max(customer_id) FROM retail.customers')).rows[0]![0]);
    const products = Number((await db.ownerQuery('SELECT max(product_id) FROM retail.products')).rows[0]![0]);
    // Every reader opened and its buffers touched by the same work the throughput runs.
    await Promise.all(identities.slice(0, readers).map((identity) => db.withIdentity(identity, (s) => s.query('SELECT pg_sleep(0.5)::text'))));
    await Promise.all(identities.slice(0, readers).map((identity) => db.withIdentity(identity, (s) => s.query(TOP20))));
    await sleep(500);
    const perReader = (process.memoryUsage().rss - before - writerRss) / readers;
    const engines = db instanceof EmbeddedDatabase ? (await db.enginesForTests()).readers : [];
    const readerHeap = engines.reduce((sum, engine) => sum + engine.heapBytes, 0) / Math.max(1, engines.length);
    const lookups = await throughput(db, identities, LOOKUP, customers);
    const aggregates = await throughput(db, identities, AGGREGATE, products);
    const top20Times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await db.withIdentity(headOffice, (s) => s.query(TOP20));
      top20Times.push(performance.now() - started);
    }
    // One identity floods its share with slow calls; another sends one-row lookups one after the other.
    const flood = Array.from({ length: readers * 2 }, () =>
      db.withIdentity(headOffice, (s) => s.query('SELECT pg_sleep(10)::text'), { timeoutMs: 3_000 }).catch(() => undefined),
    );
    await sleep(200);
    const victim: number[] = [];
    for (let i = 0; i < 30; i++) {
      const started = performance.now();
      await db.withIdentity(identities[1]!, (s) => s.query(LOOKUP, [1 + i])).catch(() => undefined);
      victim.push(performance.now() - started);
    }
    await Promise.all(flood);
    victim.sort((a, b) => a - b);
    const { peak } = await peakDuring(() =>
      Promise.all(
        [`SELECT repeat('x', 300000000) AS v`, `SELECT length(string_agg(repeat('x', 1000000), ',')) FROM generate_series(1, 400)`].flatMap((sql) =>
          [headOffice, identities[0]!].map((identity) => db.withIdentity(identity, (s) => s.query(sql), { timeoutMs: 60_000 }).catch(() => undefined)),
        ),
      ),
    );
    return {
      readers,
      writerRss,
      perReader,
      readerHeap,
      lookups,
      aggregates,
      top20: top20Times.sort((a, b) => a - b)[1]!,
      victimP50: victim[Math.floor(victim.length / 2)]!,
      victimP99: victim[victim.length - 1]!,
      oversizedPeak: peak,
    };
  } finally {
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

console.log(`embedded readers on ${source} (${cpus().length} cores), ${clients} clients, ${seconds} s per measurement`);
console.log(`load average before: ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
console.log('| readers | writer RSS | RSS per reader (WebAssembly heap) | one-row lookups/s | small aggregates/s | top-20 revenue | victim p50 / max under flood | peak RSS, oversized calls |');
console.log('|---|---|---|---|---|---|---|---|');
for (const readers of values.readers!.split(',').map(Number)) {
  const r = await measure(readers);
  console.log(
    `| ${r.readers} | ${MB(r.writerRss)} | ${MB(r.perReader)} (${MB(r.readerHeap)}) | ${r.lookups.toFixed(0)} | ${r.aggregates.toFixed(0)} | ${r.top20.toFixed(0)} ms | ` +
      `${r.victimP50.toFixed(1)} / ${r.victimP99.toFixed(1)} ms | ${MB(r.oversizedPeak)} |`,
  );
}
console.log(`load average after: ${loadavg().map((n) => n.toFixed(1)).join(' ')}`);
