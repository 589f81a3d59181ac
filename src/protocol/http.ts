// Streamable HTTP at /mcp, stateless: every POST gets its own transport and a McpServer of its own for as long
// as it runs (the SDK's stateless pattern), so no session lives in this process and any replica can answer any
// request. Building a McpServer (tool schemas, a JSON-schema validator) costs more than answering a cheap call,
// so finished servers are kept in a small pool and reused; they hold no per-request state, and each tool call
// reads the identity from its own request's x-rls-user-id header. GET and DELETE (sessions, server-sent
// streams) are not offered.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Caller, ServerDeps } from './context.js';
import { createMcpServer } from './server.js';

export const MCP_PATH = '/mcp';
export const IDENTITY_HEADER = 'x-rls-user-id';
/** Request bodies past this are refused (413) before they are parsed. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Idle McpServers kept for reuse; more are built under load and dropped afterwards. */
const MAX_IDLE_SERVERS = 64;

/** The identity of one HTTP tool call: its own request's x-rls-user-id header. */
export const HTTP_CALLER: Caller = {
  transport: 'http',
  userIdOf(call) {
    const value = call.requestInfo?.headers[IDENTITY_HEADER];
    return typeof value === 'string' ? value : value?.[0];
  },
};

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
}

export interface RunningHttpServer {
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets requests in progress finish (up to drainMs), then closes every connection. */
  close(drainMs: number): Promise<boolean>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * DNS-rebinding protection for a server bound to loopback: a browser page from elsewhere must not reach it.
 * Requests without an Origin (MCP clients, curl) pass; a browser Origin must itself be loopback.
 */
function originAllowed(req: IncomingMessage, boundToLoopback: boolean): boolean {
  const origin = headerValue(req, 'origin');
  if (!boundToLoopback || origin === undefined) return true;
  try {
    return LOOPBACK.has(new URL(origin).hostname);
  } catch {
    return false;
  }
}

export async function startHttpServer(deps: ServerDeps, options: HttpOptions): Promise<RunningHttpServer> {
  const { log } = deps;
  const boundToLoopback = LOOPBACK.has(options.host);
  let closing = false;
  let active = 0;
  let idle: (() => void) | undefined;
  const idleServers: McpServer[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (closing) {
      res.setHeader('connection', 'close');
      return jsonRpcError(res, 503, -32000, 'the server is shutting down; try again', { 'retry-after': '1' });
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path !== MCP_PATH) return jsonRpcError(res, 404, -32000, `not found: the MCP endpoint is ${MCP_PATH}`);
    if (!originAllowed(req, boundToLoopback)) return jsonRpcError(res, 403, -32000, 'forbidden origin');
    if (req.method !== 'POST') {
      return jsonRpcError(res, 405, -32000, 'method not allowed: this stateless server answers POST only', { allow: 'POST' });
    }
    const server = idleServers.pop() ?? createMcpServer(deps, HTTP_CALLER);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: MAX_BODY_BYTES,
    });
    // Back to the pool only once the request is handled and its answer fully sent (then no handler of it is
    // still running) and the server has let go of the transport; anything else is dropped, never reused.
    let handled = false;
    let closed = false;
    const recycle = () => {
      if (!handled || !closed) return;
      if (res.writableFinished && !server.isConnected() && !closing && idleServers.length < MAX_IDLE_SERVERS) idleServers.push(server);
      else void server.close().catch(() => undefined);
    };
    res.on('close', () => {
      void transport
        .close()
        .catch(() => undefined)
        .finally(() => {
          closed = true;
          recycle();
        });
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res);
    } catch (error) {
      log.error({ err: error }, 'MCP request failed');
      jsonRpcError(res, 500, -32603, 'internal server error');
    } finally {
      handled = true;
      recycle();
    }
  };

  const http: Server = createServer((req, res) => {
    active++;
    res.on('close', () => {
      active--;
      if (active === 0) idle?.();
    });
    void handle(req, res);
  });
  http.keepAliveTimeout = 5_000;
  http.headersTimeout = 15_000;
  http.requestTimeout = 120_000;

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostForUrl}:${address.port}${MCP_PATH}`;

  return {
    url,
    port: address.port,
    async close(drainMs: number): Promise<boolean> {
      closing = true;
      const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      const drained =
        active === 0 ||
        (await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), drainMs);
          idle = () => {
            clearTimeout(timer);
            resolve(true);
          };
        }));
      http.closeAllConnections();
      await stopped;
      return drained;
    },
  };
}
