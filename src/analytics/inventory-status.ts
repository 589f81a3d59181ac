// inventory_status: stock per store and product, its recent sales velocity (units a day over a window ending at
// the latest order date), days of cover at that pace, and the products at risk of running out.
import type { ResolvedPeriod } from './periods.js';
import { unitsSold } from './sales.js';
import { idArray, InvalidArgumentError, num, periodOf, queryPacked, resolveCategories, resolveStores, type Scope } from './scope.js';

export interface InventoryStatusArgs {
  readonly store?: string | undefined;
  readonly category?: string | undefined;
  /** Only products with fewer days of cover than this (products not sold in the window have no cover figure). */
  readonly below_days_of_cover?: number | undefined;
  /** Days of sales the velocity is measured over (default 30). */
  readonly velocity_days?: number | undefined;
  readonly limit?: number | undefined;
}

export interface StockItem {
  store: string;
  product_name: string;
  sku: string;
  category: string;
  stock_level: number;
  units_sold: number;
  /** Units a day over the window, two decimals. */
  daily_velocity: number;
  /** Stock ÷ daily velocity, one decimal; null when the product did not sell in the window. */
  days_of_cover: number | null;
  at_risk: boolean;
}

export interface InventoryStatus {
  /** The window the velocity is measured over, ending at the latest order date. */
  velocity_window: ResolvedPeriod;
  /** Days of cover under which a product counts as at risk. */
  risk_threshold_days: number;
  store: string | null;
  category: string | null;
  summary: { items: number; total_units_in_stock: number; out_of_stock: number; at_risk: number; not_sold_in_window: number };
  /** Lowest days of cover first (out of stock first of all); those not sold in the window last. */
  items: StockItem[];
  /** Items matching, before the limit. */
  item_count: number;
  truncated: boolean;
}

export const DEFAULT_RISK_DAYS = 14;

/** localeCompare's order (the default collator) without building it again for each of thousands of comparisons. */
const byText = new Intl.Collator().compare;


export async function inventoryStatus(scope: Scope, args: InventoryStatusArgs): Promise<InventoryStatus> {
  const velocityDays = args.velocity_days ?? 30;
  const anchor = periodOf(scope.refs, 'last_30_days').anchor;
  const from = new Date(Date.parse(`${anchor}T00:00:00Z`) - (velocityDays - 1) * 86_400_000).toISOString().slice(0, 10);
  const velocityWindow: ResolvedPeriod = { name: `last_${velocityDays}_days`, from, to: anchor, days: velocityDays, anchor };
  const stores = resolveStores(scope.refs, args.store === undefined ? undefined : [args.store]);
  const categories = resolveCategories(scope.refs, args.category === undefined ? undefined : [args.category]);
  if (args.below_days_of_cover !== undefined && !(args.below_days_of_cover > 0)) throw new InvalidArgumentError('below_days_of_cover must be a positive number of days');
  const threshold = args.below_days_of_cover ?? DEFAULT_RISK_DAYS;
  // MATERIALIZED: the window's sales are summed once (from the roll-up's daily rows while it is fresh), then
  // joined to the stock rows (a store × product each). A head office's answer is every store × product row, so
  // they come packed (queryPacked) and as ids, the product names once below (the stores' the caller has).
  const rows = await queryPacked(
    scope,
    `WITH sold AS MATERIALIZED (
       ${unitsSold(scope.refs, velocityWindow)})
     SELECT i.store_id, i.product_id, i.stock_level, coalesce(sold.units, 0) AS units
       FROM retail.inventory i
       JOIN retail.products p ON p.product_id = i.product_id
       LEFT JOIN sold ON sold.store_id = i.store_id AND sold.product_id = i.product_id
      WHERE ($3::int[] IS NULL OR i.store_id = ANY ($3::int[])) AND ($4::int[] IS NULL OR p.category_id = ANY ($4::int[]))`,
    [from, anchor, idArray(stores), idArray(categories)],
    ['store_id', 'product_id', 'stock_level', 'units'],
  );
  const products = await queryPacked(
    scope,
    `SELECT p.product_id, p.product_name, p.sku, c.category_name
       FROM retail.products p JOIN retail.categories c ON c.category_id = p.category_id
      WHERE ($1::int[] IS NULL OR p.category_id = ANY ($1::int[]))`,
    [idArray(categories)],
    ['product_id', 'product_name', 'sku', 'category_name'],
  );
  const productById = new Map(products.map((row) => [num(row[0]), { product_name: String(row[1]), sku: String(row[2]), category: String(row[3]) }]));
  const storeName = new Map(scope.refs.allStores.map((store) => [store.id, store.name]));
  const all: StockItem[] = rows.map((row) => {
    const stock = num(row[2]);
    const units = num(row[3]);
    const daily = units / velocityDays;
    const cover = units === 0 ? null : Math.round((stock / daily) * 10) / 10;
    return {
      store: storeName.get(num(row[0]))!,
      ...productById.get(num(row[1]))!,
      stock_level: stock,
      units_sold: units,
      daily_velocity: Math.round(daily * 100) / 100,
      days_of_cover: cover,
      at_risk: cover !== null && cover < threshold,
    };
  });
  all.sort(
    (a, b) =>
      (a.days_of_cover ?? Infinity) - (b.days_of_cover ?? Infinity) ||
      a.stock_level - b.stock_level ||
      byText(a.store, b.store) ||
      byText(a.sku, b.sku),
  );
  const matching = args.below_days_of_cover === undefined ? all : all.filter((item) => item.at_risk);
  const limit = args.limit ?? 50;
  return {
    velocity_window: velocityWindow,
    risk_threshold_days: threshold,
    store: stores?.[0]?.name ?? null,
    category: categories?.[0]?.name ?? null,
    summary: {
      items: all.length,
      total_units_in_stock: all.reduce((sum, item) => sum + item.stock_level, 0),
      out_of_stock: all.filter((item) => item.stock_level === 0).length,
      at_risk: all.filter((item) => item.at_risk).length,
      not_sold_in_window: all.filter((item) => item.days_of_cover === null).length,
    },
    items: matching.slice(0, limit),
    item_count: matching.length,
    truncated: matching.length > limit,
  };
}
