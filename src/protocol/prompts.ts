// MCP prompts: the reference system's sample questions, with arguments, each expanding to instructions that steer
// the model to the typed analytics tools first and to SQL only when they cannot answer; and argument completion
// (completion/complete) for their store, category, product type and period arguments and the schema template's
// table, from the database and limited to the caller's identity.
//
// Completion is served by our own handler, not the SDK's `completable()`: the SDK calls a completer with the
// value and the other arguments only, without the request context, so it could not know who is asking.
import type { McpServer, ServerContext } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { completionValues, MAX_COMPLETIONS, type CompletionKind } from '../analytics/completions.js';
import type { Caller, ServerDeps } from './context.js';
import { identityOrNone, SCHEMA_URI_TEMPLATE } from './resources.js';

const FALLBACK =
  'Only if the typed tools cannot answer the question, call get_multiple_table_schemas for the tables you need and then ' +
  'execute_sales_query with one SELECT. Report the resolved dates the tools return (for example "last quarter = 2026-07-01 to 2026-09-30"), ' +
  'show names, never IDs, and say so when an answer is empty or an error.';

function optional(description: string) {
  return z.string().max(200).optional().describe(description);
}

function user(text: string) {
  return { messages: [{ role: 'user' as const, content: { type: 'text' as const, text } }] };
}

/** Prompt name → argument name → what completes it. */
export const PROMPT_COMPLETIONS: Readonly<Record<string, Readonly<Record<string, CompletionKind>>>> = {
  top_products_by_revenue: { period: 'period', category: 'category', store: 'store' },
  sales_by_store: { period: 'period' },
  sales_by_category: { period: 'period', store: 'store' },
  sales_trend: { period: 'period', store: 'store', category: 'category', product_type: 'product_type' },
  similar_products: {},
};

const quoted = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : JSON.stringify(value.trim()));

export function registerPrompts(server: McpServer, deps: ServerDeps, caller: Caller): void {
  server.registerPrompt(
    'top_products_by_revenue',
    {
      title: 'Show top products by sales revenue',
      description: 'The sample question "Show top 20 products by sales revenue", with the number of products and the period.',
      argsSchema: z.object({
        limit: optional('How many products (default 20)'),
        period: optional('The period, e.g. all_time, last_quarter, ytd, 2025 (default all_time)'),
        category: optional('Only this category'),
        store: optional('Only this store (one of yours)'),
      }),
    },
    ({ limit, period, category, store }) => {
      const n = Math.min(100, Math.max(1, Number.parseInt(limit ?? '20', 10) || 20));
      const p = period?.trim() || 'all_time';
      const args = [`"period": ${JSON.stringify(p)}`, '"by": "revenue"', `"limit": ${n}`, ...(quoted(category) ? [`"category": ${quoted(category)}`] : []), ...(quoted(store) ? [`"store": ${quoted(store)}`] : [])];
      return user(`Show the top ${n} products by sales revenue (${p}). Call the top_products tool first with {${args.join(', ')}} and present the ranking as a table of product name, revenue, units and gross margin. ${FALLBACK}`);
    },
  );

  server.registerPrompt(
    'sales_by_store',
    {
      title: 'Show sales by store',
      description: 'The sample question "Show sales by store", for a period.',
      argsSchema: z.object({ period: optional('The period (default all_time)') }),
    },
    ({ period }) => {
      const p = period?.trim() || 'all_time';
      return user(
        `Show sales by store (${p}). Call sales_summary with {"period": ${JSON.stringify(p)}, "group_by": "store"} and present revenue, orders, average order value and gross margin per store; ` +
          `for a closer look at one store, store_performance gives its trend and insights. ${FALLBACK}`,
      );
    },
  );

  server.registerPrompt(
    'sales_by_category',
    {
      title: "What were the last quarter's sales by category?",
      description: 'The sample question "What were the last quarter\'s sales by category?", for any period and optionally one store.',
      argsSchema: z.object({ period: optional('The period (default last_quarter)'), store: optional('Only this store (one of yours)') }),
    },
    ({ period, store }) => {
      const p = period?.trim() || 'last_quarter';
      const filters = quoted(store) ? `, "filters": {"stores": [${quoted(store)}]}` : '';
      return user(
        `What were the sales by category for ${p === 'last_quarter' ? 'the last quarter' : p}? Call sales_summary with {"period": ${JSON.stringify(p)}, "group_by": "category"${filters}}; ` +
          `it resolves the period against the data's latest order date and returns the dates it used: state them. To compare with the quarter before, ` +
          `use compare_periods with {"current": ${JSON.stringify(p)}, "group_by": "category"}. ${FALLBACK}`,
      );
    },
  );

  server.registerPrompt(
    'sales_trend',
    {
      title: 'How did sales develop month by month?',
      description: 'Monthly sales for a period, optionally for one store, category or product type.',
      argsSchema: z.object({
        period: optional('The period (default last_12_months)'),
        store: optional('Only this store (one of yours)'),
        category: optional('Only this category'),
        product_type: optional('Only this product type'),
      }),
    },
    ({ period, store, category, product_type }) => {
      const p = period?.trim() || 'last_12_months';
      const filters = [
        ...(quoted(store) ? [`"stores": [${quoted(store)}]`] : []),
        ...(quoted(category) ? [`"categories": [${quoted(category)}]`] : []),
        ...(quoted(product_type) ? [`"product_types": [${quoted(product_type)}]`] : []),
      ];
      return user(
        `How did sales develop month by month (${p})? Call sales_summary with {"period": ${JSON.stringify(p)}, "group_by": "month"${filters.length ? `, "filters": {${filters.join(', ')}}` : ''}} ` +
          `and describe the trend; for seasonal patterns across years, use seasonality. ${FALLBACK}`,
      );
    },
  );

  server.registerPrompt(
    'similar_products',
    {
      title: 'What products do we sell that are similar to …?',
      description: 'The sample question "What products do we sell that are similar to \'containers for paint\'?".',
      argsSchema: z.object({ description: z.string().min(1).max(1000).describe('What the products are or do, e.g. "containers for paint"') }),
    },
    ({ description }) =>
      user(
        `What products do we sell that are similar to ${JSON.stringify(description)}? Call semantic_search_products with {"query_description": ${JSON.stringify(description)}} ` +
          `(the description alone, not the whole question) and list the products with their similarity. For their sales, call top_products or sales_summary ` +
          `with the exact category names the search returns. ${FALLBACK}`,
      ),
  );

  registerCompletions(server, deps, caller);
}

/** completion/complete for the prompts' arguments and the schema template's {table}, per caller. */
function registerCompletions(server: McpServer, deps: ServerDeps, caller: Caller): void {
  server.server.registerCapabilities({ completions: {} });
  server.server.setRequestHandler('completion/complete', async (request, ctx: ServerContext) => {
    const { ref, argument } = request.params;
    let kind: CompletionKind | undefined;
    // An argument, prompt or template we do not complete gets no values (the specification allows empty
    // completions; the conformance suite asks about a fixture prompt this server does not have).
    if (ref.type === 'ref/prompt') {
      const args = Object.hasOwn(PROMPT_COMPLETIONS, ref.name) ? PROMPT_COMPLETIONS[ref.name]! : {};
      kind = Object.hasOwn(args, argument.name) ? args[argument.name] : undefined;
    }
    else if (ref.type === 'ref/resource' && ref.uri === SCHEMA_URI_TEMPLATE && argument.name === 'table') kind = 'table';
    if (!kind) return { completion: { values: [], hasMore: false } };
    const identity = await identityOrNone(deps, caller, ctx);
    // No identity, no names: completion must not reveal what the tools would refuse.
    if (!identity) return { completion: { values: [], hasMore: false } };
    const values = await completionValues(deps.db, identity, kind, argument.value);
    return { completion: { values: values.slice(0, MAX_COMPLETIONS), total: values.length, hasMore: values.length > MAX_COMPLETIONS } };
  });
}
