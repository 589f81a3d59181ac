// A search flood against a spawned HTTP server, shared by test/event-loop.test.ts and bench/event-loop.ts: one
// identity keeps `concurrency` searches of costly 1,000-character descriptions in flight (bounded in count and
// time) while /health and get_current_utc_date are probed, and a second identity searches once mid-flood.
import { on } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Client } from '../mcp-harness.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/**
 * A 1,000-character description of distinct made-up words of 9–14 letters, different for every `n`: the
 * costliest input for the local model, since every unknown word of that length is spell-checked against the
 * whole catalog vocabulary (edit distance up to 3), and nothing is cached from one description to the next.
 */
export function costlyDescription(n: number): string {
  let state = (n * 2_654_435_761 + 1) >>> 0;
  const next = () => (state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0);
  const words: string[] = [];
  let length = 0;
  while (length < 1_000) {
    let word = '';
    const letters = 9 + (next() % 6);
    for (let i = 0; i < letters; i++) word += String.fromCharCode(97 + (next() >>> 8) % 26);
    words.push(word);
    length += word.length + 1;
  }
  return words.join(' ').slice(0, 1_000).trim();
}

/** The p-th percentile (nearest rank) of a list of milliseconds; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface FloodOptions {
  /** The server's /mcp URL (/health is next to it). */
  readonly url: string;
  /** Client of the flooding identity. */
  readonly flooder: Client;
  /** Client of another identity: searches once mid-flood. */
  readonly victim: Client;
  /** The identity get_current_utc_date is probed as (from a thread of its own). */
  readonly probeUserId: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxSearches: number;
  /** Pause between one probe and the next of its kind (default 10 ms). */
  readonly probeEveryMs?: number;
  /** Where the flood's descriptions start (different runs on one server should not share them). */
  readonly offset?: number;
}

export interface FloodReport {
  readonly answered: number;
  readonly failed: number;
  readonly ms: number;
  /** Latencies in milliseconds. */
  readonly health: number[];
  readonly date: number[];
  readonly victim: { readonly ms: number; readonly isError: boolean; readonly duringFlood: boolean };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runSearchFlood(options: FloodOptions): Promise<FloodReport> {
  const { flooder, victim } = options;
  const started = performance.now();
  const deadline = started + options.durationMs;
  let sent = 0;
  let answered = 0;
  let failed = 0;
  let flooding = true;

  // The flood lasts durationMs, and on until the other identity's search is answered (at most 3 × durationMs).
  let victimPending = true;
  const lastCall = started + 3 * options.durationMs;
  const going = () => sent < options.maxSearches && (performance.now() < deadline || (victimPending && performance.now() < lastCall));
  const lane = async (): Promise<void> => {
    while (going()) {
      const n = (options.offset ?? 0) + sent++;
      const raw = (await flooder.callTool({ name: 'semantic_search_products', arguments: { query_description: costlyDescription(n) } })) as CallToolResult;
      if (raw.isError) failed++;
      else answered++;
    }
  };
  // No lanes: the probes alone for durationMs (the floor of this machine at this moment).
  const lanes = options.concurrency > 0 ? Promise.all(Array.from({ length: options.concurrency }, lane)) : sleep(options.durationMs);
  const flood = lanes.finally(() => (flooding = false));

  // Probes from a thread of their own, from 300 ms in (the flood fills the server first) until the flood ends.
  const probe = async (): Promise<{ health: number[]; date: number[] }> => {
    await sleep(300);
    const worker = new Worker(new URL('./probe-worker.js', import.meta.url), {
      workerData: { url: options.url, userId: options.probeUserId, everyMs: options.probeEveryMs ?? 10 },
    });
    try {
      const messages = on(worker, 'message');
      await messages.next(); // ready
      await flood;
      worker.postMessage('stop');
      return (await messages.next()).value[0] as { health: number[]; date: number[] };
    } finally {
      await worker.terminate();
    }
  };

  const victimSearch = async () => {
    await sleep(Math.min(1_000, options.durationMs / 3));
    const t0 = performance.now();
    try {
      const raw = (await victim.callTool({ name: 'semantic_search_products', arguments: { query_description: 'containers for paint' } })) as CallToolResult;
      return { ms: performance.now() - t0, isError: raw.isError === true, duringFlood: flooding };
    } finally {
      victimPending = false;
    }
  };

  const [, { health, date }, victimResult] = await Promise.all([flood, probe(), victimSearch()]);
  return { answered, failed, ms: performance.now() - started, health, date, victim: victimResult };
}

export function describeFlood(report: FloodReport): string {
  const f = (xs: number[], p: number) => percentile(xs, p).toFixed(1);
  return (
    `${report.answered} searches answered, ${report.failed} refused or failed in ${Math.round(report.ms)} ms; ` +
    `/health p50 ${f(report.health, 50)} p99 ${f(report.health, 99)} max ${f(report.health, 100)} ms (${report.health.length} probes); ` +
    `get_current_utc_date p50 ${f(report.date, 50)} p99 ${f(report.date, 99)} max ${f(report.date, 100)} ms (${report.date.length}); ` +
    `other identity's search ${Math.round(report.victim.ms)} ms${report.victim.isError ? ' (error)' : ''}`
  );
}
