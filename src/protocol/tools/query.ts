// execute_sales_query(postgresql_query): one read-only query under the caller's RLS context.
import { z } from 'zod';
import { compactError } from '../../analytics/format.js';
import type { ServerDeps } from '../context.js';
import { registerTool, type ToolHost } from '../pipeline.js';
import { DATA_GUIDANCE } from './guidance.js';
import { compactAnswer, text } from './result.js';

export const CompactResultShape = z.object({
  c: z.array(z.string()).describe('column names'),
  r: z.array(z.array(z.unknown())).describe('rows, each an array of values in column order'),
  n: z.number().int().describe('number of rows returned'),
  msg: z.string().optional().describe('"No rows" when the query matched nothing'),
  truncated: z.boolean().optional().describe('true when rows were dropped by the row or size limit'),
  note: z.string().optional().describe('why and how the result was truncated'),
  err: z.string().optional().describe('what went wrong, when the query failed or was refused'),
  code: z
    .enum(['VALIDATION_ERROR', 'AUTHORIZATION_ERROR', 'RATE_LIMITED', 'QUERY_TIMEOUT', 'DATABASE_ERROR', 'DATABASE_UNAVAILABLE', 'INTERNAL_ERROR'])
    .optional()
    .describe('stable error code, when err is set'),
  q: z.string().optional().describe('the query that failed'),
});

export function registerQueryTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
    'execute_sales_query',
    {
      title: 'Run a read-only SQL query',
      description:
        'Run one read-only PostgreSQL SELECT (WITH, joins, subqueries, window functions allowed) against the Zava ' +
        'Retail schema "retail" and get the rows as compact JSON: {"c":[columns],"r":[[row values]],"n":row count}; ' +
        '{"c":[],"r":[],"n":0,"msg":"No rows"} when nothing matches; {"err":"...","q":"...","c":[],"r":[],"n":0} when ' +
        'the query fails or is refused (read err, fix the query, try again). Results over the row or size limit come ' +
        'back with "truncated":true and a note. Only SELECT is allowed: no writes, DDL, SET, transaction control or ' +
        'functions with side effects. Queries are cancelled after the statement timeout. ' +
        DATA_GUIDANCE,
      inputSchema: z.object({
        postgresql_query: text()
          .describe('One well-formed PostgreSQL SELECT statement using exact names from get_multiple_table_schemas, e.g. ' +
            'SELECT s.store_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.stores s ON s.store_id = oi.store_id GROUP BY s.store_name ORDER BY revenue DESC LIMIT 20'),
      }),
      outputSchema: CompactResultShape,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      refuse: ({ postgresql_query }, message, code) => compactAnswer({ result: compactError(message, postgresql_query, code), isError: true }, 'query'),
      // Keyed by the normalized statement; volatile statements (now(), random(), CURRENT_DATE …) are not cached.
      cache: ({ postgresql_query }) => deps.statementKeys?.keyOf(postgresql_query),
    },
    async ({ postgresql_query }, call) => compactAnswer(await deps.queries.execute(call.identity, postgresql_query, call.signal), 'query'),
  );
}
