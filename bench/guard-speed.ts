// SQL guard cost per call, as execute_sales_query pays it (loadSqlGuard): the same text again (a model re-asking,
// several managers asking the same question) and a text never seen before; and the heap kept after many unique
// hostile texts, which the verdict cache must not grow without bound.
// Usage: node --expose-gc dist/bench/guard-speed.js [--runs=20000] [--unique=100000]
import { loadSqlGuard } from '../src/analytics/guard.js';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const RUNS = arg('runs', 20_000);
const UNIQUE = arg('unique', 100_000);

const QUERIES: ReadonlyArray<readonly [string, string]> = [
  ['one-row lookup', 'SELECT store_name FROM retail.stores WHERE store_id = 1'],
  ['top-20 revenue', `SELECT p.product_id, p.product_name, c.category_name, SUM(oi.total_amount) AS revenue
    FROM retail.order_items oi JOIN retail.products p ON p.product_id = oi.product_id
    JOIN retail.categories c ON c.category_id = p.category_id
    GROUP BY p.product_id, p.product_name, c.category_name ORDER BY revenue DESC LIMIT 20`],
  ['daily series', `SELECT d::date AS day, COALESCE(SUM(oi.total_amount), 0) AS revenue
    FROM generate_series(date '2024-01-01', date '2024-12-31', interval '1 day') AS d
    LEFT JOIN retail.orders o ON o.order_date = d::date LEFT JOIN retail.order_items oi ON oi.order_id = o.order_id
    GROUP BY d ORDER BY d`],
];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Microseconds a call, in the fastest of five batches: the machine is shared, and the best batch is the least disturbed. */
async function microsPerCall(call: (i: number) => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let batch = 0, i = 0; batch < 5; batch++) {
    const started = performance.now();
    for (const end = i + RUNS / 5; i < end; i++) await call(i);
    best = Math.min(best, ((performance.now() - started) * 1000 * 5) / RUNS);
  }
  return best;
}

const guard = await loadSqlGuard();
for (const [label, sql] of QUERIES) {
  for (let i = 0; i < 500; i++) await guard(sql);
  const repeated = await microsPerCall(() => guard(sql));
  // A comment with a counter makes every text new: the full check each time.
  const unique = await microsPerCall((i) => guard(`${sql} -- ${label} ${i}`));
  console.log(`${label.padEnd(16)} same text ${repeated.toFixed(1).padStart(7)} µs/call   new text ${unique.toFixed(1).padStart(7)} µs/call`);
}

// A fresh guard: the heap it keeps after many unique texts, each refused or accepted once.
gc();
const heapBefore = process.memoryUsage().heapUsed;
const fresh = await loadSqlGuard();
const padding = 'x'.repeat(2_000);
for (let i = 0; i < UNIQUE; i++) await fresh(`SELECT '${padding}' AS v${i} FROM retail.stores`);
gc();
const grown = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
await fresh('SELECT 1'); // keeps the guard (and its cache) alive through the measurement
console.log(`${UNIQUE} unique 2 KB texts: heap grew ${grown.toFixed(1)} MB${'gc' in globalThis ? '' : ' (run with --expose-gc for a stable figure)'}`);
