// MCP resources: each retail table's schema (zava://schema/retail.orders, and the template zava://schema/{table}),
// and zava://catalog/categories. The schema resources and get_multiple_table_schemas share one implementation
// (SchemaService.describe in src/analytics/schema.ts); the list is per caller: a caller without a known identity
// is listed no table, and every read runs under the caller's identity (order years are the caller's own).
import { type McpServer, ProtocolError, ProtocolErrorCode, ResourceNotFoundError, ResourceTemplate, type ServerContext } from '@modelcontextprotocol/server';
import { catalogCategories } from '../analytics/catalog-summary.js';
import { normalizeTableName, SCHEMA_NAME, validTableNames } from '../analytics/schema.js';
import { STORE_SCOPED_TABLES } from '../db/migrations.js';
import type { Identity } from '../db/types.js';
import { AccessDeniedError, UnknownIdentityError } from '../infra/errors.js';
import type { Caller, ServerDeps } from './context.js';
import { rawCallOf } from './pipeline.js';

export const SCHEMA_URI_PREFIX = 'zava://schema/';
export const SCHEMA_URI_TEMPLATE = `${SCHEMA_URI_PREFIX}{table}`;
export const CATEGORIES_URI = 'zava://catalog/categories';

const STORE_SCOPED = new Set(STORE_SCOPED_TABLES.map(([table]) => table));

/** The caller's identity, or a protocol error that says why there is none (never a fallback to head office). */
export async function identityOf(deps: ServerDeps, caller: Caller, ctx: ServerContext): Promise<Identity> {
  try {
    return await deps.pipeline.identify(rawCallOf(caller, ctx));
  } catch (error) {
    if (error instanceof UnknownIdentityError || error instanceof AccessDeniedError) throw new ProtocolError(ProtocolErrorCode.InvalidRequest, error.message);
    throw error;
  }
}

/** The caller's identity, or undefined when there is none (lists and completions then offer nothing). */
export async function identityOrNone(deps: ServerDeps, caller: Caller, ctx: ServerContext): Promise<Identity | undefined> {
  return identityOf(deps, caller, ctx).catch((error: unknown) => {
    if (error instanceof ProtocolError) return undefined;
    throw error;
  });
}

function json(uri: string, value: unknown) {
  return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }] };
}

export function registerResources(server: McpServer, deps: ServerDeps, caller: Caller): void {
  server.registerResource(
    'table-schema',
    new ResourceTemplate(SCHEMA_URI_TEMPLATE, {
      list: async (ctx) => {
        const identity = await identityOrNone(deps, caller, ctx);
        if (!identity) return { resources: [] };
        const stores = identity.storeIds === 'all' ? 'every store' : `your ${identity.storeIds.length} store${identity.storeIds.length === 1 ? '' : 's'}`;
        return {
          resources: validTableNames().map((name) => {
            const table = name.slice(SCHEMA_NAME.length + 1);
            return {
              uri: `${SCHEMA_URI_PREFIX}${name}`,
              name,
              title: `Schema of ${name}`,
              description: `Columns, keys and values to filter on of ${name} (${STORE_SCOPED.has(table) ? `rows of ${stores}` : 'all rows'})`,
              mimeType: 'application/json',
            };
          }),
        };
      },
    }),
    {
      title: 'Table schema',
      description: `The schema of one table of the retail schema as JSON: columns and types, primary and foreign keys, row access, values to filter on. Tables: ${validTableNames().join(', ')}.`,
      mimeType: 'application/json',
    },
    async (uri, variables, ctx) => {
      const table = normalizeTableName(decodeURIComponent(String(variables.table ?? '')));
      if (!table) throw new ResourceNotFoundError(uri.toString());
      const identity = await identityOf(deps, caller, ctx);
      const [schema] = await deps.schemas.describe(identity, [table]);
      return json(uri.toString(), schema);
    },
  );

  server.registerResource(
    'categories',
    CATEGORIES_URI,
    {
      title: 'Product categories',
      description: 'The product categories with their product types, product counts and Washington State seasonal multipliers (January first), as JSON.',
      mimeType: 'application/json',
    },
    async (uri, ctx) => {
      const identity = await identityOf(deps, caller, ctx);
      return json(uri.toString(), { categories: await catalogCategories(deps.db, identity, ctx.mcpReq.signal) });
    },
  );
}
