// The one sales aggregation behind sales_summary, top_products, compare_periods and store_performance, so every
// tool defines revenue, orders, units, margin and discount the same way:
// - revenue: order_items.total_amount (after discount), summed;
// - orders: distinct orders with a line in the group (an order spanning two categories counts in both, once in the total);
// - units: order_items.quantity; discount: order_items.discount_amount;
// - gross margin: revenue minus quantity × products.cost.
// Fixed, parameterized SQL; the store filter is only ever narrower than what RLS admits.
import { idArray, num, round2, type NamedRef, type Scope, type StoreRef, type TypeRef } from './scope.js';
import type { ResolvedPeriod } from './periods.js';

export const GROUP_BY = ['none', 'store', 'region', 'category', 'product_type', 'product', 'month', 'week', 'day'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export interface Metrics {
  revenue: number;
  orders: number;
  units: number;
  avg_order_value: number;
  gross_margin: number;
  gross_margin_percent: number | null;
  discount: number;
}

export interface SalesGroup extends Metrics {
  /** The group's name: store, region, category, type or product name, or the month (YYYY-MM), week (its Monday) or day. */
  key: string;
  /** Products: the SKU; product types: their category. */
  detail?: string;
}

export interface SalesFilters {
  readonly stores?: readonly StoreRef[] | undefined;
  readonly categories?: readonly NamedRef[] | undefined;
  readonly types?: readonly TypeRef[] | undefined;
}

export interface SalesAggregate {
  totals: Metrics;
  groups: SalesGroup[];
}

/** The grouping column(s) per dimension: [key expression, detail expression]. */
const KEYS: Record<Exclude<GroupBy, 'none'>, [string, string]> = {
  store: ['s.store_name', 'NULL'],
  region: ['s.region', 'NULL'],
  category: ['c.category_name', 'NULL'],
  product_type: ['t.type_name', 'c.category_name'],
  product: ['p.product_name', 'p.sku'],
  month: [`to_char(o.order_date, 'YYYY-MM')`, 'NULL'],
  week: [`to_char(date_trunc('week', o.order_date), 'YYYY-MM-DD')`, 'NULL'],
  day: ['o.order_date::text', 'NULL'],
};

/**
 * The order lines of a period, as `oi` beside their order `o`. PostgreSQL's planner hashes every order line to
 * join them to a short period's orders (measured at the reference size: a parallel scan of 400k lines for 18k
 * of a quarter); driving from the orders' date index into order_items by order_id (OFFSET 0 keeps the lateral
 * subquery from being flattened back into a hash join) reads only the period's lines, about twice as fast for
 * a quarter. Past a few months the hash join is the better plan, so it stays for long periods.
 */
export function orderLinesOf(period: ResolvedPeriod): string {
  return period.days <= SHORT_PERIOD_DAYS
    ? 'retail.orders o CROSS JOIN LATERAL (SELECT * FROM retail.order_items i WHERE i.order_id = o.order_id OFFSET 0) oi'
    : 'retail.order_items oi JOIN retail.orders o ON o.order_id = oi.order_id';
}

const SHORT_PERIOD_DAYS = 120;

const TIME_GROUPS: ReadonlySet<GroupBy> = new Set(['month', 'week', 'day']);

export function isTimeGroup(groupBy: GroupBy): boolean {
  return TIME_GROUPS.has(groupBy);
}

export function metricsOf(revenue: number, orders: number, units: number, margin: number, discount: number): Metrics {
  return {
    revenue: round2(revenue),
    orders,
    units,
    avg_order_value: orders === 0 ? 0 : round2(revenue / orders),
    gross_margin: round2(margin),
    gross_margin_percent: revenue === 0 ? null : Math.round((margin / revenue) * 1000) / 10,
    discount: round2(discount),
  };
}

export const EMPTY_METRICS: Metrics = metricsOf(0, 0, 0, 0, 0);

/**
 * Sales in `period` under the filters, grouped by one dimension, with the totals from the same scan
 * (GROUPING SETS). Groups come sorted by revenue (highest first), or by time for month, week and day.
 */
export async function aggregateSales(scope: Scope, period: ResolvedPeriod, groupBy: GroupBy, filters: SalesFilters = {}): Promise<SalesAggregate> {
  const [key, detail] = groupBy === 'none' ? ['NULL', 'NULL'] : KEYS[groupBy];
  const columns = detail === 'NULL' ? key : `${key}, ${detail}`;
  const grouping = groupBy === 'none' ? 'GROUP BY ()' : `GROUP BY GROUPING SETS ((${columns}), ())`;
  const isTotal = groupBy === 'none' ? 'true' : `GROUPING(${key}) = 1`;
  const { rows } = await scope.query(
    `SELECT ${isTotal}, ${key}, ${detail},
            coalesce(sum(oi.total_amount), 0), count(DISTINCT oi.order_id), coalesce(sum(oi.quantity), 0),
            coalesce(sum(oi.total_amount - oi.quantity * p.cost), 0), coalesce(sum(oi.discount_amount), 0)
       FROM ${orderLinesOf(period)}
       JOIN retail.products p ON p.product_id = oi.product_id
       JOIN retail.stores s ON s.store_id = oi.store_id
       JOIN retail.categories c ON c.category_id = p.category_id
       JOIN retail.product_types t ON t.type_id = p.type_id
      WHERE o.order_date BETWEEN $1::date AND $2::date
        AND ($3::int[] IS NULL OR oi.store_id = ANY ($3::int[]))
        AND ($4::int[] IS NULL OR p.category_id = ANY ($4::int[]))
        AND ($5::int[] IS NULL OR p.type_id = ANY ($5::int[]))
      ${grouping}`,
    [period.from, period.to, idArray(filters.stores), idArray(filters.categories), idArray(filters.types)],
  );
  let totals = EMPTY_METRICS;
  const groups: SalesGroup[] = [];
  for (const row of rows) {
    const metrics = metricsOf(num(row[3]), num(row[4]), num(row[5]), num(row[6]), num(row[7]));
    if (row[0] === true) totals = metrics;
    else groups.push({ key: String(row[1]), ...(row[2] === null ? {} : { detail: String(row[2]) }), ...metrics });
  }
  groups.sort(isTimeGroup(groupBy) ? (a, b) => a.key.localeCompare(b.key) : (a, b) => b.revenue - a.revenue || a.key.localeCompare(b.key));
  return { totals, groups };
}

/** "12 orders, $1,234.56 revenue": money as the text renderings show it. */
export function money(value: number): string {
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
