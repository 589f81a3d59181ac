// The one sales aggregation behind sales_summary, top_products, compare_periods and store_performance, so every
// tool defines revenue, orders, units, margin and discount the same way:
// - revenue: order_items.total_amount (after discount), summed;
// - orders: distinct orders with a line in the group (an order spanning two categories counts in both, once in the total);
// - units: order_items.quantity; discount: order_items.discount_amount;
// - gross margin: revenue minus quantity × products.cost.
// Fixed, parameterized SQL; the store filter is only ever narrower than what RLS admits.
import { idArray, num, round2, type NamedRef, type References, type Scope, type StoreRef, type TypeRef } from './scope.js';
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
  const plan = rollupPlan(scope.refs, period, groupBy, filters);
  if (!plan) return aggregateLines(scope, period, groupBy, filters);
  // Whole months from the roll-up, the partial months at either end from their order lines: an order has one
  // date, so distinct orders add up across the parts like the sums do.
  let result = await aggregateFromRollup(scope, plan, groupBy, filters);
  for (const edge of plan.edges) result = mergeAggregates(result, await aggregateLines(scope, edge, groupBy, filters), groupBy);
  return result;
}

function addMetrics(a: Metrics, b: Metrics): Metrics {
  return metricsOf(a.revenue + b.revenue, a.orders + b.orders, a.units + b.units, a.gross_margin + b.gross_margin, a.discount + b.discount);
}

function mergeAggregates(a: SalesAggregate, b: SalesAggregate, groupBy: GroupBy): SalesAggregate {
  const byKey = new Map<string, SalesGroup>();
  for (const group of [...a.groups, ...b.groups]) {
    const id = `${group.key}\u0000${group.detail ?? ''}`;
    const seen = byKey.get(id);
    byKey.set(id, seen ? { key: group.key, ...(group.detail === undefined ? {} : { detail: group.detail }), ...addMetrics(seen, group) } : group);
  }
  const groups = [...byKey.values()];
  groups.sort(isTimeGroup(groupBy) ? (x, y) => x.key.localeCompare(y.key) : (x, y) => y.revenue - x.revenue || x.key.localeCompare(y.key));
  return { totals: addMetrics(a.totals, b.totals), groups };
}

/** aggregateSales over the order lines themselves. */
async function aggregateLines(scope: Scope, period: ResolvedPeriod, groupBy: GroupBy, filters: SalesFilters): Promise<SalesAggregate> {
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

const DAY = 86_400_000;
const dayOf = (iso: string) => Date.parse(`${iso}T00:00:00Z`);
const isoOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** The first day of the month `offset` months from the month of `iso`. */
const monthStart = (iso: string, offset = 0) => isoOf(Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1 + offset, 1));

/** A period as the roll-up's whole months [first, last] (YYYY-MM-01) and the partial-month edges around them. */
export interface PeriodSplit {
  readonly months: [string, string];
  readonly edges: ResolvedPeriod[];
}

/**
 * Splits a period for the roll-up; undefined when it is stale or the period holds no whole month. A period may
 * start or end inside a month without an edge where the caller has no orders beyond it anyway (before its first
 * or after its latest order date).
 */
export function splitPeriod(refs: References, period: ResolvedPeriod): PeriodSplit | undefined {
  if (!refs.rollupFresh || !refs.firstOrder || !refs.lastOrder) return undefined;
  const startsWhole = period.from.endsWith('-01') || period.from <= refs.firstOrder;
  const endsWhole = isoOf(dayOf(period.to) + DAY).endsWith('-01') || period.to >= refs.lastOrder;
  const first = startsWhole ? monthStart(period.from) : monthStart(period.from, 1);
  const last = endsWhole ? monthStart(period.to) : monthStart(period.to, -1);
  if (first > last) return undefined;
  const edge = (from: string, to: string): ResolvedPeriod => ({ ...period, name: 'custom', from, to, days: Math.round((dayOf(to) - dayOf(from)) / DAY) + 1 });
  const edges: ResolvedPeriod[] = [];
  if (!startsWhole) edges.push(edge(period.from, isoOf(dayOf(first) - DAY)));
  if (!endsWhole) edges.push(edge(monthStart(period.to), period.to));
  return { months: [first, last], edges };
}

interface RollupPlan extends PeriodSplit {
  /** Distinct orders of the totals: all orders, or those with a line of the one category or type filtered on. */
  readonly totalsGrain: 'all' | 'category' | 'type';
  /** Distinct orders per group: per product from the product rows, else from this grain. */
  readonly groupsGrain: 'product' | 'all' | 'category' | 'type';
}

/**
 * Whether the monthly roll-up can answer exactly: it is fresh, the period is whole months (for the caller), the
 * grouping is by month or coarser, and distinct orders are additive for the filters (at most one category or one
 * product type: orders with a line in either of two categories are not the sum of each's).
 */
function rollupPlan(refs: References, period: ResolvedPeriod, groupBy: GroupBy, filters: SalesFilters): RollupPlan | undefined {
  const split = splitPeriod(refs, period);
  if (!split || groupBy === 'week' || groupBy === 'day') return undefined;
  const categories = filters.categories?.length ?? 0;
  const types = filters.types?.length ?? 0;
  if (categories > 1 || types > 1 || (categories > 0 && types > 0)) return undefined;
  const totalsGrain = types ? 'type' : categories ? 'category' : 'all';
  const groupsGrain =
    groupBy === 'product' ? 'product' : groupBy === 'category' ? (types ? 'type' : 'category') : groupBy === 'product_type' ? 'type' : totalsGrain;
  return { ...split, totalsGrain, groupsGrain };
}

/** The roll-up's grouping keys: as KEYS, the month from the roll-up's own column. */
function rollupKey(groupBy: GroupBy): [string, string] {
  if (groupBy === 'none') return ['NULL', 'NULL'];
  return groupBy === 'month' ? [`to_char(r.month, 'YYYY-MM')`, 'NULL'] : KEYS[groupBy];
}

function groupingClause(groupBy: GroupBy, key: string, detail: string, withTotal: boolean): { grouping: string; isTotal: string } {
  if (groupBy === 'none') return { grouping: 'GROUP BY ()', isTotal: 'true' };
  const columns = detail === 'NULL' ? key : `${key}, ${detail}`;
  return withTotal ? { grouping: `GROUP BY GROUPING SETS ((${columns}), ())`, isTotal: `GROUPING(${key}) = 1` } : { grouping: `GROUP BY ${columns}`, isTotal: 'false' };
}

/** Sums and distinct orders per group (or in all) from the roll-up's rows at one grain. */
async function rollupGroups(scope: Scope, plan: RollupPlan, grain: 'all' | 'category' | 'type', groupBy: GroupBy, filters: SalesFilters): Promise<SalesGroup[]> {
  const [key, detail] = rollupKey(groupBy);
  const { grouping } = groupingClause(groupBy, key, detail, false);
  const joins =
    grain === 'all'
      ? ''
      : grain === 'category'
        ? 'JOIN retail.categories c ON c.category_id = r.key'
        : 'JOIN retail.product_types t ON t.type_id = r.key JOIN retail.categories c ON c.category_id = t.category_id';
  const { rows } = await scope.query(
    `SELECT ${key}, ${detail}, coalesce(sum(r.revenue), 0), coalesce(sum(r.orders), 0), coalesce(sum(r.units), 0), coalesce(sum(r.margin), 0), coalesce(sum(r.discount), 0)
       FROM zava_rollup.sales_monthly_groups r
       JOIN retail.stores s ON s.store_id = r.store_id
       ${joins}
      WHERE r.grain = $1 AND r.month BETWEEN $2::date AND $3::date
        AND ($4::int[] IS NULL OR r.store_id = ANY ($4::int[]))
        ${grain === 'all' ? '' : `AND ($5::int[] IS NULL OR c.category_id = ANY ($5::int[]))`}
        ${grain === 'type' ? `AND ($6::int[] IS NULL OR t.type_id = ANY ($6::int[]))` : ''}
      ${grouping}`,
    [grain, plan.months[0], plan.months[1], idArray(filters.stores), ...(grain === 'all' ? [] : [idArray(filters.categories)]), ...(grain === 'type' ? [idArray(filters.types)] : [])],
  );
  return rows.map((row) => ({
    key: String(row[0]),
    ...(row[1] === null ? {} : { detail: String(row[1]) }),
    ...metricsOf(num(row[2]), num(row[3]), num(row[4]), num(row[5]), num(row[6])),
  }));
}

/**
 * aggregateSales from the monthly roll-up: totals and groups from the grain tables (a few hundred rows a month),
 * products from the product rows. The same figures: the golden suite checks both paths against the order lines.
 */
async function aggregateFromRollup(scope: Scope, plan: RollupPlan, groupBy: GroupBy, filters: SalesFilters): Promise<SalesAggregate> {
  const [total] = await rollupGroups(scope, plan, plan.totalsGrain, 'none', filters);
  const totals = total ? metricsOf(total.revenue, total.orders, total.units, total.gross_margin, total.discount) : EMPTY_METRICS;
  let groups: SalesGroup[] = [];
  if (plan.groupsGrain !== 'product') {
    if (groupBy !== 'none') groups = await rollupGroups(scope, plan, plan.groupsGrain, groupBy, filters);
  } else {
    const { rows } = await scope.query(
      `SELECT p.product_name, p.sku, sum(r.revenue), sum(r.orders), sum(r.units), sum(r.margin), sum(r.discount)
         FROM zava_rollup.sales_monthly r
         JOIN retail.products p ON p.product_id = r.product_id
        WHERE r.month BETWEEN $1::date AND $2::date
          AND ($3::int[] IS NULL OR r.store_id = ANY ($3::int[]))
          AND ($4::int[] IS NULL OR p.category_id = ANY ($4::int[]))
          AND ($5::int[] IS NULL OR p.type_id = ANY ($5::int[]))
        GROUP BY p.product_name, p.sku`,
      [plan.months[0], plan.months[1], idArray(filters.stores), idArray(filters.categories), idArray(filters.types)],
    );
    groups = rows.map((row) => ({ key: String(row[0]), detail: String(row[1]), ...metricsOf(num(row[2]), num(row[3]), num(row[4]), num(row[5]), num(row[6])) }));
  }
  groups.sort(isTimeGroup(groupBy) ? (a, b) => a.key.localeCompare(b.key) : (a, b) => b.revenue - a.revenue || a.key.localeCompare(b.key));
  return { totals, groups };
}

/**
 * Revenue of a period per store and product, as a subquery `oi(store_id, product_id, day, amount)`: the roll-up's
 * whole months (day = the month's first) and the order lines of the partial months around them, or only order
 * lines while the roll-up is stale. Revenue is additive, so the parts are simply put together.
 */
export function revenueLines(refs: References, period: ResolvedPeriod): string {
  const date = (iso: string) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(iso)) throw new Error(`not a date: ${iso}`); // ours, resolved: never caller text
    return `'${iso}'::date`;
  };
  const lines = (p: ResolvedPeriod) =>
    `SELECT oi.store_id, oi.product_id, o.order_date AS day, oi.total_amount AS amount FROM ${orderLinesOf(p)} WHERE o.order_date BETWEEN ${date(p.from)} AND ${date(p.to)}`;
  const split = splitPeriod(refs, period);
  if (!split) return `(${lines(period)}) oi`;
  const parts = [
    `SELECT store_id, product_id, month AS day, revenue AS amount FROM zava_rollup.sales_monthly WHERE month BETWEEN ${date(split.months[0])} AND ${date(split.months[1])}`,
    ...split.edges.map(lines),
  ];
  return `(${parts.join(' UNION ALL ')}) oi`;
}

/** As revenueLines, per store and category: `oi(store_id, category_id, day, amount)`, whole months from the category grain. */
export function categoryRevenueLines(refs: References, period: ResolvedPeriod): string {
  const date = (iso: string) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(iso)) throw new Error(`not a date: ${iso}`); // ours, resolved: never caller text
    return `'${iso}'::date`;
  };
  const lines = (p: ResolvedPeriod) =>
    `SELECT oi.store_id, pc.category_id, o.order_date AS day, oi.total_amount AS amount FROM ${orderLinesOf(p)} ` +
    `JOIN retail.products pc ON pc.product_id = oi.product_id WHERE o.order_date BETWEEN ${date(p.from)} AND ${date(p.to)}`;
  const split = splitPeriod(refs, period);
  if (!split) return `(${lines(period)}) oi`;
  const parts = [
    `SELECT store_id, key AS category_id, month AS day, revenue AS amount FROM zava_rollup.sales_monthly_groups WHERE grain = 'category' AND month BETWEEN ${date(split.months[0])} AND ${date(split.months[1])}`,
    ...split.edges.map(lines),
  ];
  return `(${parts.join(' UNION ALL ')}) oi`;
}

/** "12 orders, $1,234.56 revenue": money as the text renderings show it. */
export function money(value: number): string {
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
