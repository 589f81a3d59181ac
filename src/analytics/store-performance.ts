// store_performance: the architecture seed's SalesAnalyticsService.get_store_performance(store_id, time_period):
// each store's metrics for a period, against the period before, with a few plain insights computed from the
// figures (best and weakest category, trend, share of the caller's total, rank among the caller's stores).
import { comparisonPeriod, describePeriod, type PeriodInput, type ResolvedPeriod } from './periods.js';
import { metricChanges, type MetricChanges } from './compare-periods.js';
import { aggregateSales, EMPTY_METRICS, money, categoryRevenueLines, revenueLines, type Metrics, type SalesGroup } from './sales.js';
import { num, periodOf, resolveStores, round2, type Scope } from './scope.js';

export interface StorePerformanceArgs {
  readonly store?: string | undefined;
  readonly period: PeriodInput;
}

export interface CategoryFigure {
  category: string;
  revenue: number;
  /** Percent of the store's revenue. */
  share_percent: number;
}

export interface StoreFigures {
  store: string;
  region: string;
  is_online: boolean;
  metrics: Metrics;
  previous: Metrics;
  change: MetricChanges;
  /** Percent of the revenue of every store the caller sees. */
  share_of_your_total_percent: number | null;
  /** 1 = highest revenue among the caller's stores. */
  rank: number;
  best_category: CategoryFigure | null;
  weakest_category: CategoryFigure | null;
  top_product: { product_name: string; sku: string; revenue: number } | null;
  insights: string[];
}

export interface StorePerformance {
  period: ResolvedPeriod;
  previous_period: ResolvedPeriod;
  /** Every store the caller sees, together. */
  your_total: Metrics;
  your_store_count: number;
  stores: StoreFigures[];
}

function metricsOnly(group: SalesGroup | undefined): Metrics {
  if (!group) return EMPTY_METRICS;
  const { key: _key, detail: _detail, ...metrics } = group;
  return metrics;
}

function share(part: number, whole: number): number | null {
  return whole === 0 ? null : Math.round((part / whole) * 1000) / 10;
}

export async function storePerformance(scope: Scope, args: StorePerformanceArgs): Promise<StorePerformance> {
  const period = periodOf(scope.refs, args.period);
  const previousPeriod = comparisonPeriod(period, 'previous_period');
  const wanted = resolveStores(scope.refs, args.store === undefined ? undefined : [args.store]) ?? scope.refs.stores;
  const now = await aggregateSales(scope, period, 'store');
  const before = await aggregateSales(scope, previousPeriod, 'store');
  // Revenue per store and category, and each store's best product, in the caller's session like every figure.
  const lines = revenueLines(scope.refs, period);
  const categories = await scope.query(
    `SELECT oi.store_id, c.category_name, sum(oi.amount)
       FROM ${categoryRevenueLines(scope.refs, period)}
       JOIN retail.categories c ON c.category_id = oi.category_id
      WHERE oi.store_id = ANY ($1::int[])
      GROUP BY oi.store_id, c.category_name`,
    [`{${wanted.map((s) => s.id).join(',')}}`],
  );
  // Summed per product id (a product is one SKU); each store's best revenue found by hashing, so only the products
  // at it are sorted by name (sorting thousands of store × product sums was most of this query's time).
  const products = await scope.query(
    `WITH per_product AS MATERIALIZED (
       SELECT oi.store_id, oi.product_id, sum(oi.amount) AS revenue
         FROM ${lines}
        WHERE oi.store_id = ANY ($1::int[])
        GROUP BY oi.store_id, oi.product_id)
     SELECT DISTINCT ON (pp.store_id) pp.store_id, p.product_name, p.sku, pp.revenue
       FROM per_product pp
       JOIN (SELECT store_id, max(revenue) AS revenue FROM per_product GROUP BY store_id) best ON best.store_id = pp.store_id AND best.revenue = pp.revenue
       JOIN retail.products p ON p.product_id = pp.product_id
      ORDER BY pp.store_id, p.product_name, p.sku`,
    [`{${wanted.map((s) => s.id).join(',')}}`],
  );
  const ranking = [...now.groups].sort((a, b) => b.revenue - a.revenue);
  const stores = wanted.map((store): StoreFigures => {
    const metrics = metricsOnly(now.groups.find((g) => g.key === store.name));
    const previous = metricsOnly(before.groups.find((g) => g.key === store.name));
    const perCategory = categories.rows
      .filter((row) => row[0] === store.id)
      .map((row) => ({ category: String(row[1]), revenue: round2(num(row[2])) }))
      .sort((a, b) => b.revenue - a.revenue || a.category.localeCompare(b.category))
      .map((c) => ({ ...c, share_percent: share(c.revenue, metrics.revenue) ?? 0 }));
    const product = products.rows.find((row) => row[0] === store.id);
    const rankIndex = ranking.findIndex((g) => g.key === store.name);
    const figures: StoreFigures = {
      store: store.name,
      region: store.region,
      is_online: store.isOnline,
      metrics,
      previous,
      change: metricChanges(previous, metrics),
      share_of_your_total_percent: share(metrics.revenue, now.totals.revenue),
      rank: rankIndex === -1 ? scope.refs.stores.length : rankIndex + 1,
      best_category: perCategory[0] ?? null,
      weakest_category: perCategory.length > 1 ? perCategory[perCategory.length - 1]! : null,
      top_product: product ? { product_name: String(product[1]), sku: String(product[2]), revenue: round2(num(product[3])) } : null,
      insights: [],
    };
    figures.insights = insightsOf(figures, previousPeriod, now.totals, scope.refs.stores.length);
    return figures;
  });
  return { period, previous_period: previousPeriod, your_total: now.totals, your_store_count: scope.refs.stores.length, stores };
}

/** Plain sentences from the figures: nothing here is estimated or invented. */
function insightsOf(f: StoreFigures, previousPeriod: ResolvedPeriod, yourTotal: Metrics, storeCount: number): string[] {
  if (f.metrics.orders === 0) return [`No sales in this period${f.previous.orders > 0 ? ` (${money(f.previous.revenue)} in ${describePeriod(previousPeriod)})` : ''}.`];
  const insights: string[] = [];
  const pct = f.change.revenue.percent;
  insights.push(
    pct === null
      ? `Revenue ${money(f.metrics.revenue)}; no sales in the previous period (${previousPeriod.from} to ${previousPeriod.to}).`
      : `Revenue ${money(f.metrics.revenue)}, ${pct >= 0 ? 'up' : 'down'} ${Math.abs(pct)}% on the previous period (${previousPeriod.from} to ${previousPeriod.to}, ${money(f.previous.revenue)}).`,
  );
  if (f.best_category) {
    insights.push(
      `Best category: ${f.best_category.category} (${money(f.best_category.revenue)}, ${f.best_category.share_percent}% of the store's revenue)` +
        (f.weakest_category ? `; weakest: ${f.weakest_category.category} (${money(f.weakest_category.revenue)}, ${f.weakest_category.share_percent}%).` : '.'),
    );
  }
  if (storeCount > 1 && f.share_of_your_total_percent !== null) {
    insights.push(`${f.share_of_your_total_percent}% of the revenue of your ${storeCount} stores; ranked ${f.rank} of ${storeCount}.`);
  }
  if (yourTotal.avg_order_value > 0 && storeCount > 1) {
    const diff = percentDiff(f.metrics.avg_order_value, yourTotal.avg_order_value);
    insights.push(`Average order ${money(f.metrics.avg_order_value)}, ${Math.abs(diff)}% ${diff >= 0 ? 'above' : 'below'} the average of your stores (${money(yourTotal.avg_order_value)}).`);
  }
  return insights;
}

function percentDiff(value: number, reference: number): number {
  return Math.round(((value - reference) / reference) * 1000) / 10;
}
