// store_performance(store?, period): the business layer is src/analytics/store-performance.ts.
import { z } from 'zod';
import { runScoped } from '../../analytics/scope.js';
import { storePerformance } from '../../analytics/store-performance.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { MetricChangesShape, MetricsShape, metricsText, PeriodArg, PeriodShape, periodText, READ_ONLY, typedAnswer, typedRefusal, cacheByArguments } from './analytics.js';
import { text } from './result.js';

const CategoryFigure = z.object({ category: z.string(), revenue: z.number(), share_percent: z.number() }).nullable();

export const StorePerformanceOutput = z.object({
  period: PeriodShape,
  previous_period: PeriodShape,
  your_total: MetricsShape,
  your_store_count: z.number().int(),
  stores: z.array(
    z.object({
      store: z.string(),
      region: z.string(),
      is_online: z.boolean(),
      metrics: MetricsShape,
      previous: MetricsShape,
      change: MetricChangesShape,
      share_of_your_total_percent: z.number().nullable(),
      rank: z.number().int(),
      best_category: CategoryFigure,
      weakest_category: CategoryFigure,
      top_product: z.object({ product_name: z.string(), sku: z.string(), revenue: z.number() }).nullable(),
      insights: z.array(z.string()),
    }),
  ),
});

export function registerStorePerformanceTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'store_performance',
    {
      title: 'Store performance',
      description:
        'A store\'s performance in a period: its metrics, the change on the previous period, its share of your stores\' ' +
        'revenue and rank, best and weakest category, top product, and a few plain insights computed from these figures. ' +
        'Without store: every store you can see.',
      inputSchema: z.object({
        store: text().min(1).max(200).optional().describe('Store name (one of yours); omit for all your stores'),
        period: PeriodArg,
      }),
      outputSchema: StorePerformanceOutput,
      annotations: READ_ONLY,
      refuse: typedRefusal,
      cache: cacheByArguments,
    },
    async (args, call) =>
        typedAnswer(await runScoped(deps.db, deps.log, 'store_performance', call.identity, call.signal, (scope) => storePerformance(scope, args)), 'store insights', (p) => ({
          headline: `Store performance ${periodText(p.period)}, against ${p.previous_period.from} to ${p.previous_period.to}. Your ${p.your_store_count} store(s) together: ${metricsText(p.your_total)}.`,
          lines: p.stores.flatMap((s) => [`${s.store} (${s.region}):`, ...s.insights.map((insight) => `  ${insight}`)]),
        })),
  );
}
