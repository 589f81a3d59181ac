// The cost of the audit trail (issue 11: at most 5% of throughput at 8 clients) and of the audit trail with the
// metrics (issue 12: throughput and p50/p95 with metrics and audit on vs off, cost ≤ 5%). One small seeded database
// on the PostgreSQL service (result cache off: the call repeats); three `zava-mcp serve` processes side by side —
// both off, audit only, audit and metrics — taking turns in short bursts, the order rotating each round; 8 clients
// call a one-row execute_sales_query (an audited call that also uses the database the audit writes to), then
// get_current_utc_date (no database: the edge, where the hook's own cost shows most). Prints, per mode, the median
// calls/s, p50/p95, the server process's CPU time per call (from /proc) and the median of the per-round changes
// against "off", and checks the audit rows were written. First, in this process: what record() costs per entry,
// and what one batch INSERT costs at 1, 10 and 100 rows.
// A fourth server, "off (control)", runs exactly what "off" runs: its paired change is what two identical
// processes differ by, the resolution of the measure. Every --respawn-every rounds all four are replaced by fresh
// processes, so a difference that belongs to one process (its JIT, its heap layout) and not to its mode does not
// repeat in every round of the run.
// Usage: npm run build && node dist/bench/audit.js [--rounds N] [--seconds S] [--clients N] [--respawn-every N]
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
const ROUNDS = arg('rounds', 15);
const SECONDS = arg('seconds', 2);
const CLIENTS = arg('clients', 8);
const RESPAWN_EVERY = arg('respawn-every', 10);
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
    'off (control)': { ZAVA_AUDIT: 'off', ZAVA_METRICS: 'off' },
    audit: { ZAVA_AUDIT: 'on', ZAVA_METRICS: 'off' },
    'audit+metrics': { ZAVA_AUDIT: 'on', ZAVA_METRICS: 'on' },
  } as const;
  type Mode = keyof typeof MODES;
  const modes = Object.keys(MODES) as Mode[];
  // The servers run side by side and take turns in short bursts, the order rotating every round: a shared
  // machine's load drifts by more than the 5% being measured over the minutes a run takes, and a fresh server per
  // round adds its own warm-up spread. Each round compares the modes under the same conditions (the ratio to "off"
  // in that round), and the medians of those ratios are the result. An audited burst's last batch (at most one
  // linger, 250 ms) is written during the next burst, a few per cent of its audit work landing on a mode chosen by
  // the rotation.
  const servers = new Map<Mode, { url: string; pid: number; stop: () => Promise<void> }>();
  const stopAll = async () => {
    for (const server of servers.values()) await server.stop();
    servers.clear();
  };
  // The spawn order rotates with each set of fresh servers: a server started first or last may run faster or
  // slower for reasons of its own (measured: with one fixed order, the first one beat its identical control in 26
  // of 40 rounds).
  const startAll = async (set: number) => {
    for (const mode of modes.map((_, i) => modes[(i + set) % modes.length]!)) {
      const server = await startZavaHttp(t.flags[1]!, [], { ...MODES[mode], ZAVA_CACHE: 'off' });
      servers.set(mode, { url: server.mcpUrl, pid: server.child.pid!, stop: server.stop });
    }
  };
  try {
    for (const kind of ['query', 'date'] as const) {
      const [tool, args] = kind === 'query' ? ['execute_sales_query', { postgresql_query: ONE_ROW }] as const : ['get_current_utc_date', {}] as const;
      const rounds = Object.fromEntries(modes.map((mode) => [mode, [] as Rate[]])) as Record<Mode, Rate[]>;
      for (let round = 0; round < ROUNDS; round++) {
        if (round % RESPAWN_EVERY === 0) {
          await stopAll();
          await startAll(round / RESPAWN_EVERY);
          for (const mode of modes) await rate(servers.get(mode)!.url, servers.get(mode)!.pid, tool, args, 2); // warm-up
        }
        for (const mode of modes.map((_, i) => modes[(i + round) % modes.length]!)) {
          const server = servers.get(mode)!;
          rounds[mode].push(await rate(server.url, server.pid, tool, args, SECONDS));
        }
      }
      const of = (mode: Mode, figure: keyof Rate) => median(rounds[mode].map((r) => r[figure]));
      // Paired: each round's figure over the same round's "off" figure, then the median over rounds.
      const paired = (mode: Mode, figure: keyof Rate) =>
        median(rounds[mode].map((r, i) => (r[figure] - rounds.off[i]![figure]) / rounds.off[i]![figure])) * 100;
      const worse = (mode: Mode) => rounds[mode].filter((r, i) => r.perSecond < rounds.off[i]!.perSecond).length;
      console.log(`${tool} at ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s per mode, fresh servers every ${RESPAWN_EVERY} rounds (load ${loadavg().map((l) => l.toFixed(1)).join(' / ')}):`);
      for (const mode of modes) {
        console.log(
          `  ${mode.padEnd(14)} ${of(mode, 'perSecond').toFixed(0)} calls/s (paired change ${paired(mode, 'perSecond').toFixed(1)}%` +
            `${mode === 'off' ? '' : `, slower than off in ${worse(mode)} of ${ROUNDS} rounds`}), p50 ${of(mode, 'p50').toFixed(2)} ms, ` +
            `p95 ${of(mode, 'p95').toFixed(2)} ms, server CPU ${of(mode, 'cpuMsPerCall').toFixed(3)} ms/call (paired ${paired(mode, 'cpuMsPerCall').toFixed(1)}%)`,
        );
      }
    }
  } finally {
    await stopAll();
  }
  const audited = Number((await t.db.ownerQuery('SELECT count(*) FROM zava_audit.tool_calls')).rows[0]![0]);
  console.log(`audit rows written: ${audited.toLocaleString('en-US')}`);
} finally {
  await t.cleanup();
}
