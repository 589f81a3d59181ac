// get_multiple_table_schemas(table_names): columns, keys and the exact values to filter on.
import type { McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { markAsData, toJson } from '../../analytics/format.js';
import { renderSchemas, UnknownTableError, validTableNames, type TableSchema } from '../../analytics/schema.js';
import { UnknownIdentityError } from '../../infra/errors.js';
import { type Caller, type ServerDeps, withCall } from '../context.js';
import { DATA_GUIDANCE } from './guidance.js';
import { text, toolError } from './result.js';

const TableSchemaShape = z.object({
  table: z.string(),
  row_access: z.enum(['your stores only', 'all rows']),
  columns: z.array(z.object({ name: z.string(), type: z.string(), nullable: z.boolean() })),
  primary_key: z.array(z.string()),
  foreign_keys: z.array(z.object({ columns: z.array(z.string()), references_table: z.string(), references_columns: z.array(z.string()) })),
  values: z.record(z.string(), z.array(z.union([z.string(), z.number()]))).optional(),
  masked_columns: z.record(z.string(), z.string()).optional().describe('columns PostgreSQL masks for your identity, and how they look'),
  notes: z.array(z.string()).optional(),
});

/**
 * The schemas as text for the model. Column names and types are ours; the distinct values (store, category and
 * product type names) are the retailer's (`catalog import`), so they go after the structure, between per-call
 * data markers like query results, where text such as "ignore your instructions" stays data.
 */
export function schemaText(tables: readonly TableSchema[]): string {
  const structure = renderSchemas(tables.map(({ values: _values, ...table }) => table));
  const values = Object.fromEntries(tables.filter((table) => table.values && Object.keys(table.values).length > 0).map((table) => [table.table, table.values]));
  if (Object.keys(values).length === 0) return structure;
  return `${structure}\n\nValues to filter on, by table and column (use them exactly as written):\n${markAsData(toJson(values), 'list of values')}`;
}

export function registerSchemaTool(server: McpServer, deps: ServerDeps, caller: Caller): void {
  server.registerTool(
    'get_multiple_table_schemas',
    {
      title: 'Table schemas',
      description:
        'Get the schemas of one or more tables of the Zava Retail database in a single call: columns and types, ' +
        'primary and foreign keys, and the exact values to filter on (store names, category names, product type ' +
        `names, order years). Call this first, for every table a query will touch. Valid tables: ${validTableNames().join(', ')}. ` +
        DATA_GUIDANCE,
      inputSchema: z.object({
        table_names: z
          .array(text().max(200))
          .min(1)
          .max(50)
          .describe(`Tables to describe, e.g. ["retail.orders", "retail.order_items", "retail.stores"]. Valid: ${validTableNames().join(', ')}`),
      }),
      outputSchema: z.object({ tables: z.array(TableSchemaShape) }),
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    withCall(async ({ table_names }, call) =>
      deps.inFlight.run(async () => {
        try {
          const identity = await deps.db.resolveIdentity(caller.userIdOf(call));
          const tables = await deps.schemas.describe(identity, table_names);
          return { content: [{ type: 'text' as const, text: schemaText(tables) }], structuredContent: { tables } };
        } catch (error) {
          if (error instanceof UnknownIdentityError) return toolError(`${error.message}. No data is available without a known identity.`);
          if (error instanceof UnknownTableError) return toolError(error.message);
          deps.log.error({ err: error }, 'get_multiple_table_schemas failed');
          return toolError('the schemas could not be read right now (logged). Try again shortly.');
        }
      }),
    ),
  );
}
