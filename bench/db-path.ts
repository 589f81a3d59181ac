// The database part of a tool call on the server backend: withIdentity + one query (identity transaction
// included), against raw `pg` running the bare statement on one connection. Needs a seeded database:
//   node dist/src/cli/main.js db seed --database-url postgres://postgres@127.0.0.1:5432/<db>
//   node dist/bench/db-path.js postgres://postgres@127.0.0.1:5432/<db> [iterations] [query name filter]
// On a shared machine compare p10 as well as p50: the median mostly measures how busy the cores are.
import pg from 'pg';
import { loadConfig } from '../src/infra/config.js';
import { openDatabase } from '../src/db/open.js';
import { queryRoleUrl } from '../src/db/server/backend.js';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';

const url = process.argv[2];
if (!url) throw new Error('usage: db-path <database url> [iterations]');
const iterations = Number(process.argv[3] ?? 3000);
const only = process.argv[4];

const QUERIES = {
  'one-row lookup': `SELECT store_name FROM retail.stores WHERE store_id = 1`,
  'small aggregate': `SELECT c.category_name, count(*) AS products, round(avg(p.base_price), 2) AS avg_price FROM retail.products p JOIN retail.categories c USING (category_id) GROUP BY 1 ORDER BY 2 DESC`,
  'top-20 revenue': `SELECT p.product_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.products p ON p.product_id = oi.product_id GROUP BY p.product_name ORDER BY revenue DESC LIMIT 20`,
} as const;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function measure(label: string, n: number, run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(50, n); i++) await run(); // warm-up: connections, plans, caches
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const at = (p: number) => percentile(times, p).toFixed(3);
  console.log(`${label.padEnd(44)} p10 ${at(0.1)} ms   p50 ${at(0.5)} ms   p90 ${at(0.9)} ms   (n=${n})`);
}

const config = loadConfig({ databaseUrl: url }, { ...process.env, ZAVA_POOL_MAX: '4' });
const db = await openDatabase(config);
await db.prepare();
// The raw baseline logs in as the query role too, with the head-office context set once for the session.
const raw = new pg.Client({ connectionString: queryRoleUrl(config), options: '-c jit=off -c search_path=pg_catalog,retail' });
await raw.connect();
const owner = new pg.Client({ connectionString: url });
await owner.connect();
const key = (await owner.query(`SELECT encode(hmac_key, 'hex') AS k FROM zava_private.context_key`)).rows[0].k as string;
await owner.end();
const { signContext } = await import('../src/db/context.js');
const headOffice = await db.resolveIdentity(HEAD_OFFICE_USER_ID);
await raw.query(`SELECT set_config('zava.ctx', $1, false)`, [signContext(Buffer.from(key, 'hex'), headOffice, (raw as unknown as { processID: number }).processID)]);
const seattle = await db.resolveIdentity(STORES[0]!.managerId);

for (const [name, sql] of Object.entries(QUERIES)) {
  if (only && !name.includes(only)) continue;
  const n = name === 'top-20 revenue' ? 15 : name === 'small aggregate' ? Math.ceil(iterations / 5) : iterations;
  await measure(`${name}: raw pg`, n, () => raw.query({ text: sql, rowMode: 'array' }));
  await measure(`${name}: withIdentity (head office)`, n, () => db.withIdentity(headOffice, (s) => s.query(sql)));
  // As before migration 17: head office as the query role, its rows admitted by comparing each row's store.
  await measure(`${name}: … as the query role`, n, () => db.withIdentity(headOffice, (s) => s.query(sql, [], { queryRoleOnly: true })));
  if (name !== 'top-20 revenue') await measure(`${name}: withIdentity (store manager)`, n, () => db.withIdentity(seattle, (s) => s.query(sql)));
}
await raw.end();
await db.close();
