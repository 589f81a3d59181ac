// The cost of the audit trail (issue 11: at most 5% of throughput at 8 clients) and of the audit trail with the
// metrics (issue 12: throughput and p50/p95 with metrics and audit on vs off, cost ≤ 5%). One small seeded database
// on the PostgreSQL service (result cache off: the call repeats); `zava-mcp serve` spawned in three modes — both
// off, audit only, audit and metrics — in rotating order, round after round; in each, 8 clients call a one-row execute_sales_query (an audited call that also uses the database the
// audit writes to) and get_current_utc_date (no database: the edge, where the hook's own cost shows most) for a
// fixed time. Prints calls/s per round and the median of the rounds, the server process's CPU time per call (from
// /proc: it holds on a busy shared machine where calls/s does not), and checks the audit rows were written. First,
// in this process: what record() costs per entry, and what one batch INSERT costs at 1, 10 and 100 rows.
// Usage: npm run build && node dist/bench/audit.js [--rounds N] [--seconds S] [--clients N]
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { createEmbeddingProvider, embeddingSettings } from '../src/search/settings.js';
import { ensureEmbeddings } from '../src/search/store.js';
import { createTestDatabase } from '../test/support/databases.js';
import { startZavaHttp } from './peers.js';
import { AuditWriter, type AuditEntry } from '../src/infra/audit.js';
import { writeAuditEntries } from '../src/db/audit.js';
import { createLogger } from '../src/infra/logger.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg('rounds', 3);
const SECONDS = arg('seconds', 8);
const CLIENTS = arg('clients', 8);
const ONE_ROW = 'SELECT store_name FROM retail.stores WHERE store_id = 1';

let id = 1;
async function call(url: string, name: string, args: Record<string, unknown>): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-rls-user-id': HEAD_OFFICE_USER_ID },
    body: JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name, arguments: args } }),
  });
  const text = await response.text();
  if (!response.ok || text.includes('"isError":true')) throw new Error(`${name} failed (${response.status}): ${text.slice(0, 200)}`);
}

/** User + system CPU time of a process, in ms (Linux: /proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Rate {
  readonly perSecond: number;
  readonly cpuMsPerCall: number;
  readonly p50: number;
  readonly p95: number;
}

async function rate(url: string, pid: number, name: string, args: Record<string, unknown>, seconds: number): Promise<Rate> {
  const latencies: number[] = [];
  const cpu0 = cpuMs(pid);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await call(url, name, args);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const calls = latencies.length;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(calls - 1, Math.floor(q * calls))]!;
  return { perSecond: calls / ((performance.now() - started) / 1000), cpuMsPerCall: (cpuMs(pid) - cpu0) / calls, p50: at(0.5), p95: at(0.95) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const t = await createTestDatabase('server', { customers: 300 });
try {
  await ensureEmbeddings(t.db, { provider: createEmbeddingProvider(embeddingSettings({})) });
  const sample: AuditEntry = {
    at: new Date(), sub: HEAD_OFFICE_USER_ID, userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeScope: '*', pii: true,
    tool: 'execute_sales_query', text: ONE_ROW, outcome: 'ok', rows: 1, truncated: false, durationMs: 1.2, requestId: '1', clientName: 'bench',
  };
  const sink = new AuditWriter(async () => undefined, { queueLimit: 1_000_000, log: createLogger('silent') });
  const n = 200_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink.record(sample);
  console.log(`record(): ${(((performance.now() - t0) / n) * 1000).toFixed(2)} µs per entry`);
  await sink.close();
  for (const size of [1, 10, 100]) {
    const batch = Array.from({ length: size }, () => sample);
    const runs = 50;
    const t1 = performance.now();
    for (let i = 0; i < runs; i++) await writeAuditEntries(t.db, batch);
    const ms = (performance.now() - t1) / runs;
    console.log(`batch INSERT of ${size}: ${ms.toFixed(2)} ms (${(ms / size).toFixed(3)} ms per row)`);
  }
  const MODES = {
    off: { ZAVA_AUDIT: 'off', ZAVA_METRICS: 'off' },
    audit: { ZAVA_AUDIT: 'on', ZAVA_METRICS: 'off' },
    'audit+metrics': { ZAVA_AUDIT: 'on', ZAVA_METRICS: 'on' },
  } as const;
  type Mode = keyof typeof MODES;
  const modes = Object.keys(MODES) as Mode[];
  const results = Object.fromEntries(modes.map((mode) => [mode, { query: [] as Rate[], date: [] as Rate[] }])) as Record<Mode, { query: Rate[]; date: Rate[] }>;
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts with the next mode, so no mode always runs first (or last) in a round.
    for (const mode of modes.map((_, i) => modes[(i + round) % modes.length]!)) {
      const server = await startZavaHttp(t.flags[1]!, [], { ...MODES[mode], ZAVA_CACHE: 'off' });
      const url = server.mcpUrl;
      const pid = server.child.pid!;
      await rate(url, pid, 'execute_sales_query', { postgresql_query: ONE_ROW }, 2); // warm-up
      const query = await rate(url, pid, 'execute_sales_query', { postgresql_query: ONE_ROW }, SECONDS);
      const date = await rate(url, pid, 'get_current_utc_date', {}, SECONDS);
      results[mode].query.push(query);
      results[mode].date.push(date);
      const show = (r: Rate) => `${r.perSecond.toFixed(0)} calls/s, p50 ${r.p50.toFixed(2)} ms, p95 ${r.p95.toFixed(2)} ms, ${r.cpuMsPerCall.toFixed(3)} ms CPU/call`;
      console.log(`round ${round + 1} ${mode}: execute_sales_query ${show(query)}; get_current_utc_date ${show(date)} (load ${loadavg()[0]!.toFixed(1)})`);
      await server.stop();
    }
  }
  for (const kind of ['query', 'date'] as const) {
    const of = (mode: Mode, figure: keyof Rate) => median(results[mode][kind].map((r) => r[figure]));
    const change = (mode: Mode, figure: keyof Rate) => `${(((of(mode, figure) - of('off', figure)) / of('off', figure)) * 100).toFixed(1)}%`;
    console.log(`${kind === 'query' ? 'execute_sales_query (one row)' : 'get_current_utc_date'} at ${CLIENTS} clients, median of ${ROUNDS} rounds:`);
    for (const mode of modes) {
      console.log(
        `  ${mode.padEnd(14)} ${of(mode, 'perSecond').toFixed(0)} calls/s (${change(mode, 'perSecond')}), p50 ${of(mode, 'p50').toFixed(2)} ms, ` +
          `p95 ${of(mode, 'p95').toFixed(2)} ms, server CPU ${of(mode, 'cpuMsPerCall').toFixed(3)} ms/call (${change(mode, 'cpuMsPerCall')})`,
      );
    }
  }
  const audited = Number((await t.db.ownerQuery('SELECT count(*) FROM zava_audit.tool_calls')).rows[0]![0]);
  console.log(`audit rows written: ${audited.toLocaleString('en-US')}`);
} finally {
  await t.cleanup();
}
