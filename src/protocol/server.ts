// The MCP server: one McpServer with the four reference-compatible tools. Tools read the caller's identity per
// call (see Caller), so HTTP can reuse servers across requests (a pool, one server per request in progress);
// stdio builds one for the process.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { PACKAGE_VERSION } from '../infra/version.js';
import type { Caller, ServerDeps } from './context.js';
import { registerDateTool } from './tools/date.js';
import { SERVER_INSTRUCTIONS } from './tools/guidance.js';
import { registerQueryTool } from './tools/query.js';
import { registerSchemaTool } from './tools/schemas.js';
import { registerSearchTool } from './tools/search.js';

export const SERVER_NAME = 'zava-mcp';

export const SERVER_VERSION: string = PACKAGE_VERSION;

export function createMcpServer(deps: ServerDeps, caller: Caller): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, title: 'Zava Retail sales analytics', version: SERVER_VERSION },
    { instructions: SERVER_INSTRUCTIONS, capabilities: { tools: {} } },
  );
  registerSchemaTool(server, deps, caller);
  registerQueryTool(server, deps, caller);
  registerDateTool(server);
  registerSearchTool(server, deps, caller);
  return server;
}
