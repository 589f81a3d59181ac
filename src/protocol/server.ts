// The MCP server: one McpServer (SDK v2) with the four reference-compatible tools. Tools read the caller's
// identity per call (see Caller), so HTTP can reuse servers across requests (a pool, one server per request in
// progress); stdio builds one per connection. Which protocol revision a server speaks is chosen by the entry that
// serves it (src/protocol/http.ts, src/protocol/stdio.ts): 2026-07-28, or 2025-era for older clients.
import { McpServer, type CacheHint } from '@modelcontextprotocol/server';
import { PACKAGE_VERSION } from '../infra/version.js';
import type { Caller, ServerDeps } from './context.js';
import { registerDateTool } from './tools/date.js';
import { SERVER_INSTRUCTIONS } from './tools/guidance.js';
import { registerQueryTool } from './tools/query.js';
import { registerSchemaTool } from './tools/schemas.js';
import { registerSearchTool } from './tools/search.js';
import { registerComparePeriodsTool } from './tools/compare-periods.js';
import { registerInventoryStatusTool } from './tools/inventory-status.js';
import { registerSalesSummaryTool } from './tools/sales-summary.js';
import { registerSeasonalityTool } from './tools/seasonality.js';
import { registerStorePerformanceTool } from './tools/store-performance.js';
import { registerTopProductsTool } from './tools/top-products.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';

export const SERVER_NAME = 'zava-mcp';

export const SERVER_VERSION: string = PACKAGE_VERSION;

/**
 * Cache hints on the cacheable results of 2026-07-28 (2025-era answers carry none). `server/discover` is the
 * same for every caller (name, version, capabilities, instructions): public. Every list a caller acts on is
 * private: the tool list does not vary by caller today, but the identity work (roles, scopes) will make it, and
 * the resources and prompts to come (table schemas with the caller's store names) already would; a shared cache
 * must never hand one manager's list to another. Five minutes, as the surface changes only with a deployment.
 */
export const CACHE_HINTS: Readonly<Record<'server/discover' | 'tools/list' | 'resources/list' | 'resources/templates/list' | 'resources/read' | 'prompts/list', CacheHint>> = {
  'server/discover': { ttlMs: 300_000, cacheScope: 'public' },
  'tools/list': { ttlMs: 300_000, cacheScope: 'private' },
  'resources/list': { ttlMs: 300_000, cacheScope: 'private' },
  'resources/templates/list': { ttlMs: 300_000, cacheScope: 'private' },
  'resources/read': { ttlMs: 0, cacheScope: 'private' },
  'prompts/list': { ttlMs: 300_000, cacheScope: 'private' },
};

export function createMcpServer(deps: ServerDeps, caller: Caller): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, title: 'Zava Retail sales analytics', version: SERVER_VERSION },
    {
      instructions: SERVER_INSTRUCTIONS,
      capabilities: { tools: { listChanged: false }, resources: { listChanged: false }, prompts: { listChanged: false } },
      cacheHints: CACHE_HINTS,
      // No maxToolInputElements: the pipeline caps argument elements itself, with a coded error (input-validation.ts).
    },
  );
  // Every tool through the one call pipeline (pipeline.ts): registered once, no stage repeated.
  const host = { server, pipeline: deps.pipeline, caller };
  registerSchemaTool(host, deps);
  registerQueryTool(host, deps);
  registerDateTool(host);
  registerSearchTool(host, deps);
  // The typed analytics tools (src/analytics): fixed SQL in the caller's identity-scoped session.
  registerSalesSummaryTool(host, deps);
  registerTopProductsTool(host, deps);
  registerComparePeriodsTool(host, deps);
  registerStorePerformanceTool(host, deps);
  registerInventoryStatusTool(host, deps);
  registerSeasonalityTool(host, deps);
  // Table schemas and the catalog as resources; the sample questions as prompts, with argument completion.
  registerResources(server, deps, caller);
  registerPrompts(server, deps, caller);
  return server;
}
