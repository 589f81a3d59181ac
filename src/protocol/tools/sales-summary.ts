// sales_summary(period, group_by?, filters?, limit?): the business layer is src/analytics/sales-summary.ts.
import { z } from 'zod';
import { salesSummary } from '../../analytics/sales-summary.js';
import { money } from '../../analytics/sales.js';
import { runScoped } from '../../analytics/scope.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { FiltersArg, GroupByArg, MetricsShape, metricsText, PeriodArg, PeriodShape, periodText, READ_ONLY, typedAnswer, typedRefusal, cacheByArguments } from './analytics.js';

export const SalesSummaryOutput = z.object({
  period: PeriodShape,
  group_by: GroupByArg,
  filters: z.object({ stores: z.array(z.string()).optional(), categories: z.array(z.string()).optional(), product_types: z.array(z.string()).optional() }),
  stores_covered: z.array(z.string()),
  totals: MetricsShape,
  groups: z.array(MetricsShape.extend({ key: z.string(), detail: z.string().optional().describe('products: SKU; product types: category') })),
  group_count: z.number().int(),
  truncated: z.boolean(),
});

export function registerSalesSummaryTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'sales_summary',
    {
      title: 'Sales summary',
      description:
        'Revenue, orders, units, average order value, gross margin and discounts for a period, for the stores you can see, ' +
        'optionally grouped by store, region, category, product_type, product, month, week or day and filtered by store, ' +
        'category and product type names. Use it instead of SQL for questions like "last quarter\'s sales by category" or ' +
        '"sales by store". Relative periods ("last_quarter", "ytd", ...) are resolved against the data\'s latest order date ' +
        'and the answer shows the exact dates.',
      inputSchema: z.object({
        period: PeriodArg,
        group_by: GroupByArg.default('none').describe('One dimension to group by; "none" for totals only'),
        filters: FiltersArg.optional(),
        limit: z.number().int().min(1).max(500).default(50).describe('Most groups to return (by revenue, or in time order for month/week/day)'),
      }),
      outputSchema: SalesSummaryOutput,
      annotations: READ_ONLY,
      refuse: typedRefusal,
      cache: cacheByArguments,
    },
    async (args, call) =>
        typedAnswer(await runScoped(deps.db, deps.log, 'sales_summary', call.identity, call.signal, (scope) => salesSummary(scope, args)), 'sales by group', (s) => ({
          headline: `Sales ${periodText(s.period)} for ${s.stores_covered.length} store(s): ${metricsText(s.totals)}.` +
            (s.group_by === 'none' ? '' : ` By ${s.group_by}: ${s.groups.length} of ${s.group_count} groups${s.truncated ? ' (raise limit for more)' : ''}.`),
          lines: s.groups.map((g) => `${g.key}${g.detail ? ` (${g.detail})` : ''}: ${money(g.revenue)}, ${g.orders} orders, ${g.units} units, margin ${money(g.gross_margin)}`),
        })),
  );
}
