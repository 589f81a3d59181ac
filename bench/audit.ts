// The audit trail's cost (issue 11: at most 5% of throughput at 8 clients). One small seeded database on the
// PostgreSQL service; `zava-mcp serve` spawned with ZAVA_AUDIT=off and =on in alternating order, round after
// round; in each, 8 clients call a one-row execute_sales_query (an audited call that also uses the database the
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
}

async function rate(url: string, pid: number, name: string, args: Record<string, unknown>, seconds: number): Promise<Rate> {
  let calls = 0;
  const cpu0 = cpuMs(pid);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < deadline) {
        await call(url, name, args);
        calls++;
      }
    }),
  );
  return { perSecond: calls / ((performance.now() - started) / 1000), cpuMsPerCall: (cpuMs(pid) - cpu0) / calls };
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
  const results: Record<'on' | 'off', { query: Rate[]; date: Rate[] }> = { on: { query: [], date: [] }, off: { query: [], date: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const server = await startZavaHttp(t.flags[1]!, [], { ZAVA_AUDIT: mode });
      const url = server.mcpUrl;
      const pid = server.child.pid!;
      await rate(url, pid, 'execute_sales_query', { postgresql_query: ONE_ROW }, 2); // warm-up
      const query = await rate(url, pid, 'execute_sales_query', { postgresql_query: ONE_ROW }, SECONDS);
      const date = await rate(url, pid, 'get_current_utc_date', {}, SECONDS);
      results[mode].query.push(query);
      results[mode].date.push(date);
      const show = (r: Rate) => `${r.perSecond.toFixed(0)} calls/s, ${r.cpuMsPerCall.toFixed(3)} ms CPU/call`;
      console.log(`round ${round + 1} audit ${mode}: execute_sales_query ${show(query)}; get_current_utc_date ${show(date)} (load ${loadavg()[0]!.toFixed(1)})`);
      await server.stop();
    }
  }
  const audited = Number((await t.db.ownerQuery('SELECT count(*) FROM zava_audit.tool_calls')).rows[0]![0]);
  for (const kind of ['query', 'date'] as const) {
    const off = median(results.off[kind].map((r) => r.perSecond));
    const on = median(results.on[kind].map((r) => r.perSecond));
    const cpuOff = median(results.off[kind].map((r) => r.cpuMsPerCall));
    const cpuOn = median(results.on[kind].map((r) => r.cpuMsPerCall));
    console.log(
      `${kind === 'query' ? 'execute_sales_query (one row)' : 'get_current_utc_date'} at ${CLIENTS} clients, median of ${ROUNDS}: ` +
        `audit off ${off.toFixed(0)}, on ${on.toFixed(0)} calls/s (${(((on - off) / off) * 100).toFixed(1)}%); ` +
        `server CPU off ${cpuOff.toFixed(3)}, on ${cpuOn.toFixed(3)} ms/call (${(((cpuOn - cpuOff) / cpuOff) * 100).toFixed(1)}%)`,
    );
  }
  console.log(`audit rows written: ${audited.toLocaleString('en-US')}`);
} finally {
  await t.cleanup();
}
