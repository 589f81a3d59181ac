// sales_summary: revenue, orders, units, average order value, gross margin and discount for a period, optionally
// grouped by one dimension and filtered by store, category and product type names.
import type { PeriodInput, ResolvedPeriod } from './periods.js';
import { aggregateSales, type GroupBy, type Metrics, type SalesGroup } from './sales.js';
import { periodOf, resolveCategories, resolveStores, resolveTypes, type Scope } from './scope.js';

export interface SalesSummaryArgs {
  readonly period: PeriodInput;
  readonly group_by?: GroupBy | undefined;
  readonly filters?: { stores?: string[] | undefined; categories?: string[] | undefined; product_types?: string[] | undefined } | undefined;
  readonly limit?: number | undefined;
}

export interface SalesSummary {
  period: ResolvedPeriod;
  group_by: GroupBy;
  /** The filters as resolved (exact names); absent ones are not filtered. */
  filters: { stores?: string[]; categories?: string[]; product_types?: string[] };
  /** The stores the figures cover: the filter, or every store the caller sees. */
  stores_covered: string[];
  totals: Metrics;
  groups: SalesGroup[];
  /** Groups in all, before the limit. */
  group_count: number;
  truncated: boolean;
}

export const DEFAULT_GROUP_LIMIT = 50;

export async function salesSummary(scope: Scope, args: SalesSummaryArgs): Promise<SalesSummary> {
  const period = periodOf(scope.refs, args.period);
  const stores = resolveStores(scope.refs, args.filters?.stores);
  const categories = resolveCategories(scope.refs, args.filters?.categories);
  const types = resolveTypes(scope.refs, args.filters?.product_types);
  const groupBy = args.group_by ?? 'none';
  const { totals, groups } = await aggregateSales(scope, period, groupBy, { stores, categories, types });
  const limit = args.limit ?? DEFAULT_GROUP_LIMIT;
  return {
    period,
    group_by: groupBy,
    filters: {
      ...(stores ? { stores: stores.map((s) => s.name) } : {}),
      ...(categories ? { categories: categories.map((c) => c.name) } : {}),
      ...(types ? { product_types: [...new Set(types.map((t) => t.name))] } : {}),
    },
    stores_covered: (stores ?? scope.refs.stores).map((s) => s.name),
    totals,
    groups: groups.slice(0, limit),
    group_count: groups.length,
    truncated: groups.length > limit,
  };
}
