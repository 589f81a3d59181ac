// compare_periods(current, previous?, group_by?, filters?): the business layer is src/analytics/compare-periods.ts.
import { z } from 'zod';
import { COMPARISONS, comparePeriods } from '../../analytics/compare-periods.js';
import { money } from '../../analytics/sales.js';
import { runScoped } from '../../analytics/scope.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { ChangeShape, FiltersArg, MetricChangesShape, MetricsShape, PERIOD_HELP, PeriodArg, PeriodShape, periodText, READ_ONLY, typedAnswer, typedRefusal, cacheByArguments } from './analytics.js';
import { text } from './result.js';

const COMPARE_GROUPS = ['none', 'store', 'region', 'category', 'product_type', 'product'] as const;

export const ComparePeriodsOutput = z.object({
  current: PeriodShape,
  previous: PeriodShape,
  group_by: z.enum(COMPARE_GROUPS),
  stores_covered: z.array(z.string()),
  totals: z.object({ current: MetricsShape, previous: MetricsShape, change: MetricChangesShape }),
  groups: z.array(
    z.object({
      key: z.string(),
      detail: z.string().optional(),
      current_revenue: z.number(),
      previous_revenue: z.number(),
      revenue_change: ChangeShape,
      current_orders: z.number().int(),
      previous_orders: z.number().int(),
      current_units: z.number().int(),
      previous_units: z.number().int(),
      share_of_change_percent: z.number().nullable().describe("this group's part of the total revenue change, percent"),
    }),
  ),
  group_count: z.number().int(),
  drivers: z.object({ gains: z.array(z.string()), losses: z.array(z.string()) }),
});

export function registerComparePeriodsTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'compare_periods',
    {
      title: 'Compare two periods',
      description:
        'Compare sales in two periods for the stores you can see: each metric\'s absolute and percent change, per group ' +
        '(store, region, category, product_type or product), and which groups drove the change. Groups come largest change first.',
      inputSchema: z.object({
        current: PeriodArg,
        previous: z
          .union([z.enum(COMPARISONS), text().min(1).max(40), z.object({ from: z.string(), to: z.string() })])
          .default('previous_period')
          .describe(`"previous_period" (the period just before, same length; whole months, quarters and years stay whole), "same_period_last_year", or a period. ${PERIOD_HELP}`),
        group_by: z.enum(COMPARE_GROUPS).default('none'),
        filters: FiltersArg.optional(),
        limit: z.number().int().min(1).max(500).default(50).describe('Most groups to return'),
      }),
      outputSchema: ComparePeriodsOutput,
      annotations: READ_ONLY,
      refuse: typedRefusal,
      cache: cacheByArguments,
    },
    async (args, call) =>
        typedAnswer(await runScoped(deps.db, deps.log, 'compare_periods', call.identity, call.signal, (scope) => comparePeriods(scope, args)), 'change by group', (c) => {
          const r = c.totals.change.revenue;
          return {
            headline:
              `Revenue ${money(c.totals.current.revenue)} in ${periodText(c.current)} against ${money(c.totals.previous.revenue)} in ${c.previous.from} to ${c.previous.to}: ` +
              `${r.absolute >= 0 ? '+' : ''}${money(r.absolute).replace('$-', '-$')}${r.percent === null ? '' : ` (${r.percent >= 0 ? '+' : ''}${r.percent}%)`}; ` +
              `orders ${c.totals.previous.orders} → ${c.totals.current.orders}.`,
            lines: [
              ...(c.drivers.gains.length ? [`Largest gains: ${c.drivers.gains.join('; ')}`] : []),
              ...(c.drivers.losses.length ? [`Largest losses: ${c.drivers.losses.join('; ')}`] : []),
              ...c.groups.map((g) => `${g.key}${g.detail ? ` (${g.detail})` : ''}: ${money(g.previous_revenue)} → ${money(g.current_revenue)}${g.revenue_change.percent === null ? '' : ` (${g.revenue_change.percent}%)`}`),
            ],
          };
        }),
  );
}
