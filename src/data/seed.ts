// Seeding: generate the dataset, then load it with COPY inside one owner transaction, so an interrupted load
// leaves no half dataset behind. An existing dataset is refused unless replacing it was asked for.
import { refreshSalesRollup } from '../db/sales-rollup.js';
import { DataLoadError } from '../infra/errors.js';
import { silentProgress, type Progress } from '../infra/progress.js';
import { quoteIdent } from '../db/migrations.js';
import type { AdminSession, ManagedDatabase, RowSet } from '../db/types.js';
import { loadDatabaseCatalog, loadDefaultCatalog, type Catalog, type CatalogIds } from './catalog.js';
import { parseEndDate } from './dates.js';

export interface SeedOptions {
  readonly customers: number;
  readonly seed: number;
  /** No order after this day (YYYY-MM-DD, UTC; default today). */
  readonly endDate?: string | undefined;
  /** Drop the existing dataset in the same transaction instead of refusing. */
  readonly replace?: boolean;
  readonly catalog?: Catalog;
  readonly progress?: Progress;
}

export interface SeedReport {
  readonly counts: Readonly<Record<string, number>>;
  /** Sales were generated around the catalog the database already held (an imported one), which was kept. */
  readonly keptCatalog: boolean;
  readonly generateMs: number;
  readonly loadMs: number;
}

/** Tables a dataset lives in, children first (the order TRUNCATE and checks use). */
const DATASET_TABLES = [
  'retail.product_description_embeddings',
  'zava_private.catalog_stock_levels',
  'retail.order_items',
  'retail.orders',
  'retail.inventory',
  'zava_data.customers',
  'retail.products',
  'retail.product_types',
  'retail.categories',
  'zava_data.stores',
  'zava_private.regional_managers',
];

/** What an imported catalog is made of: kept when sales are seeded around it. */
const CATALOG_TABLES = new Set([
  'retail.product_description_embeddings',
  'zava_private.catalog_stock_levels',
  'retail.products',
  'retail.product_types',
  'retail.categories',
]);

const SERIAL_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['retail.categories', 'category_id'],
  ['retail.product_types', 'type_id'],
  ['retail.products', 'product_id'],
  ['zava_data.customers', 'customer_id'],
  ['retail.orders', 'order_id'],
  ['retail.order_items', 'order_item_id'],
];

export const MAX_CUSTOMERS = 5_000_000;

export function validateSeedOptions(options: Pick<SeedOptions, 'customers' | 'seed' | 'endDate'>): void {
  if (!Number.isInteger(options.customers) || options.customers < 1 || options.customers > MAX_CUSTOMERS) {
    throw new DataLoadError(`--customers must be a whole number from 1 to ${MAX_CUSTOMERS.toLocaleString('en-US')} (got ${options.customers})`);
  }
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) {
    throw new DataLoadError(`--seed must be a whole number from 0 to 4294967295 (got ${options.seed})`);
  }
  if (options.endDate !== undefined) {
    try {
      parseEndDate(options.endDate);
    } catch (error) {
      throw new DataLoadError(`--end-date: ${(error as Error).message}`);
    }
  }
}

async function existingDataset(query: (sql: string) => Promise<RowSet>): Promise<string | undefined> {
  const result = await query(
    `SELECT (SELECT count(*) FROM retail.stores), (SELECT count(*) FROM retail.customers), (SELECT count(*) FROM retail.orders)`,
  );
  const [stores, customers, orders] = result.rows[0] as [number, number, number];
  if (stores === 0 && customers === 0 && orders === 0) return undefined;
  return `${Number(customers).toLocaleString('en-US')} customers and ${Number(orders).toLocaleString('en-US')} orders`;
}

/**
 * Bulk loads run several times faster into tables without secondary indexes and foreign-key triggers. Drops
 * them inside the load transaction and returns the statements that put them back (which also validate every
 * foreign key in one pass): if anything fails, the rollback restores them untouched.
 */
async function deferIndexesAndForeignKeys(session: AdminSession, keepCatalog: boolean): Promise<string[]> {
  // A kept catalog is not loaded: its indexes (HNSW among them) stay as they are.
  const tables = DATASET_TABLES.filter((t) => (t.startsWith('retail.') || t.startsWith('zava_data.')) && !(keepCatalog && CATALOG_TABLES.has(t)));
  const foreignKeys = await session.query(
    `SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
       FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY ($1::regclass[]) ORDER BY conrelid::regclass::text, conname`,
    [`{${tables.join(',')}}`],
  );
  const indexes = await session.query(
    `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
       FROM pg_index i
      WHERE i.indrelid = ANY ($1::regclass[])
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = i.indexrelid AND d.deptype = 'i')
      ORDER BY 1`,
    [`{${tables.join(',')}}`],
  );
  const restore: string[] = [];
  for (const [table, name] of foreignKeys.rows as [string, string, string][]) {
    await session.exec(`ALTER TABLE ${table} DROP CONSTRAINT ${quoteIdent(name)}`);
  }
  for (const [name, definition] of indexes.rows as [string, string][]) {
    await session.exec(`DROP INDEX ${name}`);
    restore.push(definition);
  }
  for (const [table, name, definition] of foreignKeys.rows as [string, string, string][]) {
    restore.push(`ALTER TABLE ${table} ADD CONSTRAINT ${quoteIdent(name)} ${definition}`);
  }
  return restore;
}

const SEED_LOCK_KEY = 7_362_002; // arbitrary, constant: "zava seeding"

export async function seedDatabase(db: ManagedDatabase, options: SeedOptions): Promise<SeedReport> {
  validateSeedOptions(options);
  const progress = options.progress ?? silentProgress;
  const refuse = (what: string) =>
    new DataLoadError(`the database already holds a dataset (${what}); nothing was changed. Use --replace to drop it and seed again.`);
  if (!options.replace) {
    const existing = await existingDataset((sql) => db.ownerQuery(sql));
    if (existing) throw refuse(existing);
  }

  // A database holding only a catalog (`catalog import` on an empty database): its sales, stores and customers are
  // generated around that catalog, which stays as it is (ids, embeddings, stock levels), instead of loading the
  // built-in one over it.
  let catalog = options.catalog ?? loadDefaultCatalog();
  let catalogIds: CatalogIds | undefined;
  if (!options.replace && !options.catalog) {
    const held = await loadDatabaseCatalog((sql) => db.ownerQuery(sql));
    if (held.ids.products.length > 0) ({ catalog, ids: catalogIds } = held);
  }
  let started = Date.now();
  progress.step('Generating data');
  // Loaded here, not with this module: a server on a seeded database never generates (faker is ~0.3 s of its start).
  const { generateDataset } = await import('./generator.js');
  const dataset = generateDataset({
    catalog,
    catalogIds,
    customers: options.customers,
    seed: options.seed,
    endDate: options.endDate,
    onProgress: (done) => progress.update('Generating data', done, options.customers),
  });
  const generateMs = Date.now() - started;
  progress.done(`Generated ${dataset.counts['retail.orders']!.toLocaleString('en-US')} orders for ${options.customers.toLocaleString('en-US')} customers`);

  started = Date.now();
  await db.withAdminTransaction(async (session) => {
    // One loader at a time (replicas starting together on an empty database): the next one waits, then finds
    // the dataset and is refused like any other second seed.
    await session.query('SELECT pg_advisory_xact_lock($1::bigint)', [SEED_LOCK_KEY]);
    const existing = await existingDataset((sql) => session.query(sql));
    if (existing && !options.replace) throw refuse(existing);
    if (existing) await session.exec(`TRUNCATE ${DATASET_TABLES.join(', ')} RESTART IDENTITY`);
    if (catalogIds) {
      // Checked again under the lock: the catalog read before generating must still be the whole catalog.
      const now = await session.query('SELECT count(*) FROM retail.products');
      if (Number(now.rows[0]![0]) !== catalogIds.products.length) throw new DataLoadError('the catalog changed while sales were being generated for it; nothing was changed. Try again.');
    }
    const deferred = await deferIndexesAndForeignKeys(session, catalogIds !== undefined);
    let loaded = 0;
    const totalRows = dataset.tables.reduce((sum, t) => sum + t.rows, 0);
    for (const table of dataset.tables) {
      progress.update(`Loading ${table.table}`, loaded, totalRows);
      if (table.rows > 0) await session.copyCsv(table.table, table.columns, table.csv);
      loaded += table.rows;
      progress.update(`Loading ${table.table}`, loaded, totalRows);
    }
    // Stock levels an imported catalog gave (kept while there were no stores) replace the generated ones.
    await session.exec(`UPDATE retail.inventory i SET stock_level = k.stock_level
                          FROM zava_private.catalog_stock_levels k WHERE k.product_id = i.product_id`);
    for (const [table, column] of SERIAL_COLUMNS) {
      await session.query(`SELECT setval(pg_get_serial_sequence('${table}', '${column}'), (SELECT coalesce(max(${column}), 0) + 1 FROM ${table}), false)`);
    }
    progress.step('Building indexes and checking foreign keys');
    for (const statement of deferred) await session.exec(statement);
    progress.step('Analyzing tables');
    await session.exec(`ANALYZE ${DATASET_TABLES.join(', ')}`);
    progress.step('Building the monthly sales roll-up');
    await refreshSalesRollup(session);
  });
  const loadMs = Date.now() - started;
  progress.done(`Loaded ${Object.values(dataset.counts).reduce((a, b) => a + b, 0).toLocaleString('en-US')} rows`);
  return { counts: dataset.counts, keptCatalog: catalogIds !== undefined, generateMs, loadMs };
}

/** Orders and revenue by store and year, as the reference system prints after seeding. */
export async function salesSummary(db: ManagedDatabase): Promise<string> {
  const result = await db.ownerQuery(`
    SELECT s.store_name, extract(year FROM o.order_date)::int AS year, count(*) AS orders, sum(t.revenue) AS revenue
      FROM retail.orders o
      JOIN retail.stores s ON s.store_id = o.store_id
      JOIN (SELECT order_id, sum(total_amount) AS revenue FROM retail.order_items GROUP BY order_id) t ON t.order_id = o.order_id
     GROUP BY s.store_name, year
     ORDER BY s.store_name, year`);
  const rows = result.rows as [string, number, number, number][];
  const years = [...new Set(rows.map((r) => r[1]))].sort();
  const stores = [...new Set(rows.map((r) => r[0]))];
  const cell = new Map(rows.map((r) => [`${r[0]}|${r[1]}`, r]));
  const fmtMoney = (n: number) => `$${Math.round(n).toLocaleString('en-US')}`;
  const header = ['Store', ...years.map(String), 'Total'];
  const body = stores.map((store) => {
    const perYear = years.map((y) => cell.get(`${store}|${y}`));
    const orders = perYear.reduce((sum, r) => sum + Number(r?.[2] ?? 0), 0);
    const revenue = perYear.reduce((sum, r) => sum + Number(r?.[3] ?? 0), 0);
    return [store, ...perYear.map((r) => (r ? `${Number(r[2]).toLocaleString('en-US')} / ${fmtMoney(Number(r[3]))}` : '-')), `${orders.toLocaleString('en-US')} / ${fmtMoney(revenue)}`];
  });
  const totals = years.map((y) => rows.filter((r) => r[1] === y));
  const allOrders = rows.reduce((s, r) => s + Number(r[2]), 0);
  const allRevenue = rows.reduce((s, r) => s + Number(r[3]), 0);
  body.push(['All stores', ...totals.map((t) => `${t.reduce((s, r) => s + Number(r[2]), 0).toLocaleString('en-US')} / ${fmtMoney(t.reduce((s, r) => s + Number(r[3]), 0))}`), `${allOrders.toLocaleString('en-US')} / ${fmtMoney(allRevenue)}`]);
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return ['Orders / revenue by store and year', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
