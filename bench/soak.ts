// Soak under load and faults (issue 15, "Proof under load and faults"): 32 MCP clients (the official SDK client over
// Streamable HTTP, jwt bearer tokens of eight identities) run a mix of table schemas, typed analytics tools, ad-hoc
// SQL and product searches for --minutes (default 10) through nginx against three `zava-mcp serve` replicas on one
// PostgreSQL primary (with a hot standby taking the reads) and one Redis — all of the soak's own, on loopback
// (bench/soak-stack.ts). Every answer is checked against its identity's ground truth (bench/soak-workload.ts).
// Each replica's RSS is sampled over the run, its main heap read from /metrics, and (bench/memory-hook.ts) the live
// heap of each of its threads after a forced full collection every --heap-sample-s (default 30; 0: off). Faults,
// each observed and timed, at fixed points of the run:
//   replica-kill: one replica SIGKILLed, restarted on its port 2 s later;
//   redis:        Redis killed for 5 s and started again (empty); meanwhile a token is revoked (the list lives in PostgreSQL);
//   primary:      the primary restarted (5 s down) with the standby in service;
//   standby:      the standby removed; while it is out the primary is restarted too (no database at all: calls must
//                 fail fast with DATABASE_UNAVAILABLE; each replica's recovery after the primary's return is timed);
//                 then the standby returned.
// Usage: npm run bench:soak -- [--minutes=10] [--clients=32] [--think-ms=250] [--heap-sample-s=30] [--faults=replica-kill,redis,primary,standby] [--cache=off]
//        [--json=FILE]. Ctrl-C stops the load and everything the soak started.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { connectWithToken, rawToolCall } from '../test/support/tokens.js';
import type { Client } from '../test/mcp-harness.js';
import type { MemoryProbeLine } from './memory-hook.js';
import { clusterSql, queryRoleBackends, SoakStack } from './soak-stack.js';
import { PROBE_IDENTITY, readGroundTruth, SOAK_IDENTITIES, soakCalls, type SoakCall, type SoakIdentity } from './soak-workload.js';

export const FAULTS = ['replica-kill', 'redis', 'primary', 'standby'] as const;
/** The replica the replica-kill fault SIGKILLs. */
export const KILLED_SLOT = 1;
export type Fault = (typeof FAULTS)[number];
/** When each fault starts, as a fraction of the run (they run one after another; a late one starts when the previous ends). */
export const FAULT_SCHEDULE: ReadonlyArray<readonly [number, Fault]> = [
  [0.15, 'replica-kill'],
  [0.35, 'redis'],
  [0.55, 'primary'],
  [0.72, 'standby'],
];

export interface SoakOptions {
  readonly seconds: number;
  readonly clients: number;
  /** Mean pause between a client's calls (uniform 0 … 2×), ms. */
  readonly thinkMs: number;
  readonly faults: readonly Fault[];
  /** A hot standby for the reads (needed by the primary and standby faults). */
  readonly standby: boolean;
  /** The replicas' result cache (default on): most of the mix repeats, so with it on most answers come from it. */
  readonly cache?: boolean;
  readonly rssSampleMs: number;
  /**
   * Every how many ms each replica forces a full collection in each of its threads and logs their live heaps
   * (bench/memory-hook.ts); 0: not at all. RSS and /metrics' heap carry garbage not yet collected, and /metrics
   * sees the main thread only (not the embedding workers): the live heap of all threads is where a leak shows.
   */
  readonly heapSampleMs?: number;
  /** Whether the killed replica is started again (the smoke test leaves it down: a start takes 20–30 s here). */
  readonly restartKilled: boolean;
  readonly log: (line: string) => void;
}

interface CallRecord {
  readonly start: number;
  readonly ms: number;
  readonly kind: string;
  /** 'ok', a tool error code, or a transport failure (HTTP_502, NETWORK, …). */
  readonly outcome: string;
  readonly message?: string;
}

export interface FaultReport {
  readonly fault: Fault;
  readonly start: number;
  end: number;
  /** What was observed, one line each, timed. */
  readonly observations: string[];
  /** The same, as figures (replica-kill: killedAt, inFlight, inFlightFailed, startedAfter, failedAfter, lastFailedAfterMs). */
  readonly figures: Record<string, number>;
  /** Outcomes of the calls that overlapped the fault (start to end + 5 s), by code. */
  outcomes: Record<string, number>;
}

export interface SoakReport {
  readonly date: string;
  /** The balanced endpoint the clients used (stopped when the report is returned). */
  readonly endpoint: string;
  readonly seconds: number;
  readonly clients: number;
  readonly thinkMs: number;
  readonly cache: boolean;
  readonly loadBefore: number[];
  readonly loadAfter: number[];
  readonly cpus: number;
  readonly calls: number;
  readonly ok: number;
  readonly byCode: Record<string, number>;
  /** Errors of calls that overlapped no fault. */
  readonly unexplained: Record<string, number>;
  readonly unexplainedSamples: string[];
  /** nginx's error log, by kind of event. */
  readonly nginxLog: Record<string, number>;
  /** The first message of each error code and call kind. */
  readonly errorSamples: Record<string, string>;
  readonly violations: number;
  readonly violationSamples: string[];
  readonly checked: number;
  readonly latency: { p50: number; p95: number; p99: number };
  readonly byKind: Array<{ kind: string; calls: number; p50: number; p95: number; errors: number }>;
  readonly rss: Array<{
    slot: number;
    restarted: boolean;
    samples: number;
    firstThirdMb: number;
    lastThirdMb: number;
    slopeMbPerMin: number;
    /** Slope of each minute's lowest RSS over the last two thirds: the saw-tooth's troughs, what stays after collection. */
    troughSlopeMbPerMin: number;
    /** V8 heap in use (from the replica's /metrics), first and last third's averages of each minute's lowest value. */
    heapFirstThirdMb: number | undefined;
    heapLastThirdMb: number | undefined;
    heapTroughSlopeMbPerMin: number | undefined;
    /** The live heap after a forced full collection, summed over the replica's threads (when heapSampleMs > 0). */
    liveHeap?: LiveHeap;
  }>;
  readonly faults: FaultReport[];
}

/** A replica's live heap over the run, from its heap probe: after the warm-up (the first third of its samples) to the end. */
export interface LiveHeap {
  /** Threads sampled: the main one and the embedding workers. */
  readonly threads: number;
  readonly samples: number;
  readonly afterWarmUpMb: number;
  readonly lastMb: number;
  /** Least-squares slope over the samples after the warm-up. */
  readonly slopeMbPerMin: number;
  /** The main thread's share after the warm-up and at the end (the rest is the workers'). */
  readonly afterWarmUpMainMb: number;
  readonly lastMainMb: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A transport failure's code: the HTTP status the SDK saw, or NETWORK. */
function transportCode(error: unknown): string {
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number') return `HTTP_${status}`;
  const message = error instanceof Error ? error.message : String(error);
  const http = /\(HTTP (\d{3})\)/.exec(message);
  return http ? `HTTP_${http[1]}` : /timed? ?out/i.test(message) ? 'CLIENT_TIMEOUT' : 'NETWORK';
}

/** One tools/call straight to one replica (no balancer), as `token`: answered, and the tool's error code if any. */
/**
 * One call to one replica, without nginx. Its statement is volatile (clock_timestamp()), so the result cache never
 * answers it: it proves the replica reaches a database, where a cached answer would prove nothing.
 */
async function directCall(url: string, token: string): Promise<{ status: number; code?: string }> {
  const response = await rawToolCall(url, { authorization: `Bearer ${token}` }, 'SELECT count(*), clock_timestamp() FROM retail.orders').catch(() => undefined);
  if (!response) return { status: 0, code: 'NETWORK' };
  const text = await response.text().catch(() => '');
  if (response.status !== 200) return { status: response.status, code: `HTTP_${response.status}` };
  const json = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}');
  const result = (JSON.parse(json) as { result?: CallToolResult }).result;
  return { status: 200, ...(result?.isError ? { code: String((result.structuredContent as { code?: string } | undefined)?.code ?? 'TOOL_ERROR') } : {}) };
}

/** Polls `check` every 100 ms until it holds; the ms it took, or undefined after `ms`. */
async function timeUntil(check: () => Promise<boolean>, ms: number): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check().catch(() => false)) return Date.now() - started;
    await sleep(100);
  }
  return undefined;
}

function weightedPicker(calls: Array<[number, SoakCall]>, random: () => number): () => SoakCall {
  const total = calls.reduce((sum, [w]) => sum + w, 0);
  return () => {
    let x = random() * total;
    for (const [w, call] of calls) if ((x -= w) < 0) return call;
    return calls[calls.length - 1]![1];
  };
}

/** A small seeded PRNG (mulberry32): the same mix for the same client index on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The V8 heap in use of a replica, from its /metrics (prom-client's default metrics), in MB. */
async function heapUsedMb(port: number): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
    const match = /^zava_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(await response.text());
    return match ? Number(match[1]) / 2 ** 20 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Each whole minute's lowest value (t of the window's start): a garbage-collected heap rises between collections and
 * falls at each, so the troughs follow what is really kept, where the samples follow the saw-tooth.
 */
function minuteTroughs(points: Array<{ t: number; y: number }>): Array<[number, number]> {
  if (points.length === 0) return [];
  const start = points[0]!.t;
  const troughs = new Map<number, number>();
  for (const { t, y } of points) {
    const minute = Math.floor((t - start) / 60_000);
    troughs.set(minute, Math.min(troughs.get(minute) ?? Infinity, y));
  }
  const last = Math.floor((points.at(-1)!.t - start) / 60_000);
  // The last minute is partial (fewer samples, a trough biased high): left out when there are others.
  return [...troughs].filter(([minute]) => minute < last || troughs.size === 1).map(([minute, y]) => [start + minute * 60_000, y]);
}

function readHeapProbe(file: string): MemoryProbeLine[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as MemoryProbeLine);
  } catch {
    return [];
  }
}

/**
 * The live heap of one replica process (pid), summed over its threads per sampling round. Each thread samples on
 * its own timer; a round is one interval counted from the main thread's first sample, and only rounds with every
 * thread are kept (a worker being replaced would show as a dip, not as less memory).
 */
function liveHeapOf(lines: readonly MemoryProbeLine[], pid: number, everyMs: number, t0: number): { liveHeap: LiveHeap } | undefined {
  const mine = lines.filter((l) => l.pid === pid);
  if (mine.length === 0) return undefined;
  const start = (mine.find((l) => l.rss !== undefined) ?? mine[0]!).at;
  const rounds = new Map<number, Map<number, MemoryProbeLine>>();
  for (const l of mine) {
    const round = Math.floor((l.at - start + everyMs / 2) / everyMs);
    if (!rounds.has(round)) rounds.set(round, new Map());
    rounds.get(round)!.set(l.thread, l);
  }
  const threads = Math.max(...[...rounds.values()].map((r) => r.size));
  const points = [...rounds.entries()]
    .filter(([, r]) => r.size === threads)
    .sort(([a], [b]) => a - b)
    .map(([, r]) => {
      const of = [...r.values()];
      return { t: Math.max(...of.map((l) => l.at)) - t0, mb: of.reduce((s, l) => s + l.liveHeap, 0) / 2 ** 20, mainMb: (of.find((l) => l.rss !== undefined)?.liveHeap ?? 0) / 2 ** 20 };
    });
  const after = points.slice(Math.floor(points.length / 3));
  if (after.length === 0) return undefined;
  return {
    liveHeap: {
      threads,
      samples: points.length,
      afterWarmUpMb: after[0]!.mb,
      lastMb: after.at(-1)!.mb,
      slopeMbPerMin: slopePerMinute(after.map((p) => [p.t, p.mb])),
      afterWarmUpMainMb: after[0]!.mainMb,
      lastMainMb: after.at(-1)!.mainMb,
    },
  };
}

/** Least-squares slope of (t ms, y) in y per minute. */
function slopePerMinute(points: Array<[number, number]>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : (sxy / sxx) * 60_000;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const { log } = options;
  const needsStandby = options.faults.some((f) => f === 'primary' || f === 'standby');
  if (needsStandby && !options.standby) throw new Error('the primary and standby faults need the standby');
  const loadBefore = loadavg();
  const stack = new SoakStack({ standby: options.standby, cache: options.cache, heapSampleMs: options.heapSampleMs ?? 0, log });
  const clients: Client[] = [];
  let interrupted = false;
  const stopping = new AbortController();
  const onSignal = () => {
    // Kept until the end: a second signal while stopping must not end the process before everything is stopped.
    if (interrupted) return;
    interrupted = true;
    process.exitCode = 130;
    log('interrupted: stopping everything the soak started');
    stopping.abort();
    // The load and the faults wind down (their next step sees the flag); runSoak's own cleanup waits for all.
    void stack.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await stack.build();
    if (interrupted) throw new Error('interrupted');
    const truth = await readGroundTruth(stack.primary.url());
    const identities = Array.from({ length: options.clients }, (_, i) => SOAK_IDENTITIES[i % SOAK_IDENTITIES.length]!);
    for (const identity of identities) clients.push(await connectWithToken(stack.nginx.url, await stack.token(identity.sub, identity.claims)));
    log(`${clients.length} clients connected through nginx; load for ${options.seconds} s`);

    const records: CallRecord[] = [];
    const violations: string[] = [];
    let checked = 0;
    let inFlight = 0;
    const t0 = Date.now();
    const now = () => Date.now() - t0;
    const end = options.seconds * 1000;

    const runClient = async (client: Client, identity: SoakIdentity, index: number) => {
      const random = prng(index + 1);
      const pick = weightedPicker(soakCalls(identity, truth), random);
      while (now() < end && !interrupted) {
        const call = pick();
        const start = now();
        inFlight++;
        try {
          const raw = await client.callTool({ name: call.tool, arguments: call.args });
          const structured = (raw.structuredContent ?? {}) as Record<string, unknown>;
          if (raw.isError) {
            // The typed tools put the code in _meta and at the end of their text; the others in structuredContent.
            const text = raw.content[0]?.type === 'text' ? raw.content[0].text : '';
            const code = structured.code ?? raw._meta?.['zava/code'] ?? /\[([A-Z_]+)\]$/.exec(text)?.[1] ?? 'TOOL_ERROR';
            records.push({ start, ms: now() - start, kind: call.kind, outcome: String(code), message: String(structured.err ?? text).slice(0, 200) });
          } else {
            records.push({ start, ms: now() - start, kind: call.kind, outcome: 'ok' });
            checked++;
            const wrong = call.check(structured);
            if (wrong !== undefined) violations.push(`${identity.label}, ${call.kind}: ${wrong}`.slice(0, 400));
          }
        } catch (error) {
          records.push({ start, ms: now() - start, kind: call.kind, outcome: transportCode(error), message: (error as Error).message?.slice(0, 200) });
        } finally {
          inFlight--;
        }
        if (options.thinkMs > 0) await sleep(random() * 2 * options.thinkMs);
      }
    };

    // RSS of each replica slot, every rssSampleMs (the pid tells a restarted replica apart).
    const rss: Array<Array<{ t: number; pid: number; mb: number; heapMb: number | undefined }>> = stack.ports.map(() => []);
    const sampler = setInterval(() => {
      stack.replicas.forEach((replica, slot) => {
        const mb = rssMb(replica.process.pid);
        const pid = replica.process.pid!;
        const t = now();
        if (mb !== undefined && replica.process.exitCode === null) {
          void heapUsedMb(stack.ports[slot]!).then((heapMb) => rss[slot]!.push({ t, pid, mb, heapMb }));
        }
      });
    }, options.rssSampleMs);

    const faults: FaultReport[] = [];
    const recoveryToken = await stack.token('soak-recovery-probe', { roles: ['super_admin'] });
    const ms = (t: number | undefined) => (t === undefined ? 'not within the limit' : `${t} ms`);
    /** One uncacheable call to each replica, then the query-role backends on `cluster`: where the reads go now. */
    const readsReach = async (cluster: NonNullable<typeof stack.standby>) => {
      await Promise.all(stack.ports.map((_, slot) => directCall(stack.replicaUrl(slot), recoveryToken)));
      return queryRoleBackends(cluster);
    };

    const runFault = async (fault: Fault): Promise<FaultReport> => {
      const report: FaultReport = { fault, start: now(), end: 0, observations: [], figures: {}, outcomes: {} };
      const note = (line: string) => {
        report.observations.push(`t+${((now() - report.start) / 1000).toFixed(1)} s: ${line}`);
        log(`[${fault}] ${line}`);
      };
      if (fault === 'replica-kill') {
        const slot = KILLED_SLOT;
        const victim = stack.replicas[slot]!;
        note(`SIGKILL replica ${slot} (pid ${victim.process.pid}); ${inFlight} calls in flight across all replicas`);
        const killedAt = now();
        victim.process.kill('SIGKILL');
        await new Promise((resolve) => (victim.process.exitCode !== null || victim.process.signalCode !== null ? resolve(undefined) : victim.process.once('exit', resolve)));
        await sleep(2000);
        if (options.restartKilled) {
          const restartAt = Date.now();
          const again = await stack.startReplica(slot);
          note(`replica ${slot} restarted on its port (pid ${again.process.pid}), listening after ${Date.now() - restartAt} ms`);
          const served = await timeUntil(async () => {
            const text = await (await fetch(`http://127.0.0.1:${stack.ports[slot]}/metrics`)).text();
            return /^zava_tool_calls_total\{[^}]*\} [1-9]/m.test(text);
          }, 30_000);
          note(`nginx sends it calls again ${ms(served)} after it listened`);
        }
        report.figures.killedAt = killedAt;
      } else if (fault === 'redis') {
        const probe = await stack.token(PROBE_IDENTITY.sub, { ...PROBE_IDENTITY.claims });
        const jti = JSON.parse(Buffer.from(probe.split('.')[1]!, 'base64url').toString()).jti as string;
        await stack.redis.stop();
        note('Redis killed (SIGKILL)');
        // Revocation lives in PostgreSQL (src/security/revocation.ts), so it holds without Redis: revoke now and
        // time until every replica refuses the token.
        const before = await Promise.all(stack.ports.map((_, slot) => directCall(stack.replicaUrl(slot), probe)));
        note(`probe token before revocation: ${before.map((b) => b.status).join(', ')} (replicas 0, 1, 2)`);
        await clusterSql(stack.primary.url(), `INSERT INTO zava_auth.revocations (jti, reason) VALUES ($1, 'soak')`, [jti]);
        const revokedAt = Date.now();
        const refused = await Promise.all(stack.ports.map((_, slot) => timeUntil(async () => (await directCall(stack.replicaUrl(slot), probe)).status === 401, 15_000)));
        note(`token revoked (Redis still down): refused with 401 by replica 0, 1, 2 after ${refused.map(ms).join(', ')}`);
        const down = 5000 - (Date.now() - revokedAt);
        if (down > 0) await sleep(down);
        await stack.redis.start();
        note('Redis started again (empty: the rate-limit counters start afresh)');
      } else if (fault === 'primary' || fault === 'standby') {
        const standby = stack.standby!;
        if (fault === 'standby') {
          await standby.stopInBackground('fast');
          note('standby stopped');
          // Most of the mix is answered by the result cache while the data does not change: this probe's own
          // uncacheable calls make each replica read, so the primary's backends show where reads go now.
          const fellBack = await timeUntil(async () => (await readsReach(stack.primary)) > 0, 15_000);
          note(`reads on the primary (query-role backends in its pg_stat_activity) ${ms(fellBack)} after`);
          await sleep(3000);
          const withoutStandby = records.filter((r) => r.start >= report.start);
          note(`with the standby out, before the primary stops: ${withoutStandby.length} calls, failed: ${codes(count(withoutStandby.filter((r) => r.outcome !== 'ok')))}`);
        }
        const downStart = now();
        await stack.primary.stopInBackground('fast');
        note(`primary stopped${fault === 'standby' ? ' (the standby is out too: no database answers)' : ' (the standby keeps answering reads)'}`);
        await sleep(5000);
        await stack.primary.startInBackground();
        const back = now();
        note(`primary started again (down ${((back - downStart) / 1000).toFixed(1)} s)`);
        const during = records.filter((r) => r.start >= downStart && r.start < back);
        const failed = during.filter((r) => r.outcome !== 'ok');
        const fast = failed.map((r) => r.ms).sort((a, b) => a - b);
        note(
          `while down: ${during.length} calls, ${during.length - failed.length} answered, ${failed.length} failed ` +
            (failed.length === 0
              ? ''
              : `(${codes(count(failed))}; answered in p50 ${Math.round(percentile(fast, 50))} ms, max ${Math.round(fast.at(-1)!)} ms; ` +
                `by call: ${codes(count(failed.map((r) => ({ outcome: r.kind }))))})`),
        );
        const recovered = await Promise.all(stack.ports.map((_, slot) => timeUntil(async () => (await directCall(stack.replicaUrl(slot), recoveryToken)).code === undefined, 30_000)));
        note(`each replica answers again after the primary's return: ${recovered.map(ms).join(', ')} (replicas 0, 1, 2)`);
        if (fault === 'standby') {
          await standby.startInBackground();
          note('standby started again');
          const returned = await timeUntil(async () => (await readsReach(standby)) > 0, 30_000);
          note(`reads back on the standby ${ms(returned)} after`);
        }
      }
      report.end = now();
      return report;
    };

    const driver = (async () => {
      for (const [at, fault] of FAULT_SCHEDULE) {
        if (!options.faults.includes(fault)) continue;
        await sleep(Math.max(0, at * end - now()), undefined, { signal: stopping.signal }).catch(() => undefined);
        if (now() >= end || interrupted) break;
        faults.push(await runFault(fault));
      }
    })();

    await Promise.all(clients.map((client, i) => runClient(client, identities[i]!, i)));
    await driver;
    clearInterval(sampler);
    // nginx's own account of what went wrong, by kind of event (upstream refused, closed under a request, …).
    const nginxLog = count(
      (await stack.nginx.errorLog())
        .split('\n')
        .filter((line) => / \[(error|warn)\] /.test(line))
        .map((line) => ({ outcome: /\] \d+#\d+: \*?\d* ?(.*?)(?: while |,|\(\d+: )/.exec(line)?.[1]?.trim() ?? line.slice(0, 80) })),
    );
    const seconds = now() / 1000;

    // Calls overlapping a fault (from its start to 5 s after its end) are that fault's (the latest one's, when two
    // overlap); any other error is unexplained.
    const windowOf = (r: CallRecord) => faults.findLast((f) => r.start + r.ms >= f.start && r.start <= f.end + 5000);
    for (const f of faults) f.outcomes = count(records.filter((r) => windowOf(r) === f));
    for (const f of faults.filter((f) => f.fault === 'replica-kill')) killFigures(f, records);
    const errors = records.filter((r) => r.outcome !== 'ok');
    const unexplained = errors.filter((r) => windowOf(r) === undefined);
    const okMs = records.filter((r) => r.outcome === 'ok').map((r) => r.ms).sort((a, b) => a - b);
    const kinds = [...new Set(records.map((r) => r.kind))].sort();
    const report: SoakReport = {
      date: new Date().toISOString(),
      endpoint: stack.nginx.url,
      seconds,
      clients: options.clients,
      cache: options.cache !== false,
      thinkMs: options.thinkMs,
      loadBefore,
      loadAfter: loadavg(),
      cpus: cpus().length,
      calls: records.length,
      ok: okMs.length,
      byCode: count(errors),
      unexplained: count(unexplained),
      unexplainedSamples: unexplained.slice(0, 5).map((r) => `at ${(r.start / 1000).toFixed(1)} s, ${r.kind}: ${r.outcome} ${r.message ?? ''}`),
      nginxLog,
      errorSamples: Object.fromEntries(errors.map((r) => [`${r.outcome} ${r.kind}`, r.message ?? '']).reverse()),
      violations: violations.length,
      violationSamples: violations.slice(0, 5),
      checked,
      latency: { p50: percentile(okMs, 50), p95: percentile(okMs, 95), p99: percentile(okMs, 99) },
      byKind: kinds.map((kind) => {
        const of = records.filter((r) => r.kind === kind);
        const sorted = of.filter((r) => r.outcome === 'ok').map((r) => r.ms).sort((a, b) => a - b);
        return { kind, calls: of.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), errors: of.length - sorted.length };
      }),
      rss: rss.map((samples, slot) => {
        const lastPid = samples.at(-1)?.pid;
        const mine = samples.filter((s) => s.pid === lastPid).sort((a, b) => a.t - b.t);
        const third = Math.max(1, Math.floor(mine.length / 3));
        const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
        const heap = mine.filter((s) => s.heapMb !== undefined).map((s) => ({ t: s.t, y: s.heapMb! }));
        const heapTroughs = minuteTroughs(heap);
        const heapThird = Math.max(1, Math.floor(heapTroughs.length / 3));
        return {
          slot,
          restarted: new Set(samples.map((s) => s.pid)).size > 1,
          samples: mine.length,
          firstThirdMb: avg(mine.slice(0, third).map((s) => s.mb)),
          lastThirdMb: avg(mine.slice(-third).map((s) => s.mb)),
          slopeMbPerMin: slopePerMinute(mine.slice(third).map((s) => [s.t, s.mb])),
          troughSlopeMbPerMin: slopePerMinute(minuteTroughs(mine.slice(third).map((s) => ({ t: s.t, y: s.mb })))),
          heapFirstThirdMb: heapTroughs.length >= 3 ? avg(heapTroughs.slice(0, heapThird).map(([, y]) => y)) : undefined,
          heapLastThirdMb: heapTroughs.length >= 3 ? avg(heapTroughs.slice(-heapThird).map(([, y]) => y)) : undefined,
          heapTroughSlopeMbPerMin: heapTroughs.length >= 3 ? slopePerMinute(heapTroughs.slice(heapThird)) : undefined,
          ...(options.heapSampleMs && lastPid !== undefined ? liveHeapOf(readHeapProbe(stack.heapProbeFile(slot)), lastPid, options.heapSampleMs, t0) : {}),
        };
      }),
      faults,
    };
    return report;
  } finally {
    if (!interrupted) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await stack.close();
  }
}

/** Which calls a replica kill cost: those in flight at that moment, and any started after it (until 5 s past the fault). */
function killFigures(fault: FaultReport, records: readonly CallRecord[]): void {
  const killedAt = fault.figures.killedAt!;
  const failedOf = (rs: CallRecord[]) => codes(count(rs.filter((r) => r.outcome !== 'ok')));
  const inFlight = records.filter((r) => r.start < killedAt && r.start + r.ms >= killedAt);
  const startedAfter = records.filter((r) => r.start >= killedAt && r.start <= fault.end + 5000);
  const failedAfter = startedAfter.filter((r) => r.outcome !== 'ok');
  Object.assign(fault.figures, {
    inFlight: inFlight.length,
    inFlightFailed: inFlight.filter((r) => r.outcome !== 'ok').length,
    startedAfter: startedAfter.length,
    failedAfter: failedAfter.length,
    lastFailedAfterMs: Math.max(0, ...failedAfter.map((r) => r.start - killedAt)),
  });
  fault.observations.push(
    `failed: of the ${inFlight.length} calls in flight at the kill (on any replica): ${failedOf(inFlight)}; ` +
      `of the ${startedAfter.length} started after it (until 5 s past the fault): ${failedOf(startedAfter)}` +
      (failedAfter.length > 0 ? ` (started ${failedAfter.map((r) => r.start - killedAt).join(', ')} ms after the kill)` : ''),
  );
}

function count(records: ReadonlyArray<{ outcome: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  return counts;
}

const codes = (c: Record<string, number>) => Object.entries(c).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';

/** The report as Markdown for BENCHMARKS.md. */
export function formatReport(r: SoakReport): string {
  const lines = [
    `${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.cpus} cores shared with other work, load average ${r.loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${r.loadAfter.map((l) => l.toFixed(1)).join(' ')} after.`,
    `${r.clients} clients (think time 0–${2 * r.thinkMs} ms), ${(r.seconds / 60).toFixed(1)} minutes, result cache ${r.cache ? 'on' : 'off'}.`,
    '',
    `- Calls: ${r.calls}, answered ${r.ok} (${(r.ok / r.seconds).toFixed(1)} calls/s); latency of answered calls p50 ${Math.round(r.latency.p50)} ms, p95 ${Math.round(r.latency.p95)} ms, p99 ${Math.round(r.latency.p99)} ms.`,
    `- Errors by code: ${codes(r.byCode)}; outside the fault windows: ${codes(r.unexplained)}. What each code said (first seen):`,
    ...Object.keys(r.byCode).map((code) => {
      const [key, message] = Object.entries(r.errorSamples).find(([k]) => k.startsWith(`${code} `))!;
      return `  - ${code} (${key.slice(code.length + 1)}): ${message.replace(/\s+/g, ' ').slice(0, 160)}`;
    }),
    ...r.unexplainedSamples.map((s) => `  - ${s}`),
    `- nginx's error log: ${codes(r.nginxLog)}.`,
    `- Answers checked against their identity's ground truth: ${r.checked}; wrong: ${r.violations}.`,
    ...r.violationSamples.map((s) => `  - ${s}`),
    '',
    '| call | calls | p50 ms | p95 ms | errors |',
    '|---|---:|---:|---:|---:|',
    ...r.byKind.map((k) => `| ${k.kind} | ${k.calls} | ${Math.round(k.p50)} | ${Math.round(k.p95)} | ${k.errors} |`),
    '',
    '| replica | RSS first third | RSS last third | RSS trend, last two thirds | trend of its minute troughs | V8 heap troughs, first / last third | heap trough trend | live heap, all threads: after warm-up → end | its trend |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.rss.map((x) => {
      const signed = (v: number | undefined) => (v === undefined ? '—' : `${v >= 0 ? '+' : ''}${v.toFixed(2)} MB/min`);
      const live = (h: LiveHeap | undefined) =>
        h === undefined ? '—' : `${h.afterWarmUpMb.toFixed(1)} → ${h.lastMb.toFixed(1)} MB (${h.threads} threads; main ${h.afterWarmUpMainMb.toFixed(1)} → ${h.lastMainMb.toFixed(1)}; ${h.samples} samples)`;
      const heap = x.heapFirstThirdMb === undefined ? '—' : `${x.heapFirstThirdMb.toFixed(0)} / ${x.heapLastThirdMb!.toFixed(0)} MB`;
      return `| ${x.slot}${x.restarted ? ' (restarted: since then)' : ''} | ${x.firstThirdMb.toFixed(0)} MB | ${x.lastThirdMb.toFixed(0)} MB | ${signed(x.slopeMbPerMin)} (${x.samples} samples) | ${signed(x.troughSlopeMbPerMin)} | ${heap} | ${signed(x.heapTroughSlopeMbPerMin)} | ${live(x.liveHeap)} | ${signed(x.liveHeap?.slopeMbPerMin)} |`;
    }),
    '',
    ...r.faults.flatMap((f) => [
      `**${f.fault}** at ${(f.start / 1000).toFixed(0)} s (calls overlapping it: ${codes(f.outcomes)})`,
      ...f.observations.map((o) => `- ${o}`),
      '',
    ]),
  ];
  return lines.join('\n');
}

function argument(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const faults = (argument('faults') ?? FAULTS.join(',')).split(',').filter(Boolean) as Fault[];
  for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`--faults: unknown fault ${f} (${FAULTS.join(', ')})`);
  const minutes = Number(argument('minutes') ?? 10);
  if (!(minutes > 0 && minutes <= 60)) throw new Error('--minutes must be between 0 and 60');
  let report: SoakReport;
  try {
    report = await runSoak({
      seconds: minutes * 60,
      clients: Number(argument('clients') ?? 32),
      thinkMs: Number(argument('think-ms') ?? 250),
      faults,
      standby: true,
      cache: (argument('cache') ?? 'on') !== 'off',
      rssSampleMs: 5000,
      heapSampleMs: Number(argument('heap-sample-s') ?? 30) * 1000,
      restartKilled: true,
      log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
    });
  } catch (error) {
    if (process.exitCode === 130) process.exit(130); // interrupted: everything is stopped
    throw error;
  }
  const json = argument('json');
  if (json) writeFileSync(json, JSON.stringify(report, null, 2));
  process.stdout.write(`${formatReport(report)}\n`);
  process.exit(process.exitCode === 130 ? 130 : report.violations === 0 && Object.keys(report.unexplained).length === 0 ? 0 : 1);
}
