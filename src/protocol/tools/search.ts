// semantic_search_products: products ranked by similarity to a description. Served by the search module
// (src/search) when it is plugged in; until then a clear "not available yet".
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { markAsData, toJson } from '../../analytics/format.js';
import type { Caller, ServerDeps } from '../context.js';
import { toolError } from './result.js';

export function registerSearchTool(server: McpServer, deps: ServerDeps, caller: Caller): void {
  server.registerTool(
    'semantic_search_products',
    {
      title: 'Find products by meaning',
      description:
        'Find Zava Retail products whose descriptions are similar in meaning to a description in plain words ' +
        '(e.g. "containers for paint", "something to cut tree branches"), ranked by similarity, each with a ' +
        'similarity percentage. Use it when the user describes a product instead of naming it; then use the exact ' +
        'product names it returns in SQL. Never show product IDs to the user.',
      inputSchema: {
        query_description: z.string().min(1).max(2000).describe('What the products are or do, in plain words'),
        max_rows: z.number().int().min(1).max(100).default(20).describe('Most products to return (1–100, default 20)'),
        similarity_threshold: z
          .number()
          .min(20)
          .max(80)
          .default(30)
          .describe('Least similarity, in percent (20–80, default 30); lower finds more, looser matches'),
      },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ query_description, max_rows, similarity_threshold }) =>
      deps.inFlight.run(async () => {
        if (!deps.search) {
          return toolError(
            'semantic_search_products is not available yet in this build of zava-mcp. Use execute_sales_query with ' +
              'ILIKE filters on retail.products.product_name and product_description instead.',
          );
        }
        const answer = await deps.search.search(caller.userId, {
          queryDescription: query_description,
          maxRows: max_rows,
          similarityThreshold: similarity_threshold,
        });
        return {
          content: [{ type: 'text' as const, text: markAsData(answer.text || toJson(answer.result), 'search result') }],
          ...(answer.isError ? { isError: true } : {}),
        };
      }),
  );
}
