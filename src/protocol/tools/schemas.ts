// get_multiple_table_schemas(table_names): columns, keys and the exact values to filter on.
import { z } from 'zod';
import { markAsData, toJson } from '../../analytics/format.js';
import { renderSchemas, UnknownTableError, validTableNames, type TableSchema } from '../../analytics/schema.js';
import type { ServerDeps } from '../context.js';
import { registerTool, toolError, type ToolHost } from '../pipeline.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { toolErrorCode, type ToolErrorCode } from '../../infra/errors.js';
import { DATA_GUIDANCE } from './guidance.js';
import { text } from './result.js';

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

/** An error in the tool's own output shape (no tables), so clients that validate structured content accept it. */
function schemaError(message: string, code: ToolErrorCode): CallToolResult {
  return { ...toolError(message, code), structuredContent: { tables: [], err: message, code } };
}

export function registerSchemaTool(host: ToolHost, deps: ServerDeps): void {
  registerTool(
    host,
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
      outputSchema: z.object({
        tables: z.array(TableSchemaShape),
        err: z.string().optional().describe('what went wrong, when the call failed or was refused'),
        code: z.string().optional().describe('stable error code, when err is set'),
      }),
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      refuse: (_args, message, code) => schemaError(message, code),
    },
    async ({ table_names }, call) => {
      try {
        const tables = await deps.schemas.describe(call.identity, table_names);
        return { content: [{ type: 'text' as const, text: schemaText(tables) }], structuredContent: { tables } };
      } catch (error) {
        if (error instanceof UnknownTableError) return schemaError(error.message, 'VALIDATION_ERROR');
        deps.log.error({ err: error }, 'get_multiple_table_schemas failed');
        return schemaError('the schemas could not be read right now (logged). Try again shortly.', toolErrorCode(error));
      }
    },
  );
}
