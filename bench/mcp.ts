// MCP server benchmark (issue 3), `npm run bench`:
//   (a) execute_sales_query for a small aggregate over Streamable HTTP (official SDK client → spawned server →
//       PostgreSQL service at reference size) against the same query through `pg` directly — as the owner (one
//       plain query) and as the query role inside the same kind of transaction the server uses (BEGIN READ ONLY,
//       signed RLS context, statement timeout, ROLLBACK; RESET ALL) — interleaved call by call in one run;
//       target: MCP median ≤ 1.5 × direct pg.
//   (b) throughput of get_current_utc_date and of a cached get_multiple_table_schemas at 1, 8 and 32 concurrent
//       clients (each its own SDK client over HTTP), and the server's peak RSS under that load (VmHWM, reset
//       through /proc/<pid>/clear_refs before the load).
// Results are printed and written to BENCHMARKS.md, section "## MCP server (npm run bench)".
// Usage: npm run bench [-- --customers N] [--calls N] [--seconds S]   (PostgreSQL at ZAVA_BENCH_PG_URL or 127.0.0.1:5432)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { loadConfig } from '../src/infra/config.js';
import { openDatabase } from '../src/db/open.js';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';

// The SDK client adds an abort listener per request to its transport's signal; thousands of calls per client
// trip Node's leak warning. It is the client's, not the server's: keep the output readable.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'MaxListenersExceededWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const CUSTOMERS = flag('customers', 100_000);
const CALLS = flag('calls', 400);
const WARMUP = 50;
const SECONDS = flag('seconds', 5);
const CONCURRENCY = [1, 8, 32];
const ADMIN_URL = process.env.ZAVA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const BENCHMARKS = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const SECTION = '## MCP server (npm run bench)';
/** Small aggregates (8 rows each, an index range scan): orders per store in 2026 (~36,000 orders) and in its last month (~3,000). */
const QUERIES = [
  { label: 'orders per store since 2026-01-01', sql: "SELECT s.store_name, count(*) AS orders FROM retail.orders o JOIN retail.stores s USING (store_id) WHERE o.order_date >= date '2026-01-01' GROUP BY 1" },
  { label: 'orders per store since 2026-12-01', sql: "SELECT s.store_name, count(*) AS orders FROM retail.orders o JOIN retail.stores s USING (store_id) WHERE o.order_date >= date '2026-12-01' GROUP BY 1" },
];
const SCHEMA_TABLES = ['retail.orders', 'retail.order_items', 'retail.stores'];

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summary(samples: number[]): { median: number; p95: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), p95: percentile(sorted, 95), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Resets VmHWM of a process we own to its current RSS (Linux: write 5 to /proc/<pid>/clear_refs). */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function startServer(url: string): Promise<{ child: ChildProcess; mcpUrl: string; stop(): Promise<void> }> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('ZAVA_') && key !== 'DATABASE_URL') env[key] = value;
  const child = spawn(process.execPath, [MAIN, 'serve', '--database-url', url, '--host', '127.0.0.1', '--port', '0'], {
    env: { ...env, ZAVA_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const mcpUrl = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return {
    child,
    mcpUrl,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'zava-mcp-bench', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { 'x-rls-user-id': HEAD_OFFICE_USER_ID } } }));
  return client;
}

async function callTool(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content).slice(0, 300)}`);
  return result;
}

interface Throughput {
  tool: string;
  clients: number;
  calls: number;
  perSecond: number;
  median: number;
  p95: number;
}

async function throughput(url: string, tool: string, args: Record<string, unknown>, clients: number): Promise<Throughput> {
  const sdk = await Promise.all(Array.from({ length: clients }, () => connect(url)));
  try {
    for (const client of sdk) for (let i = 0; i < 5; i++) await callTool(client, tool, args); // warm-up
    const latencies: number[] = [];
    const started = performance.now();
    const deadline = started + SECONDS * 1000;
    await Promise.all(
      sdk.map(async (client) => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          await callTool(client, tool, args);
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const { median, p95 } = summary(latencies);
    return { tool, clients, calls: latencies.length, perSecond: latencies.length / elapsed, median, p95 };
  } finally {
    await Promise.all(sdk.map((client) => client.close().catch(() => undefined)));
  }
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

async function main(): Promise<void> {
  const name = `zava_bench_mcp_${process.pid}`;
  await admin(`CREATE DATABASE ${name}`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${name}`;
  const url = dbUrl.toString();
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  const owner = new pg.Client({ connectionString: url });
  const config = loadConfig({ databaseUrl: url }, {});
  const db = await openDatabase(config);
  try {
    process.stderr.write(`Seeding ${name} with ${CUSTOMERS.toLocaleString('en-US')} customers (zava-mcp db seed)…\n`);
    const seeded = spawnSync(process.execPath, [MAIN, 'db', 'seed', '--database-url', url, '--customers', String(CUSTOMERS)], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    if (seeded.status !== 0) throw new Error(`seeding failed:\n${seeded.stderr}`);
    await db.prepare();
    await owner.connect();

    server = await startServer(url);
    const pid = server.child.pid!;
    const startupPeak = procStatus(pid, 'VmHWM');
    process.stderr.write(`Server ${server.mcpUrl} (pid ${pid}) ready; start-up peak RSS ${startupPeak.toFixed(0)} MiB\n`);

    // (a) Latency, interleaved call by call: MCP, pg as owner, pg as the query role in the server's transaction.
    const client = await connect(server.mcpUrl);
    const identity = await db.resolveIdentity(HEAD_OFFICE_USER_ID);
    const latencyRows: string[] = [];
    const ratios: string[] = [];
    for (const query of QUERIES) {
      const viaMcp = async () => {
        const result = await callTool(client, 'execute_sales_query', { postgresql_query: query.sql });
        return (result.structuredContent as { n: number }).n;
      };
      const viaOwner = async () => (await owner.query({ text: query.sql, rowMode: 'array' })).rowCount ?? 0;
      const viaRole = async () => (await db.withIdentity(identity, (session) => session.query(query.sql))).rowCount;
      const rows = [await viaMcp(), await viaOwner(), await viaRole()];
      if (new Set(rows).size !== 1 || rows[0] === 0) throw new Error(`the three paths disagree on the answer: ${rows.join(' / ')} rows`);
      const paths = [
        { label: '`execute_sales_query` over Streamable HTTP (SDK client → server → query role)', run: viaMcp, samples: [] as number[] },
        { label: '`pg` directly, as the owner (one plain query)', run: viaOwner, samples: [] as number[] },
        { label: '`pg` as the query role in the server\'s transaction (BEGIN READ ONLY, signed context, cursor, ROLLBACK; RESET ALL)', run: viaRole, samples: [] as number[] },
      ];
      for (let i = 0; i < WARMUP + CALLS; i++) {
        // Rotate the order each round so no path always runs right after another.
        for (let k = 0; k < paths.length; k++) {
          const path = paths[(i + k) % paths.length]!;
          const t0 = performance.now();
          await path.run();
          if (i >= WARMUP) path.samples.push(performance.now() - t0);
        }
      }
      const [mcp, direct, role] = paths.map((p) => ({ label: p.label, ...summary(p.samples) })) as Array<{ label: string } & ReturnType<typeof summary>>;
      for (const l of [mcp!, direct!, role!]) latencyRows.push(`| ${query.label} | ${l.label} | ${fmt(l.median)} | ${fmt(l.p95)} | ${fmt(l.mean)} |`);
      const ratio = mcp!.median / direct!.median;
      ratios.push(
        `${query.label}: MCP / direct pg (owner) median = **${ratio.toFixed(2)}×** (target ≤ 1.5×: ${ratio <= 1.5 ? 'met' : 'missed'}); ` +
          `MCP / pg as the query role in the same transaction = ${(mcp!.median / role!.median).toFixed(2)}×.`,
      );
      process.stderr.write(`${ratios.at(-1)}\n`);
    }
    await client.close();

    // (b) Throughput at 1, 8, 32 clients, and the peak RSS under that load.
    const peakReset = resetPeak(pid);
    const rssBefore = procStatus(pid, 'VmRSS');
    const tput: Throughput[] = [];
    for (const [tool, args] of [
      ['get_current_utc_date', {}],
      ['get_multiple_table_schemas', { table_names: SCHEMA_TABLES }],
    ] as const) {
      for (const clients of CONCURRENCY) {
        const result = await throughput(server.mcpUrl, tool, args, clients);
        tput.push(result);
        process.stderr.write(`${tool} × ${clients}: ${result.perSecond.toFixed(0)} calls/s\n`);
      }
    }
    const loadPeak = procStatus(pid, 'VmHWM');
    const rssAfter = procStatus(pid, 'VmRSS');

    const date = new Date().toISOString().slice(0, 10);
    const lines = [
      SECTION,
      '',
      `Reference dataset (${CUSTOMERS.toLocaleString('en-US')} customers, seed 42) in a fresh database on the PostgreSQL service; the server is`,
      '`zava-mcp serve --database-url …` spawned by the script (info logging on), the client the official SDK',
      `(\`StreamableHTTPClientTransport\`) acting as head office, on the same ${cpus().length}-core machine. Run ${date}.`,
      '',
      `**(a) Latency of a small aggregate**, ${CALLS} calls per path after ${WARMUP} warm-up calls, the three paths interleaved call by`,
      'call (one SDK client with HTTP keep-alive; one pg client; the data layer\'s query pool). The queries (8 rows each):',
      '',
      '```sql',
      ...QUERIES.map((q) => q.sql),
      '```',
      '',
      '| query | path | median | p95 | mean |',
      '|---|---|---|---|---|',
      ...latencyRows,
      '',
      ...ratios.map((r) => `- ${r}`),
      '',
      `**(b) Throughput** (${SECONDS} s per row; every client its own SDK client and HTTP connection; head office; the schema call`,
      `asks for ${SCHEMA_TABLES.join(', ')} and is served from the server's cache):`,
      '',
      '| tool | clients | calls/s | median | p95 |',
      '|---|---|---|---|---|',
      ...tput.map((r) => `| \`${r.tool}\` | ${r.clients} | ${r.perSecond.toFixed(0)} | ${fmt(r.median)} | ${fmt(r.p95)} |`),
      '',
      'What the profile showed, and what changed: a CPU profile of the server under sequential `get_current_utc_date` and',
      '`execute_sales_query` calls had about 15% of its busy time in building a `McpServer` per request (the stateless',
      'pattern): a fresh Ajv JSON-schema validator and the zod schemas of four tools, every time. The HTTP server now keeps',
      'finished servers in a small pool and reuses them; tools read the caller\'s identity from their own request\'s',
      '`x-rls-user-id` header (the SDK\'s `requestInfo`), never from the server object, so a reused server carries nothing',
      'from one caller to the next (the 50-concurrent-mixed-identities test covers it). That took `get_current_utc_date` from',
      '3.8 to 2.3 ms median and the small-database `execute_sales_query` from 9.0 to 7.8 ms. What is left: socket writes',
      '(`writev` to the client, `write` to PostgreSQL) are the largest item in the server profile on this VM; the SQL',
      'guard costs about 0.2 ms median; the query role\'s transaction adds four round trips to the owner\'s one (the third',
      'row of each query); the SDK client and the HTTP exchange about 2 ms. So the target holds for the 2026 aggregate',
      '(about 22 ms of PostgreSQL work) and is missed for the 3.5 ms December aggregate, where fixed per-call costs of',
      'about 6 ms dominate. Logging was not a factor (nothing is logged per call at `info`).',
      '',
      `Server memory: RSS ${rssBefore.toFixed(0)} MiB before the load, ${rssAfter.toFixed(0)} MiB after; **peak RSS under the load ${loadPeak.toFixed(0)} MiB**` +
        `${peakReset ? ' (VmHWM reset before the load)' : ' (VmHWM since start; reset not permitted)'}; peak during start-up (migrate, embedding check) ${startupPeak.toFixed(0)} MiB.`,
      `Machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; client and server share the cores.`,
      '',
    ];
    const section = lines.join('\n');
    process.stdout.write(`\n${section}\n`);
    const current = readFileSync(BENCHMARKS, 'utf8');
    const start = current.indexOf(SECTION);
    let next: string;
    if (start < 0) next = `${current.trimEnd()}\n\n${section}`;
    else {
      const end = current.indexOf('\n## ', start + SECTION.length);
      next = `${current.slice(0, start)}${section}${end < 0 ? '' : `\n${current.slice(end + 1)}`}`;
    }
    writeFileSync(BENCHMARKS, next.endsWith('\n') ? next : `${next}\n`);
    process.stderr.write(`Written to ${BENCHMARKS}\n`);
  } finally {
    await server?.stop();
    await owner.end().catch(() => undefined);
    await db.close();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
