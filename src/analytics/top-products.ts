// top_products: the best-selling products of a period by revenue, units or gross margin, optionally in one
// category and one store.
import type { PeriodInput, ResolvedPeriod } from './periods.js';
import { aggregateSales, type Metrics } from './sales.js';
import { periodOf, resolveCategories, resolveStores, type Scope } from './scope.js';

export const RANK_BY = ['revenue', 'units', 'margin'] as const;
export type RankBy = (typeof RANK_BY)[number];

export interface TopProductsArgs {
  readonly period: PeriodInput;
  readonly by?: RankBy | undefined;
  readonly limit?: number | undefined;
  readonly category?: string | undefined;
  readonly store?: string | undefined;
}

export interface RankedProduct extends Metrics {
  rank: number;
  product_name: string;
  sku: string;
}

export interface TopProducts {
  period: ResolvedPeriod;
  by: RankBy;
  category: string | null;
  store: string | null;
  stores_covered: string[];
  products: RankedProduct[];
  /** Products sold in the period under the filters, before the limit. */
  products_sold: number;
}

const METRIC: Record<RankBy, keyof Metrics> = { revenue: 'revenue', units: 'units', margin: 'gross_margin' };

export async function topProducts(scope: Scope, args: TopProductsArgs): Promise<TopProducts> {
  const period = periodOf(scope.refs, args.period);
  const stores = resolveStores(scope.refs, args.store === undefined ? undefined : [args.store]);
  const categories = resolveCategories(scope.refs, args.category === undefined ? undefined : [args.category]);
  const by = args.by ?? 'revenue';
  const { groups } = await aggregateSales(scope, period, 'product', { stores, categories });
  const metric = METRIC[by];
  // Ties broken by revenue, then name and SKU, so the ranking is the same on every backend and every call.
  const ranked = [...groups].sort(
    (a, b) => Number(b[metric]) - Number(a[metric]) || b.revenue - a.revenue || a.key.localeCompare(b.key) || (a.detail ?? '').localeCompare(b.detail ?? ''),
  );
  return {
    period,
    by,
    category: categories?.[0]?.name ?? null,
    store: stores?.[0]?.name ?? null,
    stores_covered: (stores ?? scope.refs.stores).map((s) => s.name),
    products: ranked.slice(0, args.limit ?? 10).map(({ key, detail, ...metrics }, i) => ({ rank: i + 1, product_name: key, sku: detail ?? '', ...metrics })),
    products_sold: groups.length,
  };
}
