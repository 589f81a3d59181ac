// Typed analytics tools benchmark, `npm run bench:analytics` (issue 13): each tool's median latency at the
// reference dataset size (100,000 customers) on both backends, as head office (every store, the largest answer)
// and as a store manager (RLS narrows the rows), through the same identity-scoped session the MCP tools use
// (src/analytics/scope.ts; the MCP transport adds the same overhead as for every other tool, measured by
// `npm run bench`). Targets: under 50 ms on the PostgreSQL service, under 150 ms embedded.
// Usage: npm run bench:analytics -- [--customers N] [--calls N] [--backends embedded,server]
//          [--database-url URL (an existing seeded database; kept)] [--data-dir DIR (an existing embedded one; kept)]
// PostgreSQL at ZAVA_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/postgres.
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { comparePeriods } from '../src/analytics/compare-periods.js';
import { inventoryStatus } from '../src/analytics/inventory-status.js';
import { salesSummary } from '../src/analytics/sales-summary.js';
import { runScoped, type Scope } from '../src/analytics/scope.js';
import { seasonality } from '../src/analytics/seasonality.js';
import { storePerformance } from '../src/analytics/store-performance.js';
import { topProducts } from '../src/analytics/top-products.js';
import { prepareSchema } from '../src/cli/migrate.js';
import { seedDatabase } from '../src/data/seed.js';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { openDatabase } from '../src/db/open.js';
import type { ManagedDatabase } from '../src/db/types.js';
import { loadConfig } from '../src/infra/config.js';
import { createLogger } from '../src/infra/logger.js';

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const CUSTOMERS = Number(option('customers') ?? 100_000);
const CALLS = Number(option('calls') ?? 15);
const BACKENDS = (option('backends') ?? 'server,embedded').split(',');
const PG_ADMIN = process.env.ZAVA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TARGET_MS: Record<string, number> = { server: 50, embedded: 150 };
const log = createLogger('warn');

const SEATTLE = STORES.find((s) => s.name === 'Zava Retail Seattle')!;
const IDENTITIES = [
  ['head office', HEAD_OFFICE_USER_ID],
  ['store manager', SEATTLE.managerId],
] as const;

/** One representative call per tool, as a model would make them. */
const CASES: Array<[string, (scope: Scope) => Promise<unknown>]> = [
  ['sales_summary last_quarter by category', (s) => salesSummary(s, { period: 'last_quarter', group_by: 'category' })],
  ['sales_summary this_year by month', (s) => salesSummary(s, { period: 'this_year', group_by: 'month' })],
  ['sales_summary all_time by store', (s) => salesSummary(s, { period: 'all_time', group_by: 'store' })],
  ['top_products all_time top 20', (s) => topProducts(s, { period: 'all_time', by: 'revenue', limit: 20 })],
  ['top_products last_quarter top 10', (s) => topProducts(s, { period: 'last_quarter', limit: 10 })],
  ['compare_periods last_quarter by category', (s) => comparePeriods(s, { current: 'last_quarter', group_by: 'category' })],
  ['store_performance ytd', (s) => storePerformance(s, { period: 'ytd' })],
  ['inventory_status', (s) => inventoryStatus(s, { below_days_of_cover: 14 })],
  ['seasonality all categories', (s) => seasonality(s, {})],
];

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function open(kind: string): Promise<{ db: ManagedDatabase; done: () => Promise<void> }> {
  const existingUrl = option('database-url');
  const existingDir = option('data-dir');
  if (kind === 'server') {
    let url = existingUrl;
    let drop: () => Promise<void> = async () => undefined;
    if (!url) {
      const name = `zava_bench_analytics_${process.pid}`;
      await admin(`CREATE DATABASE ${name}`);
      const u = new URL(PG_ADMIN);
      u.pathname = `/${name}`;
      url = u.toString();
      drop = async () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    const config = loadConfig({ databaseUrl: url }, {});
    const db = await openDatabase(config);
    await prepareSchema(db, config);
    if (!existingUrl) await timed(`seed ${CUSTOMERS} customers (server)`, () => seedDatabase(db, { customers: CUSTOMERS, seed: 1 }));
    return { db, done: async () => { await db.close(); await drop(); } };
  }
  const dir = existingDir ?? (await mkdtemp(path.join(tmpdir(), 'zava-bench-analytics-')));
  const config = loadConfig({ dataDir: existingDir ?? path.join(dir, 'pglite') }, {});
  const db = await openDatabase(config);
  await prepareSchema(db, config);
  if (!existingDir) await timed(`seed ${CUSTOMERS} customers (embedded)`, () => seedDatabase(db, { customers: CUSTOMERS, seed: 1 }));
  return { db, done: async () => { await db.close(); if (!existingDir) await rm(dir, { recursive: true, force: true }); } };
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  process.stderr.write(`${label}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return result;
}

process.stdout.write(`typed analytics tools, ${CUSTOMERS} customers, median of ${CALLS} calls after 2 warm-up calls; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)} at start (shared machine)\n`);
for (const kind of BACKENDS) {
  const { db, done } = await open(kind);
  try {
    const lines = await db.ownerQuery('SELECT count(*) FROM retail.order_items');
    // The identity directory loads on first use within a fixed time, which a fresh embedded database on a loaded
    // machine can miss once (as in the golden suite): warmed up before anything is timed.
    for (let attempt = 1; ; attempt++) {
      try {
        await db.resolveIdentity(HEAD_OFFICE_USER_ID);
        break;
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
    process.stdout.write(`\n${kind} backend (${String(lines.rows[0]![0])} order lines), target < ${TARGET_MS[kind]} ms\n`);
    process.stdout.write(`${'tool call'.padEnd(44)}${IDENTITIES.map(([label]) => label.padStart(16)).join('')}\n`);
    for (const [label, work] of CASES) {
      const cells: string[] = [];
      for (const [, userId] of IDENTITIES) {
        const samples: number[] = [];
        for (let i = 0; i < CALLS + 2; i++) {
          const started = performance.now();
          const outcome = await runScoped(db, log, label, await db.resolveIdentity(userId), undefined, work);
          const ms = performance.now() - started;
          if (!outcome.ok) throw new Error(`${label}: ${outcome.message}`);
          if (i >= 2) samples.push(ms);
        }
        const m = median(samples);
        cells.push(`${m.toFixed(1)} ms${m > TARGET_MS[kind]! ? ' !' : '  '}`.padStart(16));
      }
      process.stdout.write(`${label.padEnd(44)}${cells.join('')}\n`);
    }
  } finally {
    await done();
  }
}
process.stdout.write(`\n"!" marks a median over the target. Load at the end: ${loadavg()[0]!.toFixed(1)}.\n`);
