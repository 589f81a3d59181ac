// top_products(period, by, limit, category?, store?): the business layer is src/analytics/top-products.ts.
import { z } from 'zod';
import { money } from '../../analytics/sales.js';
import { runScoped } from '../../analytics/scope.js';
import { RANK_BY, topProducts } from '../../analytics/top-products.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { MetricsShape, PeriodArg, PeriodShape, periodText, READ_ONLY, typedAnswer, typedRefusal, cacheByArguments } from './analytics.js';
import { text } from './result.js';

export const TopProductsOutput = z.object({
  period: PeriodShape,
  by: z.enum(RANK_BY),
  category: z.string().nullable(),
  store: z.string().nullable(),
  stores_covered: z.array(z.string()),
  products: z.array(MetricsShape.extend({ rank: z.number().int(), product_name: z.string(), sku: z.string() })),
  products_sold: z.number().int().describe('products sold in the period under the filters, before the limit'),
});

export function registerTopProductsTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'top_products',
    {
      title: 'Top products',
      description:
        'The best-selling products of a period, ranked by revenue, units or gross margin, for the stores you can see, ' +
        'optionally in one category and one store. Use it for "top 20 products by sales revenue".',
      inputSchema: z.object({
        period: PeriodArg,
        by: z.enum(RANK_BY).default('revenue').describe('Rank by revenue, units sold or gross margin'),
        limit: z.number().int().min(1).max(100).default(10).describe('How many products (1-100)'),
        category: text().min(1).max(200).optional().describe('Only this category (name)'),
        store: text().min(1).max(200).optional().describe('Only this store (name; one of yours)'),
      }),
      outputSchema: TopProductsOutput,
      annotations: READ_ONLY,
      refuse: typedRefusal,
      cache: cacheByArguments,
    },
    async (args, call) =>
        typedAnswer(await runScoped(deps.db, deps.log, 'top_products', call.identity, call.signal, (scope) => topProducts(scope, args)), 'ranked products', (t) => ({
          headline: `Top ${t.products.length} of ${t.products_sold} products by ${t.by}, ${periodText(t.period)}, ${t.store ? 'one store' : `${t.stores_covered.length} store(s)`}${t.category ? ', one category' : ''}.`,
          lines: t.products.map((p) => `${p.rank}. ${p.product_name} (${p.sku}): ${money(p.revenue)}, ${p.units} units, margin ${money(p.gross_margin)}`),
        })),
  );
}
