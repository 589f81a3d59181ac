// seasonality: each category's monthly sales index (a month's revenue against the category's monthly average)
// beside the expected index from the category's Washington State seasonal multipliers
// (retail.categories.seasonal_multipliers, the figures sales were generated or imported with).
import { categoryRevenueLines } from './sales.js';
import { idArray, InvalidArgumentError, num, resolveCategories, round2, type Scope } from './scope.js';

export interface SeasonalityArgs {
  readonly category?: string | undefined;
  /** Calendar years to pool; default every whole year of orders the caller sees. */
  readonly years?: number[] | undefined;
}

export interface MonthIndex {
  month: number;
  month_name: string;
  revenue: number;
  /** Revenue ÷ the category's average month over the years, two decimals (1.00 = an average month). */
  index: number;
  /** The seasonal multiplier ÷ the multipliers' mean, two decimals; null when the category has none. */
  expected_index: number | null;
}

export interface CategorySeasonality {
  category: string;
  revenue: number;
  months: MonthIndex[];
  peak_month: string | null;
  low_month: string | null;
  /** Pearson correlation of index and expected index, two decimals; null without multipliers or sales. */
  correlation_with_expected: number | null;
}

export interface Seasonality {
  years: number[];
  stores_covered: string[];
  categories: CategorySeasonality[];
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Whole years of orders from first to last: a year the data starts after January or ends before December is partial. */
export function wholeYears(first: string, last: string): number[] {
  const from = Number(first.slice(0, 4)) + (first.slice(5, 10) === '01-01' ? 0 : 1);
  const to = Number(last.slice(0, 4)) - (last.slice(5, 10) === '12-31' ? 0 : 1);
  const years: number[] = [];
  for (let year = from; year <= to; year++) years.push(year);
  return years;
}

function correlation(xs: number[], ys: number[]): number | null {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? null : Math.round((sxy / Math.sqrt(sxx * syy)) * 100) / 100;
}

export async function seasonality(scope: Scope, args: SeasonalityArgs): Promise<Seasonality> {
  const { firstOrder, lastOrder } = scope.refs;
  if (!firstOrder || !lastOrder) throw new InvalidArgumentError('you have no orders, so there is no seasonality to report.');
  const available: number[] = [];
  for (let year = Number(firstOrder.slice(0, 4)); year <= Number(lastOrder.slice(0, 4)); year++) available.push(year);
  let years: number[];
  if (args.years && args.years.length > 0) {
    years = [...new Set(args.years)].sort((a, b) => a - b);
    const missing = years.filter((year) => !available.includes(year));
    if (missing.length > 0) throw new InvalidArgumentError(`no orders in ${missing.join(', ')}. Years with orders: ${available.join(', ')}.`);
  } else {
    const whole = wholeYears(firstOrder, lastOrder);
    years = whole.length > 0 ? whole : available;
  }
  const categories = resolveCategories(scope.refs, args.category === undefined ? undefined : [args.category]);
  // Whole years are whole months: the roll-up answers them while it is fresh.
  const span = { name: 'years', from: `${years[0]!}-01-01`, to: `${years[years.length - 1]!}-12-31`, days: (years[years.length - 1]! - years[0]! + 1) * 365, anchor: lastOrder };
  const sales = await scope.query(
    `SELECT oi.category_id, extract(month FROM oi.day)::int, sum(oi.amount)
       FROM ${categoryRevenueLines(scope.refs, span)}
      WHERE extract(year FROM oi.day)::int = ANY ($1::int[])
        AND ($2::int[] IS NULL OR oi.category_id = ANY ($2::int[]))
      GROUP BY 1, 2`,
    [`{${years.join(',')}}`, idArray(categories)],
  );
  const multipliers = await scope.query(
    `SELECT category_id, seasonal_multipliers FROM retail.categories WHERE ($1::int[] IS NULL OR category_id = ANY ($1::int[]))`,
    [idArray(categories)],
  );
  const expectedOf = new Map(multipliers.rows.map((row) => [Number(row[0]), Array.isArray(row[1]) ? (row[1] as unknown[]).map(Number) : null]));
  const result: CategorySeasonality[] = [];
  for (const category of categories ?? scope.refs.categories) {
    const monthly = Array.from({ length: 12 }, () => 0);
    for (const row of sales.rows) if (Number(row[0]) === category.id) monthly[Number(row[1]) - 1] = num(row[2]);
    const total = monthly.reduce((a, b) => a + b, 0);
    const multiplier = expectedOf.get(category.id) ?? null;
    const mean = multiplier ? multiplier.reduce((a, b) => a + b, 0) / 12 : 0;
    const months = monthly.map((revenue, i) => ({
      month: i + 1,
      month_name: MONTHS[i]!,
      revenue: round2(revenue),
      index: total === 0 ? 0 : round2(revenue / (total / 12)),
      expected_index: multiplier && mean > 0 ? round2(multiplier[i]! / mean) : null,
    }));
    const byRevenue = [...months].sort((a, b) => b.revenue - a.revenue || a.month - b.month);
    result.push({
      category: category.name,
      revenue: round2(total),
      months,
      peak_month: total === 0 ? null : byRevenue[0]!.month_name,
      low_month: total === 0 ? null : byRevenue[11]!.month_name,
      correlation_with_expected:
        total === 0 || !multiplier ? null : correlation(months.map((m) => m.index), months.map((m) => m.expected_index ?? 0)),
    });
  }
  result.sort((a, b) => b.revenue - a.revenue || a.category.localeCompare(b.category));
  return { years, stores_covered: scope.refs.stores.map((s) => s.name), categories: result };
}
