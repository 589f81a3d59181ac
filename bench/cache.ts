// Result cache benchmark, `npm run bench:cache` (issue 12): a repeated head-office dashboard query (revenue and
// order lines per store and year over every order line) through execute_sales_query, end to end over MCP
// Streamable HTTP, against two `zava-mcp serve` processes on one seeded PostgreSQL database: one with
// ZAVA_CACHE=off, one with the cache on (memory tier; answers stored in the first call). C concurrent SDK clients
// each call the same statement for a fixed time; throughput (calls/s) and p50/p95 latency per mode. Goal: the
// cached throughput at least 10× the uncached one. The result is written into BENCHMARKS.md.
// Usage: npm run bench:cache -- [--customers N (default 50000)] [--clients C (default 4)] [--seconds S (default 20)]
// PostgreSQL at ZAVA_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/postgres.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { prepareSchema } from '../src/cli/migrate.js';
import { seedDatabase } from '../src/data/seed.js';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { openDatabase } from '../src/db/open.js';
import { loadConfig } from '../src/infra/config.js';
import { ZAVA_MAIN } from './peers.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const CUSTOMERS = option('customers', 50_000);
const CLIENTS = option('clients', 4);
const SECONDS = option('seconds', 20);
const PG_ADMIN = process.env.ZAVA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const BENCHMARKS = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const HEADING = '## Result cache (`npm run bench:cache`, issue 12)';

const DASHBOARD_SQL =
  "SELECT s.store_name, extract(year FROM o.order_date)::int AS year, sum(oi.total_amount) AS revenue, count(*) AS lines " +
  'FROM retail.order_items oi JOIN retail.orders o ON o.order_id = oi.order_id JOIN retail.stores s ON s.store_id = oi.store_id ' +
  'GROUP BY 1, 2 ORDER BY 1, 2';

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** `zava-mcp serve` on a free port, with no embedding provider (the dashboard needs none). */
async function serve(databaseUrl: string, cache: 'on' | 'off'): Promise<{ url: string; child: ChildProcess }> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? tmpdir(),
    ZAVA_CACHE: cache,
    ZAVA_RATE_LIMIT_PER_MINUTE: '0',
    ZAVA_AUDIT: 'off',
    ZAVA_EMBEDDING_PROVIDER: 'ollama',
    OLLAMA_HOST: 'http://127.0.0.1:9',
    ZAVA_EMBEDDING_MAX_RETRIES: '0',
    ZAVA_LOG_LEVEL: 'info',
    ZAVA_LOG_FORMAT: 'json',
  };
  const child = spawn(process.execPath, [ZAVA_MAIN, 'serve', '--database-url', databaseUrl, '--host', '127.0.0.1', '--port', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'], cwd: tmpdir() });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 120_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/.exec(stderr);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return { url, child };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Round {
  readonly calls: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p95: number;
}

/** C clients, each calling the dashboard back to back for SECONDS; every answer is checked against `expected`. */
async function round(url: string, expected: string | undefined): Promise<Round> {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const client = new Client({ name: 'zava-bench-cache', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { 'x-rls-user-id': HEAD_OFFICE_USER_ID } } }));
      return client;
    }),
  );
  const call = async (client: Client) => {
    if (expected === undefined) {
      // The floor: a tool that reads nothing (get_current_utc_date), through the same transport and pipeline.
      const result = (await client.callTool({ name: 'get_current_utc_date', arguments: {} })) as CallToolResult;
      if (result.isError) throw new Error(`unexpected answer: ${JSON.stringify(result).slice(0, 300)}`);
      return;
    }
    const result = (await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: DASHBOARD_SQL } })) as CallToolResult;
    const rows = JSON.stringify((result.structuredContent as { r?: unknown } | undefined)?.r);
    if (result.isError || rows !== expected) throw new Error(`unexpected answer: ${JSON.stringify(result).slice(0, 300)}`);
  };
  try {
    await Promise.all(clients.map(call)); // warm-up (and, with the cache on, the one computed answer)
    const samples: number[] = [];
    const started = performance.now();
    const until = started + SECONDS * 1000;
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < until) {
          const t0 = performance.now();
          await call(client);
          samples.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    samples.sort((a, b) => a - b);
    return { calls: samples.length, perSecond: samples.length / elapsed, p50: percentile(samples, 50), p95: percentile(samples, 95) };
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

async function main(): Promise<void> {
  const name = `zava_bench_cache_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const servers: ChildProcess[] = [];
  try {
    const config = loadConfig({ databaseUrl }, {});
    const db = await openDatabase(config);
    let lines: number;
    let expected: string | undefined;
    try {
      await prepareSchema(db, config);
      await seedDatabase(db, { customers: CUSTOMERS, seed: 1, endDate: '2026-10-31' });
      lines = Number((await db.ownerQuery('SELECT count(*) FROM retail.order_items')).rows[0]![0]);
    } finally {
      await db.close();
    }
    const loadBefore = loadavg();
    const results: Record<'off' | 'on', Round> = {} as never;
    let floor: Round | undefined;
    for (const mode of ['off', 'on'] as const) {
      const server = await serve(databaseUrl, mode);
      servers.push(server.child);
      // The answer every call must give: the first one, computed by the server uncached.
      const probe = new Client({ name: 'zava-bench-cache', version: '1.0.0' });
      await probe.connect(new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { 'x-rls-user-id': HEAD_OFFICE_USER_ID } } }));
      const first = (await probe.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: DASHBOARD_SQL } })) as CallToolResult;
      await probe.close();
      if (first.isError) throw new Error(`the dashboard query failed: ${JSON.stringify(first.content)}`);
      expected ??= JSON.stringify((first.structuredContent as { r: unknown }).r);
      results[mode] = await round(server.url, expected!);
      if (mode === 'on') floor = await round(server.url, undefined);
      server.child.kill('SIGTERM');
      process.stdout.write(`cache ${mode}: ${results[mode].perSecond.toFixed(1)} calls/s, p50 ${results[mode].p50.toFixed(1)} ms, p95 ${results[mode].p95.toFixed(1)} ms (${results[mode].calls} calls)\n`);
    }
    const loadAfter = loadavg();
    const ratio = results.on.perSecond / results.off.perSecond;
    process.stdout.write(`cached ÷ uncached throughput: ${ratio.toFixed(1)}× (goal ≥ 10×)\n`);
    process.stdout.write(`floor (get_current_utc_date): ${floor!.perSecond.toFixed(1)} calls/s, p50 ${floor!.p50.toFixed(1)} ms, p95 ${floor!.p95.toFixed(1)} ms\n`);
    const line = (r: Round, label: string) => `| ${label} | ${r.calls} | ${r.perSecond.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} |`;
    const row = (mode: 'off' | 'on', label: string) => line(results[mode], label);
    const section = [
      HEADING,
      '',
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} cores, load average ${loadBefore.map((l) => l.toFixed(1)).join(' / ')} before and ${loadAfter.map((l) => l.toFixed(1)).join(' / ')} after (1/5/15 min; the machine is shared).`,
      `Method: one PostgreSQL database on the local service seeded with ${CUSTOMERS.toLocaleString('en-US')} customers (${lines.toLocaleString('en-US')} order lines); two \`zava-mcp serve\` processes in turn, ZAVA_CACHE=off and on (memory tier; audit and rate limits off in both); ${CLIENTS} concurrent MCP SDK clients over Streamable HTTP as head office, each calling execute_sales_query back to back for ${SECONDS} s with the same dashboard statement (revenue and order lines per store and year over every order line, ${(JSON.parse(expected!) as unknown[]).length} rows), every answer checked against the first. With the cache on, the newest data version comes from the server's LISTEN on the primary (re-read at least every second), so a hit costs no database work; the floor row is a tool that reads nothing, through the same transport and pipeline, measured right after on the cached server.`,
      '',
      '| mode | calls | calls/s | p50 ms | p95 ms |',
      '| --- | --- | --- | --- | --- |',
      row('off', 'uncached (ZAVA_CACHE=off)'),
      row('on', 'cached (memory tier)'),
      line(floor!, 'floor: get_current_utc_date on the cached server (no database, not cached)'),
      '',
      `Cached throughput ÷ uncached: **${ratio.toFixed(1)}×** (goal ≥ 10×).`,
      '',
    ].join('\n');
    writeSection(section);
  } finally {
    for (const child of servers) if (child.exitCode === null) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

/** Replaces this benchmark's section of BENCHMARKS.md (or appends it). */
function writeSection(section: string): void {
  const text = readFileSync(BENCHMARKS, 'utf8');
  const start = text.indexOf(HEADING);
  if (start < 0) {
    writeFileSync(BENCHMARKS, `${text.trimEnd()}\n\n${section}`);
    return;
  }
  const next = text.indexOf('\n## ', start + HEADING.length);
  writeFileSync(BENCHMARKS, `${text.slice(0, start)}${section}${next < 0 ? '' : `\n${text.slice(next + 1)}`}`);
}

await main();
