// seasonality(category?, years?): the business layer is src/analytics/seasonality.ts.
import { z } from 'zod';
import { runScoped } from '../../analytics/scope.js';
import { seasonality } from '../../analytics/seasonality.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { READ_ONLY, typedAnswer, typedRefusal, cacheByArguments } from './analytics.js';
import { text } from './result.js';

export const SeasonalityOutput = z.object({
  years: z.array(z.number().int()),
  stores_covered: z.array(z.string()),
  categories: z.array(
    z.object({
      category: z.string(),
      revenue: z.number(),
      months: z.array(
        z.object({
          month: z.number().int(),
          month_name: z.string(),
          revenue: z.number(),
          index: z.number().describe("revenue ÷ the category's average month (1.00 = average)"),
          expected_index: z.number().nullable().describe('Washington State seasonal multiplier ÷ its mean'),
        }),
      ),
      peak_month: z.string().nullable(),
      low_month: z.string().nullable(),
      correlation_with_expected: z.number().nullable(),
    }),
  ),
});

export function registerSeasonalityTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'seasonality',
    {
      title: 'Seasonality by category',
      description:
        'Each category\'s monthly sales index (a month\'s revenue ÷ the category\'s average month, pooled over the years) ' +
        'beside the expected index from its Washington State seasonal multipliers, with peak and low months, for the stores you can see.',
      inputSchema: z.object({
        category: text().min(1).max(200).optional().describe('Only this category (name); omit for every category'),
        years: z.array(z.number().int().min(1900).max(2200)).max(50).optional().describe('Calendar years to pool; default every whole year of orders'),
      }),
      outputSchema: SeasonalityOutput,
      annotations: READ_ONLY,
      refuse: typedRefusal,
      cache: cacheByArguments,
    },
    async (args, call) =>
        typedAnswer(await runScoped(deps.db, deps.log, 'seasonality', call.identity, call.signal, (scope) => seasonality(scope, args)), 'monthly indexes', (s) => ({
          headline: `Seasonality over ${s.years.join(', ')} for ${s.stores_covered.length} store(s): monthly index per category (1.00 = an average month), actual vs expected.`,
          lines: s.categories.map(
            (c) => `${c.category}: peak ${c.peak_month ?? '-'}, low ${c.low_month ?? '-'}, index ${c.months.map((m) => m.index.toFixed(2)).join(' ')}${c.correlation_with_expected === null ? '' : `, correlation with expected ${c.correlation_with_expected}`}`,
          ),
        })),
  );
}
