// Test harness for the MCP server: spawns `zava-mcp serve` as a real process (HTTP or stdio) on a test
// database, connects an official SDK client of either generation, and reads answers back. No mocks: the server,
// the SDKs and the database are the real ones.
// - 'v1': `@modelcontextprotocol/sdk` 1.x, the 2025-era client VS Code and most clients of 2025 speak
//   (initialize handshake; the server answers it through its legacy path).
// - 'v2': `@modelcontextprotocol/client` 2.x negotiating the era (`versionNegotiation: 'auto'`): against this
//   server it settles on 2026-07-28 (server/discover, per-request envelope, Mcp-Method/Mcp-Name headers).
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as V1StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2StreamableHTTPClientTransport, type CallToolResult, type Tool } from '@modelcontextprotocol/client';
import { StdioClientTransport as V2StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { unmarkData, type CompactResult } from '../src/analytics/format.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { RETAIL_TABLES } from '../src/db/migrations.js';
import type { Database } from '../src/db/types.js';

export const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** The spawned server's environment: ours without any zava setting, plus the test's. */
function serverEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith('ZAVA_') || key === 'DATABASE_URL' || key === 'PORT') continue;
    env[key] = value;
  }
  // Rate limits (60 calls a minute per identity and tool by default) and the HTTP edge's request limit are off unless
  // a suite sets them: suites that flood one identity on purpose test the database's fairness, not the limiters
  // (auth-limits.test.ts and edge-limit.test.ts do that).
  return { ZAVA_LOG_LEVEL: 'warn', ...env, ZAVA_RATE_LIMIT_PER_MINUTE: '0', ZAVA_EDGE_RATE_LIMIT: '0', ...extra };
}

export interface HttpServerProcess {
  readonly url: string;
  readonly process: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const START_TIMEOUT_MS = 240_000;

/** Starts `zava-mcp serve` on a free port (--port 0) and waits until it prints its URL. */
export async function startHttpServer(flags: readonly string[], env: Record<string, string> = {}): Promise<HttpServerProcess> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...flags], {
    cwd: tmpdir(),
    env: serverEnv({ ...env, ZAVA_LOG_LEVEL: 'info' }), // the URL is read from the info log
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    // Generous: the first start embeds the catalog, which takes minutes on a busy 2-core machine.
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // it would hold the port and, on the embedded backend, the data directory
      reject(new Error(`server did not start in ${START_TIMEOUT_MS / 1000} s:\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/.exec(stderr);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${stderr}\n${stdout}`));
    });
  });
  return {
    url,
    process: child,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export type ClientKind = 'v1' | 'v2';
export const CLIENT_KINDS: readonly ClientKind[] = ['v1', 'v2'];

/** What the suites use of a client; both SDK generations' Client classes have it. */
export interface Client {
  readonly kind: ClientKind;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<CallToolResult>;
  listTools(): Promise<{ tools: Tool[] }>;
  /** Resources, prompts and completions (the analytics surface); the same methods on both SDK generations. */
  listResources(): Promise<{ resources: Array<{ uri: string; name: string; mimeType?: string }> }>;
  listResourceTemplates(): Promise<{ resourceTemplates: Array<{ uriTemplate: string; name: string }> }>;
  readResource(params: { uri: string }): Promise<{ contents: Array<{ uri: string; text?: string; mimeType?: string }> }>;
  listPrompts(): Promise<{ prompts: Array<{ name: string; arguments?: Array<{ name: string; required?: boolean }> }> }>;
  getPrompt(params: { name: string; arguments?: Record<string, string> }): Promise<{ messages: Array<{ role: string; content: { type: string; text?: string } }> }>;
  complete(params: { ref: { type: 'ref/prompt'; name: string } | { type: 'ref/resource'; uri: string }; argument: { name: string; value: string } }): Promise<{ completion: { values: string[]; total?: number; hasMore?: boolean } }>;
  close(): Promise<void>;
  /** The era the client settled on: 'legacy' (2025 initialize) or 'modern' (2026-07-28). */
  era(): 'legacy' | 'modern' | undefined;
}

const CLIENT_INFO = { name: 'zava-mcp-tests', version: '1.0.0' };

function v2Client(): V2Client {
  return new V2Client(CLIENT_INFO, { versionNegotiation: { mode: 'auto' } });
}

export function wrap(kind: 'v1', client: V1Client): Client;
export function wrap(kind: 'v2', client: V2Client): Client;
export function wrap(kind: ClientKind, client: V1Client | V2Client): Client {
  return {
    kind,
    callTool: (params) => client.callTool(params) as Promise<CallToolResult>,
    listTools: () => client.listTools() as Promise<{ tools: Tool[] }>,
    listResources: () => client.listResources() as ReturnType<Client['listResources']>,
    listResourceTemplates: () => client.listResourceTemplates() as ReturnType<Client['listResourceTemplates']>,
    readResource: (params) => client.readResource(params) as ReturnType<Client['readResource']>,
    listPrompts: () => client.listPrompts() as ReturnType<Client['listPrompts']>,
    getPrompt: (params) => client.getPrompt(params) as ReturnType<Client['getPrompt']>,
    complete: (params) => client.complete(params) as ReturnType<Client['complete']>,
    close: () => client.close(),
    era: () => (client instanceof V2Client ? client.getProtocolEra() : 'legacy'),
  };
}

/**
 * For suites about the protocol, not the data: a small seeded embedded database, with the catalog's embeddings (of
 * the default provider, as a server leaves it after its first start, so the server starts at once), served over HTTP.
 */
export async function startEmbeddedHttpServer(): Promise<{ t: TestDatabase; http: HttpServerProcess }> {
  const t = await createTestDatabase('embedded', { customers: 120, open: false }); // the spawned server opens it
  try {
    return { t, http: await startHttpServer(t.flags) };
  } catch (error) {
    await t.cleanup();
    throw error;
  }
}

/** An SDK client over Streamable HTTP, acting as `userId` (the x-rls-user-id header), or as nobody. */
export async function connectHttp(url: string, userId?: string, kind: ClientKind = 'v2'): Promise<Client> {
  const headers: Record<string, string> = userId === undefined ? {} : { 'x-rls-user-id': userId };
  if (kind === 'v1') {
    const client = new V1Client(CLIENT_INFO);
    await client.connect(new V1StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return wrap('v1', client);
  }
  const client = v2Client();
  await client.connect(new V2StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return wrap('v2', client);
}

export interface StdioConnection {
  readonly client: Client;
  stderr(): string;
  close(): Promise<void>;
}

/**
 * The SDK's stdio transport, probing the era on the connection itself: the SDK probes in place on any subclass of
 * its transport (on the base class it spawns a sibling process for the probe, see connectStdio).
 */
class InPlaceProbeStdioClientTransport extends V2StdioClientTransport {}

export interface StdioOptions {
  /**
   * The v2 client's era probe on the server it keeps instead of on a short-lived sibling process: one spawn instead
   * of two, for a process a case needs for something else than the client (a provider that is down); the sibling
   * probe, what clients built on the SDK do, stays the default.
   */
  readonly probeInPlace?: boolean;
}

/**
 * Spawns `zava-mcp serve --stdio` through the SDK's stdio client transport. The v2 client probes the era on a
 * short-lived sibling process first (the SDK's rule on stdio), then spawns the server it keeps; unless
 * `probeInPlace`.
 */
export async function connectStdio(
  flags: readonly string[],
  userId?: string,
  env: Record<string, string> = {},
  kind: ClientKind = 'v2',
  options: StdioOptions = {},
): Promise<StdioConnection> {
  const parameters = {
    command: process.execPath,
    args: [MAIN, 'serve', '--stdio', ...flags, ...(userId === undefined ? [] : ['--rls-user-id', userId])],
    env: serverEnv(env),
    cwd: tmpdir(),
    stderr: 'pipe' as const,
  };
  let stderr = '';
  const onStderr = (chunk: Buffer) => (stderr += chunk.toString());
  if (kind === 'v1') {
    const transport = new V1StdioClientTransport(parameters);
    transport.stderr?.on('data', onStderr);
    const client = new V1Client(CLIENT_INFO);
    await client.connect(transport);
    return { client: wrap('v1', client), stderr: () => stderr, close: () => client.close() };
  }
  const transport = options.probeInPlace ? new InPlaceProbeStdioClientTransport(parameters) : new V2StdioClientTransport(parameters);
  transport.stderr?.on('data', onStderr);
  const client = v2Client();
  await client.connect(transport);
  return { client: wrap('v2', client), stderr: () => stderr, close: () => client.close() };
}

export interface QueryAnswer {
  readonly result: CompactResult;
  readonly isError: boolean;
  readonly text: string;
}

export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first?.type === 'text' ? first.text : '';
}

/** Calls execute_sales_query; checks that the text (between its data markers) and structuredContent agree. */
export async function query(client: Client, sql: string): Promise<QueryAnswer> {
  const raw = await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: sql } });
  const text = textOf(raw);
  const json = unmarkData(text);
  if (json === undefined) throw new Error(`execute_sales_query answered without data markers: ${text.slice(0, 300)}`);
  const result = JSON.parse(json) as CompactResult;
  const structured = raw.structuredContent as unknown as CompactResult;
  if (JSON.stringify(structured) !== json) throw new Error('structuredContent and text disagree');
  return { result, isError: raw.isError === true, text };
}

/** A checksum of every table the server could touch, plus the list of relations, roles and settings. */
export async function databaseChecksum(db: Database): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const table of RETAIL_TABLES) {
    const rows = await db.ownerQuery(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM retail.${table} t`);
    sums[table] = String(rows.rows[0]?.[0]);
  }
  for (const table of ['zava_private.context_key', 'zava_private.regional_managers', 'zava_meta.schema_migrations']) {
    const rows = await db.ownerQuery(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ${table} t`);
    sums[table] = String(rows.rows[0]?.[0]);
  }
  const relations = await db.ownerQuery(
    `SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY n.nspname, c.relname)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'`,
  );
  sums.relations = String(relations.rows[0]?.[0]);
  const functions = await db.ownerQuery(
    `SELECT string_agg(n.nspname || '.' || p.proname, ',' ORDER BY n.nspname, p.proname)
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`,
  );
  sums.functions = String(functions.rows[0]?.[0]);
  const roles = await db.ownerQuery(`SELECT string_agg(rolname || ':' || rolsuper::text || rolbypassrls::text, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'zava%'`);
  sums.roles = String(roles.rows[0]?.[0]);
  return sums;
}
