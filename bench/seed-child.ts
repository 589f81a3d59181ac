// One measured run in a fresh process, so its peak memory is its own. Prints one JSON line on stdout.
//   seed  <url|dir> <customers>   generate + load the reference dataset
//   start <dir>                   open an existing embedded database until ready (what a later `npm start` does)
//   query <url|dir>               open, run the sample analytics as head office, report memory
import { loadConfig } from '../src/infra/config.js';
import { migrateDatabase, openDatabase } from '../src/db/open.js';
import { seedDatabase } from '../src/data/seed.js';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';

const [mode, target, customers] = process.argv.slice(2) as [string, string, string | undefined];
const config = loadConfig(target.startsWith('postgres') ? { databaseUrl: target } : { dataDir: target }, {});
const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);

const started = performance.now();
const db = await openDatabase(config);
await migrateDatabase(db, config);
const result: Record<string, unknown> = { mode, backend: db.kind };
if (mode === 'seed') {
  const report = await seedDatabase(db, { customers: Number(customers), seed: 42 });
  Object.assign(result, { customers: Number(customers), ...report, totalMs: Math.round(performance.now() - started) });
} else if (mode === 'start') {
  await db.resolveIdentity(HEAD_OFFICE_USER_ID);
  // From process start (module loading included) to a database ready for identity-scoped reads.
  result.readyMs = Math.round(performance.now());
} else {
  const identity = await db.resolveIdentity(HEAD_OFFICE_USER_ID);
  const queries = {
    salesByStore: `SELECT s.store_name, sum(oi.total_amount) FROM retail.order_items oi JOIN retail.stores s USING (store_id) GROUP BY 1 ORDER BY 2 DESC`,
    top20Products: `SELECT p.product_name, sum(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 20`,
    lastQuarterByCategory: `SELECT c.category_name, sum(oi.total_amount) FROM retail.orders o JOIN retail.order_items oi USING (order_id)
      JOIN retail.products p USING (product_id) JOIN retail.categories c USING (category_id)
      WHERE o.order_date >= date_trunc('quarter', date '2026-11-22') - interval '3 months' AND o.order_date < date_trunc('quarter', date '2026-11-22')
      GROUP BY 1 ORDER BY 2 DESC`,
  };
  const timings: Record<string, number> = {};
  for (const [name, sql] of Object.entries(queries)) {
    const t = performance.now();
    await db.withIdentity(identity, (s) => s.query(sql));
    timings[name] = Math.round(performance.now() - t);
  }
  result.queryMs = timings;
}
await db.close();
result.peakRssMiB = mib(process.resourceUsage().maxRSS * 1024);
process.stdout.write(`${JSON.stringify(result)}\n`);
