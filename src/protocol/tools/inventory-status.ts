// inventory_status(store?, category?, below_days_of_cover?): the business layer is src/analytics/inventory-status.ts.
import { z } from 'zod';
import { DEFAULT_RISK_DAYS, inventoryStatus } from '../../analytics/inventory-status.js';
import { runScoped } from '../../analytics/scope.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { PeriodShape, READ_ONLY, typedAnswer, typedRefusal, cacheByArguments } from './analytics.js';
import { text } from './result.js';

export const InventoryStatusOutput = z.object({
  velocity_window: PeriodShape,
  risk_threshold_days: z.number(),
  store: z.string().nullable(),
  category: z.string().nullable(),
  summary: z.object({
    items: z.number().int(),
    total_units_in_stock: z.number().int(),
    out_of_stock: z.number().int(),
    at_risk: z.number().int(),
    not_sold_in_window: z.number().int(),
  }),
  items: z.array(
    z.object({
      store: z.string(),
      product_name: z.string(),
      sku: z.string(),
      category: z.string(),
      stock_level: z.number().int(),
      units_sold: z.number().int(),
      daily_velocity: z.number(),
      days_of_cover: z.number().nullable().describe('stock ÷ daily velocity; null when not sold in the window'),
      at_risk: z.boolean(),
    }),
  ),
  item_count: z.number().int(),
  truncated: z.boolean(),
});

export function registerInventoryStatusTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'inventory_status',
    {
      title: 'Inventory status',
      description:
        'Stock levels in the stores you can see with each product\'s recent sales velocity (units a day over the last ' +
        'velocity_days ending at the latest order date), days of cover at that pace, and the products at risk of running ' +
        `out (fewer than below_days_of_cover days, default ${DEFAULT_RISK_DAYS}). Lowest cover first.`,
      inputSchema: z.object({
        store: text().min(1).max(200).optional().describe('Store name (one of yours); omit for all your stores'),
        category: text().min(1).max(200).optional().describe('Only this category (name)'),
        below_days_of_cover: z.number().positive().max(3650).optional().describe('Only products with fewer days of cover than this'),
        velocity_days: z.number().int().min(7).max(365).default(30).describe('Days of sales the velocity is measured over'),
        limit: z.number().int().min(1).max(500).default(50).describe('Most items to return'),
      }),
      outputSchema: InventoryStatusOutput,
      annotations: READ_ONLY,
      refuse: typedRefusal,
      cache: cacheByArguments,
    },
    async (args, call) =>
        typedAnswer(await runScoped(deps.db, deps.log, 'inventory_status', call.identity, call.signal, (scope) => inventoryStatus(scope, args)), 'stock items', (s) => ({
          headline:
            `Inventory: ${s.summary.items} store-product lines, ${s.summary.total_units_in_stock} units in stock, ${s.summary.out_of_stock} out of stock, ` +
            `${s.summary.at_risk} under ${s.risk_threshold_days} days of cover at the pace of ${s.velocity_window.from} to ${s.velocity_window.to}, ` +
            `${s.summary.not_sold_in_window} not sold in that window. Showing ${s.items.length} of ${s.item_count}.`,
          lines: s.items.map((i) => `${i.store} | ${i.product_name} (${i.sku}): stock ${i.stock_level}, ${i.daily_velocity}/day, ${i.days_of_cover === null ? 'no recent sales' : `${i.days_of_cover} days of cover`}${i.at_risk ? ' AT RISK' : ''}`),
        })),
  );
}
