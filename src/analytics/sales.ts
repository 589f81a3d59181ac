// The one sales aggregation behind sales_summary, top_products, compare_periods and store_performance, so every
// tool defines revenue, orders, units, margin and discount the same way:
// - revenue: order_items.total_amount (after discount), summed;
// - orders: distinct orders with a line in the group (an order spanning two categories counts in both, once in the total);
// - units: order_items.quantity; discount: order_items.discount_amount;
// - gross margin: revenue minus quantity × products.cost.
// Fixed, parameterized SQL; the store filter is only ever narrower than what RLS admits.
import { idArray, num, queryPacked, round2, type NamedRef, type References, type Scope, type StoreRef, type TypeRef } from './scope.js';
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
  // Whole months from the roll-up, the partial months at either end from its daily rows where they answer the
  // grouping (all lines per store, or per product), else from their order lines: an order has one date, so
  // distinct orders add up across the parts like the sums do.
  const dailyEdges = plan.totalsGrain === 'all' && DAILY_GROUPINGS.has(groupBy) ? plan.edges : [];
  let result = await aggregateFromRollup(scope, plan, dailyEdges, groupBy, filters);
  for (const edge of plan.edges) {
    if (!dailyEdges.includes(edge)) result = mergeAggregates(result, await aggregateLines(scope, edge, groupBy, filters), groupBy);
  }
  return result;
}

/** Groupings the daily rows answer: per store and day at all lines (store, region, month, none), or per product. */
const DAILY_GROUPINGS: ReadonlySet<GroupBy> = new Set(['none', 'store', 'region', 'month', 'product']);

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

/** A resolved date as an SQL literal: ours, resolved and checked, never caller text. */
function sqlDate(iso: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(iso)) throw new Error(`not a date: ${iso}`);
  return `'${iso}'::date`;
}

const SUMS = 'revenue, units, margin, discount, orders';

/** The roll-up rows of whole months at one grain and of daily edges (all lines per store), as `r(store_id, at, key, sums…)`. */
function grainRows(months: readonly [string, string], grain: 'all' | 'category' | 'type', dailyEdges: readonly ResolvedPeriod[]): string {
  if (grain !== 'all' && dailyEdges.length > 0) throw new Error('the daily rows hold all lines per store only'); // see aggregateSales
  const parts = [
    `SELECT store_id, month AS at, key, ${SUMS} FROM zava_rollup.sales_monthly_groups WHERE grain = '${grain}' AND month BETWEEN ${sqlDate(months[0])} AND ${sqlDate(months[1])}`,
    ...dailyEdges.map((edge) => `SELECT store_id, day, 0, ${SUMS} FROM zava_rollup.sales_daily_stores WHERE day BETWEEN ${sqlDate(edge.from)} AND ${sqlDate(edge.to)}`),
  ];
  return `(${parts.join(' UNION ALL ')}) r`;
}

/**
 * The whole months [first, last] as running totals (src/db/sales-rollup.ts): those through `last` minus those
 * through the month before `first`. The running rows end at the latest month sold, so `last` stops at the
 * caller's latest order; undefined when no month of the span is left.
 */
function runningSpan(refs: References, months: readonly [string, string]): { through: string; before: string } | undefined {
  const latest = refs.lastOrder ? monthStart(refs.lastOrder) : months[0];
  const through = months[1] < latest ? months[1] : latest;
  return months[0] > through ? undefined : { through, before: monthStart(months[0], -1) };
}

/**
 * Spans of up to this many whole months read their monthly product rows, longer ones the running totals: a month
 * holds about half as many store × product rows as the two months of running totals a span reads (2,360 against
 * 2 × 4,862 at the reference size).
 */
const MONTHLY_PRODUCT_SPAN = 3;

/**
 * Product rows of a period from the roll-up, as `r(store_id, product_id, at, sums…)`: the whole months from the
 * monthly product rows or (longer spans) the running totals, only products sold in them; the edges from the daily rows.
 */
function productRows(refs: References, months: readonly [string, string], edges: readonly ResolvedPeriod[]): string {
  const span = runningSpan(refs, months);
  const monthCount = (Number(months[1].slice(0, 4)) - Number(months[0].slice(0, 4))) * 12 + Number(months[1].slice(5, 7)) - Number(months[0].slice(5, 7)) + 1;
  const diff = (column: string) => `a.${column} - coalesce(b.${column}, 0) AS ${column}`;
  const wholeMonths =
    monthCount <= MONTHLY_PRODUCT_SPAN
      ? `SELECT store_id, product_id, month AS at, ${SUMS} FROM zava_rollup.sales_monthly WHERE month BETWEEN ${sqlDate(months[0])} AND ${sqlDate(months[1])}`
      : span &&
        `SELECT a.store_id, a.product_id, a.month AS at, ${SUMS.split(', ').map(diff).join(', ')}
           FROM zava_rollup.sales_running a
           LEFT JOIN zava_rollup.sales_running b ON b.month = ${sqlDate(span.before)} AND b.store_id = a.store_id AND b.product_id = a.product_id
          WHERE a.month = ${sqlDate(span.through)} AND a.orders > coalesce(b.orders, 0)`;
  const parts = [
    ...(wholeMonths ? [wholeMonths] : []),
    ...edges.map((edge) => `SELECT store_id, product_id, day, ${SUMS} FROM zava_rollup.sales_daily WHERE day BETWEEN ${sqlDate(edge.from)} AND ${sqlDate(edge.to)}`),
  ];
  // Nothing to read: an empty set of the same shape.
  if (parts.length === 0) parts.push(`SELECT 0, 0, NULL::date, ${SUMS.split(', ').map((c) => `0 AS ${c}`).join(', ')} WHERE false`);
  return `(${parts.join(' UNION ALL ')}) r`;
}

/** The roll-up's grouping keys: as KEYS, the month from the roll-up's own date. */
function rollupKey(groupBy: GroupBy): [string, string] {
  if (groupBy === 'none') return ['NULL', 'NULL'];
  return groupBy === 'month' ? [`to_char(r.at, 'YYYY-MM')`, 'NULL'] : KEYS[groupBy];
}

/**
 * Sums and distinct orders per group from the roll-up's rows at one grain, and with `withTotal` the total of them
 * all from the same scan (GROUPING SETS: a round trip less, which is much of a small query's time).
 */
async function rollupGroups(
  scope: Scope,
  plan: RollupPlan,
  dailyEdges: readonly ResolvedPeriod[],
  grain: 'all' | 'category' | 'type',
  groupBy: GroupBy,
  filters: SalesFilters,
  withTotal: boolean,
): Promise<{ total: Metrics | undefined; groups: SalesGroup[] }> {
  const [key, detail] = rollupKey(groupBy);
  const columns = detail === 'NULL' ? key : `${key}, ${detail}`;
  const grouping = groupBy === 'none' ? 'GROUP BY ()' : withTotal ? `GROUP BY GROUPING SETS ((${columns}), ())` : `GROUP BY ${columns}`;
  const isTotal = groupBy === 'none' ? 'true' : withTotal ? `GROUPING(${key}) = 1` : 'false';
  const joins =
    grain === 'all'
      ? ''
      : grain === 'category'
        ? 'JOIN retail.categories c ON c.category_id = r.key'
        : 'JOIN retail.product_types t ON t.type_id = r.key JOIN retail.categories c ON c.category_id = t.category_id';
  const { rows } = await scope.query(
    `SELECT ${isTotal}, ${key}, ${detail}, coalesce(sum(r.revenue), 0), coalesce(sum(r.orders), 0), coalesce(sum(r.units), 0), coalesce(sum(r.margin), 0), coalesce(sum(r.discount), 0)
       FROM ${grainRows(plan.months, grain, dailyEdges)}
       JOIN retail.stores s ON s.store_id = r.store_id
       ${joins}
      WHERE ($1::int[] IS NULL OR r.store_id = ANY ($1::int[]))
        ${grain === 'all' ? '' : `AND ($2::int[] IS NULL OR c.category_id = ANY ($2::int[]))`}
        ${grain === 'type' ? `AND ($3::int[] IS NULL OR t.type_id = ANY ($3::int[]))` : ''}
      ${grouping}`,
    [idArray(filters.stores), ...(grain === 'all' ? [] : [idArray(filters.categories)]), ...(grain === 'type' ? [idArray(filters.types)] : [])],
  );
  let total: Metrics | undefined;
  const groups: SalesGroup[] = [];
  for (const row of rows) {
    const metrics = metricsOf(num(row[3]), num(row[4]), num(row[5]), num(row[6]), num(row[7]));
    if (row[0] === true) total = metrics;
    else groups.push({ key: String(row[1]), ...(row[2] === null ? {} : { detail: String(row[2]) }), ...metrics });
  }
  return { total, groups };
}

/**
 * aggregateSales from the roll-up: totals and groups from the grain tables (a few hundred rows a month), in one
 * query where the groups' grain is the totals' (per store, region or month), products from the running totals;
 * `dailyEdges` (partial months) from the daily rows. The same figures: the golden suite checks every path against
 * the order lines.
 */
async function aggregateFromRollup(scope: Scope, plan: RollupPlan, dailyEdges: readonly ResolvedPeriod[], groupBy: GroupBy, filters: SalesFilters): Promise<SalesAggregate> {
  const together = plan.groupsGrain === plan.totalsGrain;
  const first = await rollupGroups(scope, plan, dailyEdges, plan.totalsGrain, together ? groupBy : 'none', filters, true);
  const totals = first.total ?? EMPTY_METRICS;
  let groups: SalesGroup[] = together ? first.groups : [];
  if (plan.groupsGrain !== 'product') {
    if (!together && groupBy !== 'none') ({ groups } = await rollupGroups(scope, plan, dailyEdges, plan.groupsGrain, groupBy, filters, false));
  } else {
    // Summed per product id (one SKU each), then named: hashing thousands of ids is cheaper than of names. A
    // product per row, packed (queryPacked): every product sold, up to the whole catalog.
    const rows = await queryPacked(
      scope,
      `SELECT p.product_name, p.sku, x.revenue, x.orders, x.units, x.margin, x.discount
         FROM (SELECT r.product_id, sum(r.revenue) AS revenue, sum(r.orders) AS orders, sum(r.units) AS units, sum(r.margin) AS margin, sum(r.discount) AS discount
                 FROM ${productRows(scope.refs, plan.months, dailyEdges)}
                WHERE ($1::int[] IS NULL OR r.store_id = ANY ($1::int[]))
                GROUP BY r.product_id) x
         JOIN retail.products p ON p.product_id = x.product_id
        WHERE ($2::int[] IS NULL OR p.category_id = ANY ($2::int[]))
          AND ($3::int[] IS NULL OR p.type_id = ANY ($3::int[]))`,
      [idArray(filters.stores), idArray(filters.categories), idArray(filters.types)],
      ['product_name', 'sku', 'revenue', 'orders', 'units', 'margin', 'discount'],
    );
    groups = rows.map((row) => ({ key: String(row[0]), detail: String(row[1]), ...metricsOf(num(row[2]), num(row[3]), num(row[4]), num(row[5]), num(row[6])) }));
  }
  groups.sort(isTimeGroup(groupBy) ? (a, b) => a.key.localeCompare(b.key) : (a, b) => b.revenue - a.revenue || a.key.localeCompare(b.key));
  return { totals, groups };
}

/** The order lines of a period as `(store_id, product_id, day, amount)` rows (the roll-up stale or no whole month). */
function revenueOfLines(p: ResolvedPeriod): string {
  return `SELECT oi.store_id, oi.product_id, o.order_date AS day, oi.total_amount AS amount FROM ${orderLinesOf(p)} WHERE o.order_date BETWEEN ${sqlDate(p.from)} AND ${sqlDate(p.to)}`;
}

/**
 * Revenue of a period per store and product, as a subquery `oi(store_id, product_id, day, amount)`: from the
 * roll-up (whole months from the running totals, the partial months from the daily rows), or only order lines
 * while it is stale or the period holds no whole month. Revenue is additive, so the parts are simply put together.
 */
export function revenueLines(refs: References, period: ResolvedPeriod): string {
  const split = splitPeriod(refs, period);
  if (!split) return `(${revenueOfLines(period)}) oi`;
  return `(SELECT store_id, product_id, at AS day, revenue AS amount FROM ${productRows(refs, split.months, split.edges)}) oi`;
}

/**
 * As revenueLines, per store and category: `oi(store_id, category_id, day, amount)`, whole months from the
 * category grain, the partial months from the daily product rows.
 */
export function categoryRevenueLines(refs: References, period: ResolvedPeriod): string {
  const split = splitPeriod(refs, period);
  if (!split) return `(SELECT l.store_id, pc.category_id, l.day, l.amount FROM (${revenueOfLines(period)}) l JOIN retail.products pc ON pc.product_id = l.product_id) oi`;
  const parts = [
    `SELECT store_id, key AS category_id, month AS day, revenue AS amount FROM zava_rollup.sales_monthly_groups WHERE grain = 'category' AND month BETWEEN ${sqlDate(split.months[0])} AND ${sqlDate(split.months[1])}`,
    ...split.edges.map(
      (edge) =>
        `SELECT d.store_id, pc.category_id, d.day, d.revenue FROM zava_rollup.sales_daily d JOIN retail.products pc ON pc.product_id = d.product_id WHERE d.day BETWEEN ${sqlDate(edge.from)} AND ${sqlDate(edge.to)}`,
    ),
  ];
  return `(${parts.join(' UNION ALL ')}) oi`;
}

/**
 * Units sold per store and product in a window, as a query `(store_id, product_id, units)` with `$1`/`$2` the
 * window's dates and `$3` the store filter: from the daily rows while the roll-up is fresh, else the order lines.
 */
export function unitsSold(refs: References, window: ResolvedPeriod): string {
  return refs.rollupFresh
    ? `SELECT store_id, product_id, sum(units) AS units FROM zava_rollup.sales_daily
        WHERE day BETWEEN $1::date AND $2::date AND ($3::int[] IS NULL OR store_id = ANY ($3::int[])) GROUP BY store_id, product_id`
    : `SELECT oi.store_id, oi.product_id, sum(oi.quantity) AS units FROM ${orderLinesOf(window)}
        WHERE o.order_date BETWEEN $1::date AND $2::date AND ($3::int[] IS NULL OR oi.store_id = ANY ($3::int[])) GROUP BY oi.store_id, oi.product_id`;
}

/** "12 orders, $1,234.56 revenue": money as the text renderings show it. */
export function money(value: number): string {
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
