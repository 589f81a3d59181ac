// compare_periods: two periods side by side, the absolute and percent change of each metric, per group, and
// which groups drove the change (their share of the total revenue change).
import { comparisonPeriod, InvalidArgumentError, type PeriodInput, type ResolvedPeriod } from './periods.js';
import { aggregateSales, EMPTY_METRICS, type GroupBy, type Metrics } from './sales.js';
import { percentChange, periodOf, resolveCategories, resolveStores, resolveTypes, round2, type Scope } from './scope.js';

export const COMPARISONS = ['previous_period', 'same_period_last_year'] as const;
export type Comparison = (typeof COMPARISONS)[number];

export interface ComparePeriodsArgs {
  readonly current: PeriodInput;
  /** Default previous_period: the period just before, of the same length (whole months, quarters, years stay whole). */
  readonly previous?: Comparison | PeriodInput | undefined;
  readonly group_by?: GroupBy | undefined;
  readonly filters?: { stores?: string[] | undefined; categories?: string[] | undefined; product_types?: string[] | undefined } | undefined;
  readonly limit?: number | undefined;
}

export interface Change {
  absolute: number;
  /** Percent change, one decimal; null when the previous value was zero. */
  percent: number | null;
}

export interface MetricChanges {
  revenue: Change;
  orders: Change;
  units: Change;
  gross_margin: Change;
  avg_order_value: Change;
}

export interface GroupComparison {
  key: string;
  detail?: string;
  current_revenue: number;
  previous_revenue: number;
  revenue_change: Change;
  current_orders: number;
  previous_orders: number;
  current_units: number;
  previous_units: number;
  /** This group's part of the total revenue change, in percent (positive: moved with the total). */
  share_of_change_percent: number | null;
}

export interface ComparePeriods {
  current: ResolvedPeriod;
  previous: ResolvedPeriod;
  group_by: GroupBy;
  stores_covered: string[];
  totals: { current: Metrics; previous: Metrics; change: MetricChanges };
  groups: GroupComparison[];
  group_count: number;
  /** The groups that gained and lost the most revenue (at most three each), largest first. */
  drivers: { gains: string[]; losses: string[] };
}

function change(before: number, after: number): Change {
  return { absolute: round2(after - before), percent: percentChange(before, after) };
}

export function metricChanges(previous: Metrics, current: Metrics): MetricChanges {
  return {
    revenue: change(previous.revenue, current.revenue),
    orders: change(previous.orders, current.orders),
    units: change(previous.units, current.units),
    gross_margin: change(previous.gross_margin, current.gross_margin),
    avg_order_value: change(previous.avg_order_value, current.avg_order_value),
  };
}

function isComparison(value: unknown): value is Comparison {
  return typeof value === 'string' && (COMPARISONS as readonly string[]).includes(value.trim().toLowerCase());
}

export async function comparePeriods(scope: Scope, args: ComparePeriodsArgs): Promise<ComparePeriods> {
  const current = periodOf(scope.refs, args.current);
  const previousArg = args.previous ?? 'previous_period';
  const previous = isComparison(previousArg) ? comparisonPeriod(current, previousArg.trim().toLowerCase() as Comparison) : periodOf(scope.refs, previousArg);
  const stores = resolveStores(scope.refs, args.filters?.stores);
  const filters = { stores, categories: resolveCategories(scope.refs, args.filters?.categories), types: resolveTypes(scope.refs, args.filters?.product_types) };
  const groupBy = args.group_by ?? 'none';
  if (groupBy === 'month' || groupBy === 'week' || groupBy === 'day') {
    throw new InvalidArgumentError(
      `group_by "${groupBy}" cannot pair two different periods; use sales_summary with group_by "${groupBy}" for each period instead`,
    );
  }
  const now = await aggregateSales(scope, current, groupBy, filters);
  const before = await aggregateSales(scope, previous, groupBy, filters);
  const keyOf = (group: { key: string; detail?: string }) => `${group.key}\u0000${group.detail ?? ''}`;
  const merged = new Map<string, { key: string; detail?: string; now: Metrics; before: Metrics }>();
  for (const group of now.groups) merged.set(keyOf(group), { key: group.key, ...(group.detail ? { detail: group.detail } : {}), now: group, before: EMPTY_METRICS });
  for (const group of before.groups) {
    const entry = merged.get(keyOf(group));
    if (entry) entry.before = group;
    else merged.set(keyOf(group), { key: group.key, ...(group.detail ? { detail: group.detail } : {}), now: EMPTY_METRICS, before: group });
  }
  const totalChange = now.totals.revenue - before.totals.revenue;
  const groups: GroupComparison[] = [...merged.values()].map(({ key, detail, now: a, before: b }) => ({
    key,
    ...(detail ? { detail } : {}),
    current_revenue: a.revenue,
    previous_revenue: b.revenue,
    revenue_change: change(b.revenue, a.revenue),
    current_orders: a.orders,
    previous_orders: b.orders,
    current_units: a.units,
    previous_units: b.units,
    share_of_change_percent: totalChange === 0 ? null : Math.round(((a.revenue - b.revenue) / totalChange) * 1000) / 10,
  }));
  groups.sort((x, y) => Math.abs(y.revenue_change.absolute) - Math.abs(x.revenue_change.absolute) || x.key.localeCompare(y.key));
  const label = (g: GroupComparison) => (g.detail ? `${g.key} (${g.detail})` : g.key);
  const gains = groups.filter((g) => g.revenue_change.absolute > 0).sort((x, y) => y.revenue_change.absolute - x.revenue_change.absolute);
  const losses = groups.filter((g) => g.revenue_change.absolute < 0).sort((x, y) => x.revenue_change.absolute - y.revenue_change.absolute);
  const limit = args.limit ?? 50;
  return {
    current,
    previous,
    group_by: groupBy,
    stores_covered: (stores ?? scope.refs.stores).map((s) => s.name),
    totals: { current: now.totals, previous: before.totals, change: metricChanges(before.totals, now.totals) },
    groups: groups.slice(0, limit),
    group_count: groups.length,
    drivers: { gains: gains.slice(0, 3).map(label), losses: losses.slice(0, 3).map(label) },
  };
}
