// semantic_search_products: products ranked by similarity to a description, under the caller's identity
// (src/analytics/product-search.ts over src/search). Answers in the compact shape of execute_sales_query.
import { z } from 'zod';
import { compactError } from '../../analytics/format.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { compactAnswer, text } from './result.js';

export const SearchResultShape = z.object({
  c: z.array(z.string()).describe('column names: product_name, sku, category_name, type_name, base_price, similarity_percent, stock_level (one-store managers only), match, product_description'),
  r: z.array(z.array(z.unknown())).describe('products, best match first, each an array of values in column order'),
  n: z.number().int().describe('number of products returned'),
  msg: z.string().optional().describe('"No rows" when no product matched'),
  note: z.string().optional().describe('how to find more when nothing matched'),
  err: z.string().optional().describe('what went wrong, when the search failed or was refused'),
  code: z.string().optional().describe('stable error code, when err is set'),
  q: z.string().optional().describe('the description of the failed search'),
});

export function registerSearchTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'semantic_search_products',
    {
      title: 'Find products by meaning',
      description:
        'Find Zava Retail products similar in meaning to a description in plain words (e.g. "containers for paint", ' +
        '"something to cut tree branches", "15 amp circuit breaker"), ranked by similarity. Pass the description ' +
        'itself, not the whole question: for "what do we sell that is similar to \'containers for paint\'?" pass ' +
        '"containers for paint". Answers compact JSON {"c":[columns],"r":[[row values]],"n":row count} with ' +
        'product_name, sku, category_name, type_name, base_price, similarity_percent (0-100: how well the product ' +
        'matches, discounted when the description has words the catalog does not know; it never rises down the ' +
        'list), stock_level (only for ' +
        'a manager of exactly one store: that store\'s stock), match (semantic, text, both or sku) and ' +
        'product_description; {"c":[],"r":[],"n":0,"msg":"No rows"} when nothing matches (try other words or a ' +
        'lower similarity_threshold); {"err":"...","q":"...","c":[],"r":[],"n":0} on error. Use it when the user ' +
        'describes a product instead of naming it, then use the exact product names it returns in SQL. Never show ' +
        'IDs to the user.',
      inputSchema: z.object({
        query_description: text().min(1).max(1000).describe('What the products are or do, in a few plain words, e.g. "containers for paint"'),
        max_rows: z.number().int().min(1).max(100).default(20).describe('Most products to return (1–100, default 20)'),
        similarity_threshold: z
          .number()
          .min(20)
          .max(80)
          .default(30)
          .describe('Least similarity, in percent (20–80, default 30); lower finds more, looser matches'),
      }),
      outputSchema: SearchResultShape,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      refuse: ({ query_description }, message, code) => compactAnswer({ result: compactError(message, query_description, code), isError: true }, 'search'),
      // The ranking depends on the description, the limits, the caller's scope, the data (embeddings included)
      // and the embedding provider.
      cache: (args) => (deps.search ? { ...args, provider: deps.search.cacheScope } : undefined),
    },
    async ({ query_description, max_rows, similarity_threshold }, call) => {
      if (!deps.search) {
        const message =
          'semantic_search_products is not configured on this server. Use execute_sales_query with ILIKE filters on ' +
          'retail.products.product_name and product_description instead.';
        return compactAnswer({ result: compactError(message, query_description, 'INTERNAL_ERROR'), isError: true }, 'search');
      }
      const outcome = await deps.search.search(
        call.identity,
        { queryDescription: query_description, maxRows: max_rows, similarityThreshold: similarity_threshold },
        call.signal,
      );
      return compactAnswer(outcome, 'search');
    },
  );
}
