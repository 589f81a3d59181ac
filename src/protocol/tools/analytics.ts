// What the typed analytics tools share at the protocol edge: the argument shapes (periods, names, group_by),
// the output shapes of periods and metrics, and one way to answer — structuredContent matching the declared
// outputSchema, plus a short text whose retailer-supplied names sit between data markers.
import type { CallToolResult } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { markAsData } from '../../analytics/format.js';
import { RELATIVE_PERIODS, type ResolvedPeriod } from '../../analytics/periods.js';
import { GROUP_BY, money, type Metrics } from '../../analytics/sales.js';
import type { Outcome } from '../../analytics/scope.js';
import type { ToolErrorCode } from '../../infra/errors.js';
import { text } from './result.js';

/** The typed tools' answers depend on their arguments, the caller's scope and the data only: cached by arguments. */
export const cacheByArguments = (args: unknown): unknown => args;

export const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

const ISO_DATE = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD');

export const PERIOD_HELP =
  `Relative names are resolved against the latest order date you can see (not today's date) and the answer shows the resolved dates: ` +
  `${RELATIVE_PERIODS.join(', ')}. Also a year "2025", a quarter "2025-Q3", a month "2025-07", or {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"} (inclusive).`;

export const PeriodArg = z
  .union([text().min(1).max(40), z.object({ from: ISO_DATE, to: ISO_DATE })])
  .describe(`The period. ${PERIOD_HELP}`);

export const NameList = (what: string) => z.array(text().min(1).max(200)).max(50).describe(`${what} names, exactly or by their last words ("Seattle")`);

export const GroupByArg = z.enum(GROUP_BY);

export const FiltersArg = z
  .object({ stores: NameList('Store').optional(), categories: NameList('Category').optional(), product_types: NameList('Product type').optional() })
  .describe('Optional filters by name; unknown names are refused with the valid ones');

export const PeriodShape = z.object({
  name: z.string().describe('the relative name or label asked for, or "custom"'),
  from: z.string().describe('first day, inclusive (YYYY-MM-DD)'),
  to: z.string().describe('last day, inclusive (YYYY-MM-DD)'),
  days: z.number().int(),
  anchor: z.string().describe('the latest order date you can see, which relative names were resolved against'),
});

export const MetricsShape = z.object({
  revenue: z.number().describe('sum of order_items.total_amount (after discounts), dollars'),
  orders: z.number().int().describe('distinct orders'),
  units: z.number().int().describe('items sold (quantity)'),
  avg_order_value: z.number().describe('revenue ÷ orders'),
  gross_margin: z.number().describe('revenue − quantity × product cost'),
  gross_margin_percent: z.number().nullable().describe('gross margin ÷ revenue, percent; null without revenue'),
  discount: z.number().describe('discounts given (order_items.discount_amount)'),
});

export const ChangeShape = z.object({ absolute: z.number(), percent: z.number().nullable().describe('null when the previous value was 0') });

export const MetricChangesShape = z.object({
  revenue: ChangeShape,
  orders: ChangeShape,
  units: ChangeShape,
  gross_margin: ChangeShape,
  avg_order_value: ChangeShape,
});

/** "2026-10-01 to 2026-12-31 (last_quarter, resolved against your latest order date 2026-12-31)". */
export function periodText(p: ResolvedPeriod): string {
  return p.name === 'custom' ? `${p.from} to ${p.to}` : `${p.from} to ${p.to} (${p.name}, resolved against your latest order date ${p.anchor})`;
}

export function metricsText(m: Metrics): string {
  return (
    `revenue ${money(m.revenue)}, ${m.orders} orders, ${m.units} units, average order ${money(m.avg_order_value)}, ` +
    `gross margin ${money(m.gross_margin)}${m.gross_margin_percent === null ? '' : ` (${m.gross_margin_percent}%)`}, discounts ${money(m.discount)}`
  );
}

/**
 * A typed tool's answer. The headline is ours (figures, dates); the lines carry store, category and product
 * names the retailer supplies, so they go between per-call data markers like query results.
 */
export function typedAnswer<T>(outcome: Outcome<T>, label: string, render: (value: T) => { headline: string; lines: string[] }): CallToolResult {
  if (!outcome.ok) return typedRefusal(undefined, outcome.message, outcome.code);
  const { headline, lines } = render(outcome.value);
  const body = lines.length > 0 ? `${headline}\n${markAsData(lines.join('\n'), label)}` : headline;
  return { content: [{ type: 'text', text: body }], structuredContent: outcome.value as unknown as Record<string, unknown> };
}

/**
 * A typed tool's refusal or failure: the message with its stable code, as text and in `_meta`, and no
 * structuredContent — 2025-era clients (the v1 SDK, VS Code) validate any structuredContent against the tool's
 * outputSchema even on errors, and an error cannot fill a period, totals or groups.
 */
export function typedRefusal(_args: unknown, message: string, code: ToolErrorCode): CallToolResult {
  return { content: [{ type: 'text', text: `${message} [${code}]` }], isError: true, _meta: { 'zava/code': code } };
}
