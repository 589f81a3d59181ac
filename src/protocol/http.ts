// Streamable HTTP at /mcp, stateless: any replica can answer any request, and no session lives in this process.
// Decisions:
// - Two eras on one endpoint, told apart by the SDK's own classifier (`classifyInboundRequest`, the code its HTTP
//   entry runs): 2026-07-28 requests (per-request `_meta` envelope, `server/discover`, Mcp-Method/Mcp-Name headers
//   checked against the body, cache hints) go to the SDK v2 entry `createMcpHandler` and its validation ladder;
//   2025-era requests (the initialize handshake; VS Code and most clients of 2025) go to one long-lived server on a
//   channel of our own (legacy-http.ts): one message in, one JSON answer out, no transport built per request.
// - Node, not web streams, wherever the SDK lets us: `@modelcontextprotocol/node` (Hono's adapter) converts every
//   IncomingMessage and Response, which cost a fifth of the server's CPU per call under SDK v1. The body is read
//   from Node's stream once, bounded, parsed once; the 2026-07-28 entry gets it as `parsedBody` with a Request
//   that carries headers only; its JSON answer is read back as one string. Every answer is one `res.end`.
// - The identity (x-rls-user-id) travels with each message as the SDK's per-request auth info (context.ts), so
//   servers hold nothing per caller and can be shared: the 2026-07-28 entry asks its factory for a server per
//   request, so those come from a pool and go back when the exchange's transport closes.
// - /health (alive: no database call) and /ready (database, schema version, embeddings: see infra/health.ts)
//   answer before the MCP edge checks, for load balancers and container probes.
// - Edge checks before any parsing: Host (and Origin) when bound to loopback, against DNS rebinding; POST only
//   (GET/DELETE: no sessions, no standalone SSE stream: 405); JSON content type (415); body size (413); JSON-RPC
//   batches refused with a clear error (MCP removed them in 2025-06-18).
// - The edge request limit (security/edge-limit.ts) after authentication, before the body is read: 429 with
//   Retry-After, so a flood of requests costs a counter update each, never a parse or an MCP exchange.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  classifyInboundRequest,
  createMcpHandler,
  isJsonContentType,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  type AuthInfo,
  type McpServer,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server';
import { DEV_AUTH, type HttpAuth } from './auth.js';
import { type EdgeLimiter, NO_EDGE_LIMIT } from '../security/edge-limit.js';
import { rolesOf } from '../security/claims.js';
import type { ZavaClaims } from '../security/jwt.js';
import type { Caller, ServerDeps } from './context.js';
import { LegacyHttpChannel } from './legacy-http.js';
import { createMcpServer } from './server.js';

export const MCP_PATH = '/mcp';
export const IDENTITY_HEADER = 'x-rls-user-id';
/** Request bodies past this are refused (413) before they are parsed. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Idle McpServers kept for reuse by 2026-07-28 exchanges; more are built under load and dropped afterwards. */
const MAX_IDLE_SERVERS = 64;
/** JSON-RPC "Invalid Request". */
const INVALID_REQUEST = -32600;

/** The identity of one HTTP tool call: its own request's auth info (the header in dev mode, the token in jwt). */
export const HTTP_CALLER: Caller = { transport: 'http' };

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
  /** dev (x-rls-user-id, loopback only) or jwt (bearer tokens): see auth.ts. Default dev. */
  readonly auth?: HttpAuth;
  /** The public URL of /mcp, when it differs from the listening address (a proxy): the protected resource. */
  readonly resourceUrl?: string | undefined;
  /** /metrics is served on a port of its own (ZAVA_METRICS_PORT), not here. */
  readonly metricsElsewhere?: boolean;
  /** Requests per caller before the MCP layer (429 with Retry-After past it); default: none. */
  readonly edgeLimit?: EdgeLimiter;
}

export interface RunningHttpServer {
  readonly url: string;
  readonly port: number;
  /**
   * The first step of a shutdown: /ready answers 503 from now on, so a load balancer stops sending this replica
   * new work, while requests that still arrive (sent before it noticed) are served as usual.
   */
  withdraw(): void;
  /** Stops accepting, lets requests in progress finish (up to drainMs), then closes every connection. */
  close(drainMs: number): Promise<boolean>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}, id: unknown = null): void {
  if (res.headersSent) return;
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * The request body as text, or 'too large' past MAX_BODY_BYTES. Past the limit the rest is read and dropped (never
 * buffered) rather than the socket closed, so the client, still sending, can read the 413.
 */
function readBody(req: IncomingMessage): Promise<string | 'too large'> {
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) {
    req.resume();
    return Promise.resolve('too large');
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.once('end', () => resolve(size > MAX_BODY_BYTES ? 'too large' : chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

/** Who the edge limit counts a request against: the verified token's sub, the dev-mode UUID, else the client's address. */
function edgeCallerKey(req: IncomingMessage, authInfo: AuthInfo | undefined): string {
  const sub = (authInfo?.extra?.claims as ZavaClaims | undefined)?.sub;
  if (typeof sub === 'string') return `jwt:${sub}`;
  const userId = authInfo?.extra?.userId;
  if (typeof userId === 'string') return `dev:${userId.trim().toLowerCase()}`;
  return `addr:${req.socket.remoteAddress ?? 'unknown'}`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The web-standard face of a Node request: headers and an abort signal; the body travels parsed, beside it. */
function webRequest(req: IncomingMessage, url: string, signal: AbortSignal): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return new Request(url, { method: 'POST', headers, signal });
}

/** Writes a web Response to Node: JSON in one write, a stream piped as it comes. */
async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  const streaming = response.body !== null && (headers['content-type'] ?? '').startsWith('text/event-stream');
  if (!streaming) {
    const body = response.body === null ? '' : await response.text();
    headers['content-length'] = String(Buffer.byteLength(body));
    res.writeHead(response.status, headers);
    res.end(body);
    return;
  }
  res.writeHead(response.status, headers);
  res.flushHeaders();
  const stream = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  res.once('close', () => stream.destroy());
  stream.pipe(res);
}

/** Host check for a loopback binding, remembering the few Host values that passed (one URL parse each, once). */
function hostChecker(): (host: string | undefined) => string | undefined {
  const allowed = localhostAllowedHostnames();
  const seen = new Set<string>();
  return (host) => {
    if (host !== undefined && seen.has(host)) return undefined;
    const result = validateHostHeader(host, allowed);
    if (!result.ok) return result.message;
    if (seen.size < 16) seen.add(host!);
    return undefined;
  };
}

export async function startHttpServer(deps: ServerDeps, options: HttpOptions): Promise<RunningHttpServer> {
  const { log } = deps;
  const auth = options.auth ?? DEV_AUTH;
  const edgeLimit = options.edgeLimit ?? NO_EDGE_LIMIT;
  let resourceUrl = options.resourceUrl ?? ''; // set once listening, when not configured
  const boundToLoopback = LOOPBACK.has(options.host);
  const checkHost = boundToLoopback ? hostChecker() : () => undefined;
  let closing = false;
  let withdrawn = false;
  let active = 0;
  let idle: (() => void) | undefined;

  const onerror = (error: Error) => log.debug({ err: error }, 'MCP request refused or failed');
  // 2025-era: one server, connected once, for the life of the process.
  const legacy = new LegacyHttpChannel();
  const legacyServer = createMcpServer(deps, HTTP_CALLER);
  await legacyServer.connect(legacy);
  // 2026-07-28: a server per exchange, from a pool.
  const pool: McpServer[] = [];
  const modern = createMcpHandler(
    () => {
      const pooled = pool.pop();
      if (pooled) return pooled;
      const server = createMcpServer(deps, HTTP_CALLER);
      // The entry chains its own close hook before this one and restores it after each exchange.
      server.server.onclose = () => {
        if (!closing && pool.length < MAX_IDLE_SERVERS && !pool.includes(server)) pool.push(server);
      };
      return server;
    },
    { legacy: 'reject', maxRequestBodySize: MAX_BODY_BYTES, onerror },
  );

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (closing) {
      res.setHeader('connection', 'close');
      return jsonRpcError(res, 503, -32000, 'the server is shutting down; try again', { 'retry-after': '1' });
    }
    if (path === '/health') {
      // ?detail=1: the operators' view. Dev mode serves loopback only; jwt mode asks for a token first.
      const detail = /(?:^|&)detail=(?:1|true)(?:&|$)/.test((req.url ?? '').split('?')[1] ?? '');
      if (detail && deps.pipeline.mode === 'jwt') {
        const info = await auth.authenticate(req, res, undefined, resourceUrl);
        if (info === 'refused') return; // 401 with the bearer challenge
        const claims = info?.extra?.claims as ZavaClaims | undefined;
        if (!claims || !rolesOf(claims).includes('super_admin')) {
          return jsonRpcError(res, 403, -32000, 'forbidden: the detailed health view is for super_admin tokens');
        }
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(detail ? { status: 'ok', ...(deps.operatorView?.() ?? {}) } : { status: 'ok' }));
      return;
    }
    if (path === '/metrics' && deps.metrics && !options.metricsElsewhere) {
      const { contentType, body } = await deps.metrics.scrape();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (path === '/ready') {
      const report = withdrawn
        ? { status: 'not ready', components: { shutdown: { status: 'failing', latencyMs: 0, detail: 'this replica is shutting down' } } }
        : deps.readiness
          ? await deps.readiness.check()
          : { status: 'ready', components: {} };
      res.writeHead(report.status === 'ready' ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(report));
      return;
    }
    if (auth.serveMetadata(req, res, path!, resourceUrl)) return;
    if (path !== MCP_PATH) return jsonRpcError(res, 404, -32000, `not found: the MCP endpoint is ${MCP_PATH}`);
    if (boundToLoopback) {
      // DNS rebinding: a page elsewhere must not reach a loopback server through a name that resolves to it.
      const badHost = checkHost(req.headers.host);
      if (badHost) return jsonRpcError(res, 403, -32000, `forbidden: ${badHost} (this server answers loopback names only)`);
      const origin = validateOriginHeader(req.headers.origin, localhostAllowedOrigins());
      if (!origin.ok) return jsonRpcError(res, 403, -32000, `forbidden origin: ${origin.message}`);
    }
    if (req.method !== 'POST') {
      return jsonRpcError(res, 405, -32000, 'method not allowed: this stateless server answers POST only', { allow: 'POST' });
    }
    if (!isJsonContentType(req.headers['content-type'] ?? null)) {
      return jsonRpcError(res, 415, -32000, 'unsupported media type: Content-Type must be application/json');
    }
    // jwt mode: no valid token, no MCP (401 with the challenge before the body is read).
    const authInfo = await auth.authenticate(req, res, header(req, IDENTITY_HEADER), resourceUrl);
    if (authInfo === 'refused') {
      req.resume();
      return;
    }
    const admitted = await edgeLimit.admit(edgeCallerKey(req, authInfo));
    if (!admitted.allowed) {
      deps.metrics?.httpRequestLimited();
      req.resume();
      return jsonRpcError(res, 429, -32000, admitted.message, { 'retry-after': String(admitted.retryAfterSec) });
    }
    const text = await readBody(req);
    if (text === 'too large') {
      return jsonRpcError(res, 413, -32000, `payload too large: a request body may be at most ${MAX_BODY_BYTES} bytes`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return jsonRpcError(res, 400, -32700, 'parse error: the request body is not valid JSON');
    }
    if (Array.isArray(body)) {
      return jsonRpcError(res, 400, INVALID_REQUEST, 'JSON-RPC batches are not supported (MCP removed them in revision 2025-06-18): send one request per POST');
    }
    const protocolVersion = header(req, 'mcp-protocol-version');
    const route = classifyInboundRequest({
      httpMethod: 'POST',
      protocolVersionHeader: protocolVersion,
      mcpMethodHeader: header(req, 'mcp-method'),
      mcpNameHeader: header(req, 'mcp-name'),
      body,
    });
    // A client that goes away before its answer is written cancels its call (the SDK aborts the handler's signal).
    const whenGone = (listener: () => void) => res.once('close', () => res.writableFinished || listener());
    if (route.kind === 'legacy') {
      const answer = await legacy.handle(body, { accept: req.headers.accept, protocolVersion }, authInfo, whenGone);
      if (answer.status === 202) {
        res.writeHead(202).end();
        return;
      }
      if (answer.status !== 200) return jsonRpcError(res, answer.status, answer.code, answer.message);
      if (res.destroyed) return;
      const json = JSON.stringify(answer.body);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
      return;
    }
    // 2026-07-28, or a request the entry's ladder will refuse with its own error.
    const abort = new AbortController();
    whenGone(() => abort.abort());
    const url = `http://${req.headers.host ?? 'localhost'}${MCP_PATH}`;
    const response = await modern.fetch(webRequest(req, url, abort.signal), { parsedBody: body, ...(authInfo ? { authInfo } : {}) });
    await writeResponse(response, res);
  };

  const http: Server = createServer((req, res) => {
    active++;
    res.on('close', () => {
      active--;
      if (active === 0) idle?.();
    });
    handle(req, res).catch((error: unknown) => {
      log.error({ err: error }, 'MCP request failed');
      if (!res.headersSent) jsonRpcError(res, 500, -32603, 'internal server error');
      else res.destroy();
    });
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
  if (!resourceUrl) resourceUrl = url;

  return {
    url,
    port: address.port,
    withdraw() {
      withdrawn = true;
    },
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
      await modern.close().catch(() => undefined);
      await legacyServer.close().catch(() => undefined);
      http.closeAllConnections();
      await stopped;
      pool.length = 0;
      return drained;
    },
  };
}
