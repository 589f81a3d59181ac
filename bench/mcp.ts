// MCP server benchmark, `npm run bench` (issues 3, 9 and 10). One run, one fresh database on the PostgreSQL
// service, every target side by side (see peers.ts): raw pg, zava-mcp's identity transaction, server-postgres
// (stdio), dbhub (HTTP), zava-mcp over HTTP and stdio.
//   peers:   p50/p95 of a one-row lookup, a small aggregate, the top-20 revenue query over all order lines and
//            get_current_utc_date (zava-mcp only), the targets interleaved call by call; then calls/s of the
//            one-row lookup at 8 concurrent clients per target. Repeated in --rounds rounds (round-robin order),
//            reported as the median of the rounds, next to the goals of issues 9 and 10. With --back-to-back each
//            target makes all its calls of a query in one block instead (the order rotating per round): how each
//            answers on its own, without the others' processes running between its calls (never written).
//   load:    zava-mcp over HTTP alone: get_current_utc_date and a cached schema call at 1, 8 and 32 clients, and
//            the server's peak RSS under that load (issue 3).
//   profile: (--profile) zava-mcp over HTTP, then over stdio, under `node --cpu-prof`, one-row lookups from 8
//            clients; the top self-time functions and packages of the timed window.
// The results are printed, and written to BENCHMARKS.md's section "## MCP server (npm run bench)" by a full run
// (peers and load, every target, 3 or more rounds, a fresh database at the reference size) or with --write.
// Usage: npm run bench -- [--customers N] [--rounds N] [--calls N] [--seconds S] [--clients N]
//          [--only peers,load,profile] [--targets pg,pg-identity,server-postgres,dbhub,zava-http,zava-stdio]
//          [--profile] [--back-to-back] [--write | --no-write] [--db NAME (an existing seeded database; kept)] [--keep]
//          [--dbhub-readonly (dbhub read-only with a 1,000-row cap, as zava-mcp; default: dbhub's defaults)]
// PostgreSQL at ZAVA_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/postgres.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/infra/config.js';
import { openDatabase } from '../src/db/open.js';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { DEFAULT_SEED } from '../src/cli/db.js';
import { summarizeProfile, type ProfileSummary, type Window } from './cpu-profile.js';
import {
  connectHttp,
  startTarget,
  startZavaHttp,
  TARGET_IDS,
  TARGET_LABELS,
  ZAVA_HEADERS,
  ZAVA_MAIN,
  type Caller,
  type Target,
  type TargetContext,
  type TargetId,
} from './peers.js';

// The SDK client adds an abort listener per request to its transport's signal; thousands of calls per client
// trip Node's leak warning. It is the client's, not the server's: keep the output readable.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'MaxListenersExceededWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

// ---- command line ----------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  // The usage is the header comment of this file.
  const source = readFileSync(fileURLToPath(new URL('../../bench/mcp.ts', import.meta.url)), 'utf8');
  process.stdout.write(`${source.split('\nimport ')[0]!.replace(/^\/\/ ?/gm, '')}\n`);
  process.exit(0);
}
function option(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const value = argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  return value;
}
function count(name: string, fallback: number): number {
  const value = option(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got ${value})`);
  return n;
}
function list<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const value = option(name);
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((s) => s.trim()) as T[];
  const unknown = items.filter((item) => !allowed.includes(item));
  if (unknown.length > 0) throw new Error(`--${name}: unknown ${unknown.join(', ')} (choose from ${allowed.join(', ')})`);
  return items;
}

const REFERENCE_CUSTOMERS = 100_000;
const PARTS = ['peers', 'load', 'profile'] as const;
type Part = (typeof PARTS)[number];

const CUSTOMERS = count('customers', REFERENCE_CUSTOMERS);
const ROUNDS = count('rounds', 3);
const CALLS = count('calls', 400);
const SECONDS = count('seconds', 5);
const CLIENTS = count('clients', 8);
const parts = new Set<Part>(list('only', PARTS, ['peers', 'load']));
if (argv.includes('--profile')) parts.add('profile');
const targetIds = list('targets', TARGET_IDS, TARGET_IDS);
const EXISTING_DB = option('db');
const DBHUB_READONLY = argv.includes('--dbhub-readonly');
const BACK_TO_BACK = argv.includes('--back-to-back');
const KEEP = argv.includes('--keep') || EXISTING_DB !== undefined;
const FULL = !BACK_TO_BACK && EXISTING_DB === undefined && CUSTOMERS === REFERENCE_CUSTOMERS && ROUNDS >= 3 && parts.has('peers') && parts.has('load') && targetIds.length === TARGET_IDS.length;
const WRITE = argv.includes('--no-write') || BACK_TO_BACK ? false : argv.includes('--write') || FULL;

const ADMIN_URL = process.env.ZAVA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const BENCHMARKS = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
const SECTION = '## MCP server (npm run bench)';
const LOAD_CONCURRENCY = [1, 8, 32];
const SCHEMA_TABLES = ['retail.orders', 'retail.order_items', 'retail.stores'];

type QueryId = 'lookup' | 'aggregate' | 'top20' | 'utc';
interface Query {
  readonly id: QueryId;
  readonly label: string;
  /** Absent for get_current_utc_date, which only zava-mcp has. */
  readonly sql?: string;
  /** Calls per target per round: the top-20 query takes 50–150 ms, so it gets fewer. */
  readonly calls: number;
}
const QUERIES: readonly Query[] = [
  { id: 'lookup', label: 'one-row lookup', sql: 'SELECT product_name FROM retail.products WHERE product_id = 42', calls: CALLS },
  {
    id: 'aggregate',
    label: 'small aggregate (orders per store, one month)',
    // A month in the past, so the answer does not depend on the day the data was generated up to.
    sql: "SELECT s.store_name, count(*) AS orders FROM retail.orders o JOIN retail.stores s USING (store_id) WHERE o.order_date >= date '2025-12-01' AND o.order_date < date '2026-01-01' GROUP BY 1",
    calls: Math.max(5, Math.round(CALLS / 2)),
  },
  {
    id: 'top20',
    label: 'top-20 products by revenue over all order lines',
    sql: 'SELECT p.product_name, sum(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 20',
    calls: Math.max(3, Math.round(CALLS / 10)),
  },
  { id: 'utc', label: '`get_current_utc_date`', calls: CALLS },
];

// ---- statistics ------------------------------------------------------------------------------------------

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
interface Latency {
  readonly p50: number;
  readonly p95: number;
}
function latency(samples: readonly number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
}
const median = (values: readonly number[]): number => percentile([...values].sort((a, b) => a - b), 50);

const ms = (value: number): string => `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
const perSecond = (value: number): string => Math.round(value).toLocaleString('en-US');

// ---- measurement -----------------------------------------------------------------------------------------

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

function run(caller: Caller, query: Query): Promise<unknown> {
  if (query.sql !== undefined) return caller.query(query.sql);
  if (!caller.utcDate) throw new Error('this target has no get_current_utc_date');
  return caller.utcDate();
}

/** Every target must give the same answer (the first column of every row, as raw pg sees it) before it is timed. */
async function checkAnswers(callers: ReadonlyMap<TargetId, Caller>, owner: pg.Client): Promise<void> {
  for (const query of QUERIES) {
    if (query.sql === undefined) continue;
    const expected = (await owner.query({ text: query.sql, rowMode: 'array' })).rows.map((row: unknown[]) => JSON.stringify(String(row[0])).slice(1, -1));
    if (expected.length === 0) throw new Error(`${query.label} returns no rows on this dataset`);
    for (const [id, caller] of callers) {
      const answer = await caller.query(query.sql);
      const missing = expected.filter((value) => !answer.includes(value));
      if (missing.length > 0) throw new Error(`${id} answers ${query.label} without ${missing.slice(0, 3).join(', ')}: ${answer.slice(0, 300)}`);
    }
  }
}

/** One round of latency: for each query, every target that has it, interleaved call by call in rotating order (--back-to-back: in blocks). */
async function latencyRound(callers: ReadonlyMap<TargetId, Caller>, warmUp: boolean, round: number): Promise<Map<QueryId, Map<TargetId, Latency>>> {
  const result = new Map<QueryId, Map<TargetId, Latency>>();
  for (const query of QUERIES) {
    const active = [...callers].filter(([, caller]) => query.sql !== undefined || caller.utcDate !== undefined);
    if (active.length === 0) continue;
    const samples = new Map<TargetId, number[]>(active.map(([id]) => [id, []]));
    const warm = warmUp ? Math.max(2, Math.round(query.calls / 8)) : 0;
    if (BACK_TO_BACK) {
      for (let k = 0; k < active.length; k++) {
        const [id, caller] = active[(round + k) % active.length]!;
        for (let i = 0; i < Math.max(warm, 20) + query.calls; i++) {
          const t0 = performance.now();
          await run(caller, query);
          if (i >= Math.max(warm, 20)) samples.get(id)!.push(performance.now() - t0);
        }
      }
      result.set(query.id, new Map([...samples].map(([id, s]) => [id, latency(s)])));
      continue;
    }
    for (let i = 0; i < warm + query.calls; i++) {
      for (let k = 0; k < active.length; k++) {
        const [id, caller] = active[(i + k) % active.length]!;
        const t0 = performance.now();
        await run(caller, query);
        if (i >= warm) samples.get(id)!.push(performance.now() - t0);
      }
    }
    result.set(query.id, new Map([...samples].map(([id, s]) => [id, latency(s)])));
  }
  return result;
}

interface Throughput {
  readonly calls: number;
  readonly perSecond: number;
  readonly latency: Latency;
}

/** `clients` callers calling `call` back to back for SECONDS seconds (after 5 warm-up calls each). */
async function throughput(
  callers: readonly Caller[],
  call: (caller: Caller) => Promise<unknown>,
  timed?: (fromNs: bigint, toNs: bigint) => void,
): Promise<Throughput> {
  for (const caller of callers) for (let i = 0; i < 5; i++) await call(caller);
  const samples: number[] = [];
  const fromNs = process.hrtime.bigint();
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    callers.map(async (caller) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await call(caller);
        samples.push(performance.now() - t0);
      }
    }),
  );
  timed?.(fromNs, process.hrtime.bigint());
  return { calls: samples.length, perSecond: samples.length / ((performance.now() - started) / 1000), latency: latency(samples) };
}

async function withCallers<T>(open: () => Promise<Caller>, n: number, work: (callers: Caller[]) => Promise<T>): Promise<T> {
  const callers = await Promise.all(Array.from({ length: n }, open));
  try {
    return await work(callers);
  } finally {
    await Promise.all(callers.map((caller) => caller.close().catch(() => undefined)));
  }
}

interface PeersResult {
  /** Per round: query → target → p50/p95. */
  readonly latency: Map<QueryId, Map<TargetId, Latency>>[];
  /** Per round: target → one-row lookups at CLIENTS clients. */
  readonly throughput: Map<TargetId, Throughput>[];
  /** Peak RSS (MiB) of each server process over the whole side-by-side run. */
  readonly peakRss: Map<TargetId, number>;
}

async function peers(targets: readonly Target[], owner: pg.Client): Promise<PeersResult> {
  const callers = new Map<TargetId, Caller>();
  for (const target of targets) callers.set(target.id, await target.caller());
  const result: PeersResult = { latency: [], throughput: [], peakRss: new Map() };
  const lookup = QUERIES.find((q) => q.id === 'lookup')!;
  try {
    await checkAnswers(callers, owner);
    for (let round = 0; round < ROUNDS; round++) {
      process.stderr.write(`Round ${round + 1}/${ROUNDS}: latency…\n`);
      result.latency.push(await latencyRound(callers, round === 0, round));
      const tput = new Map<TargetId, Throughput>();
      // Rotate which target goes first so that a slow patch of the machine does not always hit the same one.
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(round + k) % targets.length]!;
        const r = await withCallers(() => target.caller(), CLIENTS, (list) => throughput(list, (caller) => run(caller, lookup)));
        tput.set(target.id, r);
        process.stderr.write(`  ${target.id}: ${perSecond(r.perSecond)} one-row calls/s at ${CLIENTS} clients\n`);
      }
      result.throughput.push(tput);
    }
    for (const target of targets) if (target.pid !== undefined) result.peakRss.set(target.id, procStatus(target.pid, 'VmHWM'));
  } finally {
    await Promise.all([...callers.values()].map((caller) => caller.close().catch(() => undefined)));
  }
  return result;
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

interface LoadResult {
  readonly rows: { tool: string; clients: number; result: Throughput }[];
  readonly startupPeak: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly loadPeak: number;
  readonly peakReset: boolean;
}

/** zava-mcp over HTTP alone: a fresh server (so start-up peak and RSS are its own), tools at 1, 8, 32 clients. */
async function load(databaseUrl: string): Promise<LoadResult> {
  const server = await startZavaHttp(databaseUrl);
  try {
    const pid = server.child.pid!;
    const startupPeak = procStatus(pid, 'VmHWM');
    const peakReset = resetPeak(pid);
    const rssBefore = procStatus(pid, 'VmRSS');
    const rows: LoadResult['rows'] = [];
    for (const [tool, args] of [
      ['get_current_utc_date', {}],
      ['get_multiple_table_schemas', { table_names: SCHEMA_TABLES }],
    ] as const) {
      for (const clients of LOAD_CONCURRENCY) {
        const result = await withCallers(
          async () => {
            const client = await connectHttp(server.mcpUrl, ZAVA_HEADERS);
            return {
              query: async () => {
                const r = await client.callTool({ name: tool, arguments: args });
                if (r.isError) throw new Error(`${tool} failed: ${JSON.stringify(r.content).slice(0, 300)}`);
                return '';
              },
              close: () => client.close(),
            } satisfies Caller;
          },
          clients,
          (list) => throughput(list, (caller) => caller.query('')),
        );
        rows.push({ tool, clients, result });
        process.stderr.write(`  ${tool} × ${clients}: ${perSecond(result.perSecond)} calls/s\n`);
      }
    }
    return { rows, startupPeak, rssBefore, rssAfter: procStatus(pid, 'VmRSS'), loadPeak: procStatus(pid, 'VmHWM'), peakReset };
  } finally {
    await server.stop();
  }
}

interface Profile {
  readonly id: 'zava-http' | 'zava-stdio';
  readonly calls: number;
  readonly summary: ProfileSummary;
}

/** A zava-mcp server under --cpu-prof while CLIENTS clients send one-row lookups; its self time, summarized. */
async function profile(id: Profile['id'], context: TargetContext): Promise<Profile> {
  const dir = mkdtempSync(path.join(tmpdir(), 'zava-bench-prof-'));
  try {
    const target = await startTarget(id, context, ['--cpu-prof', '--cpu-prof-dir', dir]);
    let calls = 0;
    // Only the timed calls count: start-up (migrations, the local search model) would otherwise dominate.
    let window: Window | undefined;
    try {
      const sql = QUERIES.find((q) => q.id === 'lookup')!.sql!;
      const timed = (fromNs: bigint, toNs: bigint) => (window = { fromNs, toNs });
      calls = (await withCallers(() => target.caller(), CLIENTS, (list) => throughput(list, (caller) => caller.query(sql), timed))).calls;
    } finally {
      await target.stop(); // the profile is written when the process exits
    }
    const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`${id} wrote no .cpuprofile (did it exit cleanly?)`);
    return { id, calls, summary: summarizeProfile(path.join(dir, file), window) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- report ----------------------------------------------------------------------------------------------

/** Raw pg in the issues' own measurement (issue 9's table): the machine their absolute goals were set on. */
const ISSUE_RAW_PG_P50_MS = 0.09;
const ISSUE_RAW_PG_PER_SECOND = 22_000;

interface Goal {
  readonly what: string;
  readonly goal: string;
  /** The measured value, as shown; undefined when the run did not measure it. */
  readonly value: number | undefined;
  readonly show: (value: number) => string;
  readonly met: (value: number) => boolean;
}

/**
 * Issues 9 and 10 set their absolute goals on a machine where raw pg answered the one-row lookup in 0.09 ms and
 * 22,000 times a second at 8 clients (the issues' own table). Where raw pg itself is several times slower (a
 * virtual machine whose every syscall costs more), those absolute figures cannot be met by anything that talks to
 * PostgreSQL; scaled by how much slower raw pg is here, they show where zava-mcp stands for orientation. The
 * goals themselves are judged unscaled in the table before.
 */
function scaledGoals(
  rawP50: number | undefined,
  rawPerSecond: number | undefined,
  lat: (query: QueryId, id: TargetId, which: 'p50' | 'p95') => number | undefined,
  httpRates: number[],
): string[] {
  if (rawP50 === undefined || rawPerSecond === undefined) return [];
  const slower = rawP50 / ISSUE_RAW_PG_P50_MS;
  const fewer = rawPerSecond / ISSUE_RAW_PG_PER_SECOND;
  const rows: Array<[string, number, number | undefined, 'max' | 'min', (v: number) => string]> = [
    ['one-row lookup, database part, p50', 0.3 * slower, lat('lookup', 'pg-identity', 'p50'), 'max', ms],
    ['one-row lookup, zava-mcp HTTP p50', 0.8 * slower, lat('lookup', 'zava-http', 'p50'), 'max', ms],
    ['one-row lookup, zava-mcp stdio p50', 0.5 * slower, lat('lookup', 'zava-stdio', 'p50'), 'max', ms],
    ['`get_current_utc_date`, zava-mcp HTTP p50', 0.4 * slower, lat('utc', 'zava-http', 'p50'), 'max', ms],
    [`one-row lookup, zava-mcp HTTP calls/s at ${CLIENTS} clients`, 2500 * fewer, httpRates.length > 0 ? median(httpRates) : undefined, 'min', perSecond],
  ];
  return [
    `The absolute goals were set where raw pg answered the one-row lookup in ${ISSUE_RAW_PG_P50_MS} ms and ${perSecond(ISSUE_RAW_PG_PER_SECOND)} times a`,
    `second at ${CLIENTS} clients; in this run raw pg took ${ms(rawP50)} (${slower.toFixed(1)}× slower) and answered ${perSecond(rawPerSecond)} a second`,
    `(${(1 / fewer).toFixed(1)}× fewer). Scaled by those factors, for orientation only (the goals are judged unscaled above):`,
    '',
    '| measure | goal scaled to this machine | result | |',
    '|---|---|---|---|',
    ...rows
      .filter(([, , value]) => value !== undefined)
      .map(([what, goal, value, kind, show]) => `| ${what} | ${kind === 'max' ? '≤' : '≥'} ${show(goal)} | ${show(value!)} | ${(kind === 'max' ? value! <= goal : value! >= goal) ? 'within' : 'beyond'} |`),
    '',
  ];
}

function report(peersResult: PeersResult | undefined, loadResult: LoadResult | undefined, profiles: readonly Profile[], meta: { started: string; loadBefore: number[]; loadAfter: number[]; seconds: number; customers: number; orderLines: number }): string {
  const ids = TARGET_IDS.filter((id) => targetIds.includes(id));
  /** Median over rounds of a query's p50 or p95 for a target. */
  const lat = (query: QueryId, id: TargetId, which: keyof Latency): number | undefined => {
    const values = peersResult?.latency.map((round) => round.get(query)?.get(id)?.[which]).filter((v): v is number => v !== undefined) ?? [];
    return values.length > 0 ? median(values) : undefined;
  };
  const tputs = (id: TargetId): number[] => peersResult?.throughput.map((round) => round.get(id)?.perSecond).filter((v): v is number => v !== undefined) ?? [];
  const quotient = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined ? a / b : undefined);
  const ratio = (query: QueryId, id: TargetId): number | undefined => quotient(lat(query, id, 'p50'), lat(query, 'pg', 'p50'));
  const times = (v: number): string => `${v.toFixed(2)}×`;

  const lines: string[] = [SECTION, ''];
  lines.push(
    `${meta.customers === REFERENCE_CUSTOMERS ? 'Reference dataset' : '**Not the reference dataset**'} (${meta.customers.toLocaleString('en-US')} customers, ${meta.orderLines.toLocaleString('en-US')} order lines${EXISTING_DB ? '' : `, seed ${DEFAULT_SEED}`}) in ${EXISTING_DB ? 'an existing database' : 'a fresh database'} on the`,
    `PostgreSQL service, run ${meta.started} on ${cpus().length} cores (${(totalmem() / 2 ** 30).toFixed(0)} GiB) shared by the client, the servers and PostgreSQL. Load average`,
    `${meta.loadBefore.map((v) => v.toFixed(1)).join(' / ')} before the run and ${meta.loadAfter.map((v) => v.toFixed(1)).join(' / ')} after (1/5/15 min); the run took ${Math.round(meta.seconds)} s.`,
    '',
  );

  if (peersResult) {
    const n = peersResult.latency.length;
    lines.push(
      `**Side by side** (median of ${n} ${BACK_TO_BACK ? 'back-to-back' : 'interleaved'} round${n === 1 ? '' : 's'}): every MCP target is driven by the official SDK client`,
      '(`@modelcontextprotocol/sdk` `Client`), HTTP targets over `StreamableHTTPClientTransport` with keep-alive, stdio',
      'targets over `StdioClientTransport`. raw pg is one plain query on one connection as the owner; "identity',
      'transaction" is zava-mcp\'s data layer called in process (`withIdentity` as head office: pool checkout, identity',
      'context, the query, cleanup), the database part of a tool call. The peers connect as the owner (no RLS; dbhub',
      `${DBHUB_READONLY ? 'read-only with a 1,000-row cap, from a dbhub.toml' : 'with its defaults: neither read-only nor a row cap'}); zava-mcp serves head office through its`,
      'query role under RLS. In each round every query is called',
      `${QUERIES.map((q) => `${q.calls}×`).join(' / ')} per target (${QUERIES.map((q) => q.id).join(' / ')}), ${BACK_TO_BACK ? 'each target\'s calls in one block, after 20 of warm-up' : 'the targets taking turns call by call'}; then each`,
      `target answers one-row lookups from ${CLIENTS} concurrent clients for ${SECONDS} s (HTTP and raw pg: a connection per client;`,
      `stdio: the server's one connection with ${CLIENTS} calls in flight; the identity transaction: the data layer's pool).`,
      '',
      '```sql',
      ...QUERIES.flatMap((q) => (q.sql ? [`-- ${q.label}`, q.sql] : [])),
      '```',
      '',
      `| query | ${ids.map((id) => TARGET_LABELS[id]).join(' | ')} |`,
      `|---|${ids.map(() => '---|').join('')}`,
    );
    for (const query of QUERIES) {
      for (const which of ['p50', 'p95'] as const) {
        const cells = ids.map((id) => {
          const value = lat(query.id, id, which);
          return value === undefined ? '—' : ms(value);
        });
        if (cells.every((cell) => cell === '—')) continue;
        lines.push(`| ${query.label}, ${which} | ${cells.join(' | ')} |`);
      }
    }
    lines.push(
      `| one-row lookup, calls/s at ${CLIENTS} clients (median, range over rounds) | ${ids
        .map((id) => {
          const values = tputs(id);
          return values.length === 0 ? '—' : `${perSecond(median(values))} (${perSecond(Math.min(...values))}–${perSecond(Math.max(...values))})`;
        })
        .join(' | ')} |`,
      `| server process, peak RSS over the run | ${ids.map((id) => (peersResult.peakRss.has(id) ? `${peersResult.peakRss.get(id)!.toFixed(0)} MiB` : '—')).join(' | ')} |`,
      '',
    );
    const dbPart = lat('lookup', 'pg-identity', 'p50');
    const rest = (['zava-http', 'zava-stdio'] as const).flatMap((id) => {
      const whole = lat('lookup', id, 'p50');
      return whole === undefined || dbPart === undefined ? [] : [`${ms(whole - dbPart)} over ${id === 'zava-http' ? 'HTTP' : 'stdio'}`];
    });
    if (rest.length > 0) {
      // A difference of medians: a guide to where the time goes, not a measurement of the parts.
      lines.push(
        `Where a zava-mcp one-row call's time goes (difference of p50s): the database part ${ms(dbPart!)}; the rest — the SQL`,
        `guard, the MCP protocol layer, the transport and the SDK client — ${rest.join(', ')}.`,
        '',
      );
    }
  }

  const goals: Goal[] = [
    { what: 'one-row lookup, database part (identity transaction), p50', goal: '≤ 0.3 ms', value: lat('lookup', 'pg-identity', 'p50'), show: ms, met: (v) => v <= 0.3 },
    ...(['zava-http', 'zava-stdio'] as const).flatMap((id): Goal[] => [
      { what: `small aggregate, ${TARGET_LABELS[id]} p50 / raw pg p50`, goal: '≤ 1.3×', value: ratio('aggregate', id), show: times, met: (v) => v <= 1.3 },
      { what: `top-20 revenue, ${TARGET_LABELS[id]} p50 / raw pg p50`, goal: '≤ 1.15×', value: ratio('top20', id), show: times, met: (v) => v <= 1.15 },
    ]),
    { what: 'one-row lookup, zava-mcp HTTP p50', goal: '≤ 0.8 ms', value: lat('lookup', 'zava-http', 'p50'), show: ms, met: (v) => v <= 0.8 },
    { what: 'one-row lookup, zava-mcp stdio p50', goal: '≤ 0.5 ms', value: lat('lookup', 'zava-stdio', 'p50'), show: ms, met: (v) => v <= 0.5 },
    {
      what: `one-row lookup, zava-mcp HTTP calls/s at ${CLIENTS} clients`,
      goal: '≥ 2,500',
      value: tputs('zava-http').length > 0 ? median(tputs('zava-http')) : undefined,
      show: perSecond,
      met: (v) => v >= 2500,
    },
    { what: '`get_current_utc_date`, zava-mcp HTTP p50', goal: '≤ 0.4 ms', value: lat('utc', 'zava-http', 'p50'), show: ms, met: (v) => v <= 0.4 },
    // Issue 10 states its absolute goals against the peers as well; measured in the same run, these comparisons
    // hold up better than absolute figures on a shared machine.
    {
      what: 'one-row lookup p50, dbhub (HTTP) / zava-mcp HTTP',
      goal: '≥ 2× ("more than 2× faster than dbhub")',
      value: quotient(lat('lookup', 'dbhub', 'p50'), lat('lookup', 'zava-http', 'p50')),
      show: times,
      met: (v) => v >= 2,
    },
    {
      what: 'one-row lookup p50, zava-mcp stdio / server-postgres (stdio)',
      goal: '≤ 1× ("level with server-postgres")',
      value: quotient(lat('lookup', 'zava-stdio', 'p50'), lat('lookup', 'server-postgres', 'p50')),
      show: times,
      met: (v) => v <= 1,
    },
    {
      what: `one-row calls/s at ${CLIENTS} clients, zava-mcp HTTP / dbhub's best round`,
      goal: '≥ 2× ("2× dbhub\'s best")',
      value: quotient(tputs('zava-http').length > 0 ? median(tputs('zava-http')) : undefined, tputs('dbhub').length > 0 ? Math.max(...tputs('dbhub')) : undefined),
      show: times,
      met: (v) => v >= 2,
    },
  ];
  const measured = goals.filter((g) => g.value !== undefined);
  if (measured.length > 0) {
    lines.push(
      '**Goals** (issue 9: the database part and the ratios to raw pg; issue 10: the whole call over HTTP and stdio, and last its comparisons with the peers):',
      '',
      '| measure | goal | result | |',
      '|---|---|---|---|',
      ...measured.map((g) => `| ${g.what} | ${g.goal} | ${g.show(g.value!)} | ${g.met(g.value!) ? 'pass' : '**fail**'} |`),
      '',
    );
  }
  lines.push(...scaledGoals(lat('lookup', 'pg', 'p50'), tputs('pg').length > 0 ? median(tputs('pg')) : undefined, lat, tputs('zava-http')));

  if (loadResult) {
    const l = loadResult;
    lines.push(
      `**zava-mcp under load** (a fresh HTTP server; ${SECONDS} s per row; every client its own SDK client and HTTP connection; head`,
      `office; the schema call asks for ${SCHEMA_TABLES.join(', ')} and is served from the server's cache):`,
      '',
      '| tool | clients | calls/s | p50 | p95 |',
      '|---|---|---|---|---|',
      ...l.rows.map((r) => `| \`${r.tool}\` | ${r.clients} | ${perSecond(r.result.perSecond)} | ${ms(r.result.latency.p50)} | ${ms(r.result.latency.p95)} |`),
      '',
      `Server memory: RSS ${l.rssBefore.toFixed(0)} MiB before the load, ${l.rssAfter.toFixed(0)} MiB after; **peak RSS under the load ${l.loadPeak.toFixed(0)} MiB**` +
        `${l.peakReset ? ' (VmHWM reset before the load)' : ' (VmHWM since start; reset not permitted)'}; peak during start-up (migrate, embedding check) ${l.startupPeak.toFixed(0)} MiB.`,
      '',
    );
  }

  for (const prof of profiles) {
    const { summary } = prof;
    const share = (v: number) => `${(v * 100).toFixed(1)} %`;
    lines.push(
      `**Profile of ${TARGET_LABELS[prof.id]}** (\`node --cpu-prof\`) answering ${prof.calls.toLocaleString('en-US')} one-row lookups from ${CLIENTS} clients in ${SECONDS} s:`,
      `${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle in the timed window${summary.windowed ? '' : ' (the whole process life: start-up included)'}. Self time by package, then the top`,
      `${summary.functions.length} functions (share of busy time; "(native)" is code without a script: Node's C++ bindings such as socket writes):`,
      '',
      '| package | self time |',
      '|---|---|',
      ...summary.packages.map((p) => `| ${p.name} | ${share(p.share)} |`),
      '',
      '| function | self time |',
      '|---|---|',
      ...summary.functions.map((f) => `| \`${f.name.replaceAll('|', '\\|')}\` | ${share(f.share)} |`),
      '',
    );
  }

  const busiest = Math.max(meta.loadBefore[0]!, meta.loadAfter[0]!, meta.loadAfter[1]!);
  if (busiest > cpus().length) {
    lines.push(
      `**The machine was busy during this run** (load average up to ${busiest.toFixed(1)} on ${cpus().length} cores: other work was running): every`,
      'figure is inflated by waiting for a core, the more so the more processes a path has. Only the comparison between',
      'targets within the run means something, and that only roughly; re-measure on a quiet machine before judging a goal.',
      '',
    );
  }
  lines.push(
    'Figures move from run to run even on a quiet machine (the calls/s range over rounds shows how much): compare targets',
    'within one run, not across runs. Reproduce: `npm run bench` (its duration is at the top); a quick look: `npm run bench -- --customers 2000 --rounds 1`.',
    '',
  );
  return lines.join('\n');
}

function writeSection(section: string): void {
  const current = readFileSync(BENCHMARKS, 'utf8');
  const start = current.indexOf(SECTION);
  let next: string;
  if (start < 0) next = `${current.trimEnd()}\n\n${section}`;
  else {
    const end = current.indexOf('\n## ', start + SECTION.length);
    next = `${current.slice(0, start)}${section}${end < 0 ? '' : `\n${current.slice(end + 1)}`}`;
  }
  writeFileSync(BENCHMARKS, next.endsWith('\n') ? next : `${next}\n`);
}

// ---- main ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const name = EXISTING_DB ?? `zava_bench_mcp_${process.pid}`;
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${name}`;
  const url = dbUrl.toString();
  if (!EXISTING_DB) await admin(`CREATE DATABASE ${name}`);
  const targets: Target[] = [];
  const owner = new pg.Client({ connectionString: url });
  // The defaults the spawned servers run with too (their environment carries no ZAVA_ settings).
  const config = loadConfig({ databaseUrl: url }, {});
  const db = await openDatabase(config);
  try {
    if (!EXISTING_DB) {
      process.stderr.write(`Seeding ${name} with ${CUSTOMERS.toLocaleString('en-US')} customers (zava-mcp db seed)…\n`);
      const seeded = spawnSync(process.execPath, [ZAVA_MAIN, 'db', 'seed', '--database-url', url, '--customers', String(CUSTOMERS), '--seed', String(DEFAULT_SEED)], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '' },
      });
      if (seeded.status !== 0) throw new Error(`seeding failed:\n${seeded.stderr}`);
    }
    await db.prepare();
    await owner.connect();
    const context = { databaseUrl: url, db, maxRows: config.maxRows, timeoutMs: config.statementTimeoutMs };
    // Counted, not taken from --customers: with --db the database may hold another size.
    const sizes = (await owner.query('SELECT (SELECT count(*) FROM retail.customers) AS customers, (SELECT count(*) FROM retail.order_items) AS lines')).rows[0] as { customers: string; lines: string };

    let peersResult: PeersResult | undefined;
    if (parts.has('peers')) {
      const identity = await db.resolveIdentity(HEAD_OFFICE_USER_ID);
      for (const id of targetIds) {
        process.stderr.write(`Starting ${id}…\n`);
        targets.push(await startTarget(id, { ...context, identity, dbhubReadonly: DBHUB_READONLY }));
      }
      peersResult = await peers(targets, owner);
      await Promise.all(targets.splice(0).map((target) => target.stop()));
    }
    let loadResult: LoadResult | undefined;
    if (parts.has('load')) {
      process.stderr.write('zava-mcp under load…\n');
      loadResult = await load(url);
    }
    const profiles: Profile[] = [];
    if (parts.has('profile')) {
      for (const id of ['zava-http', 'zava-stdio'] as const) {
        process.stderr.write(`Profiling ${id}…\n`);
        profiles.push(await profile(id, { ...context, identity: await db.resolveIdentity(HEAD_OFFICE_USER_ID) }));
      }
    }

    const section = report(peersResult, loadResult, profiles, {
      started: `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      loadBefore,
      loadAfter: loadavg(),
      seconds: (Date.now() - started.getTime()) / 1000,
      customers: Number(sizes.customers),
      orderLines: Number(sizes.lines),
    });
    process.stdout.write(`\n${section}\n`);
    if (WRITE) {
      writeSection(section);
      process.stderr.write(`Written to ${BENCHMARKS}\n`);
    } else process.stderr.write('Not written to BENCHMARKS.md (a partial run or not the reference size; --write to force)\n');
  } finally {
    await Promise.all(targets.map((target) => target.stop().catch(() => undefined)));
    await owner.end().catch(() => undefined);
    await db.close();
    if (KEEP) process.stderr.write(`Kept database ${name} (reuse with --db ${name})\n`);
    else await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
