// The event loop under a search flood (issue 9, "The event loop"), for BENCHMARKS.md: a spawned HTTP server on a
// seeded embedded database (loopback only), one identity keeping N searches of costly 1,000-character
// descriptions in flight for a few seconds, while /health and get_current_utc_date (another identity) are probed
// one after the other; p50/p99 of both, the searches answered, and the other identity's one search. First the
// same probes with no load, as the floor. The flood and the probes are test/support/search-flood.ts, the ones
// test/event-loop.test.ts asserts on.
// Usage: node dist/bench/event-loop.js [--concurrency=8,40] [--seconds=8] [--customers=60]
// (ZAVA_* variables in the environment reach the server, e.g. ZAVA_EMBEDDING_WORKERS.)
import { cpus } from 'node:os';
import { STORES } from '../src/data/stores.js';
import { ensureEmbeddings } from '../src/search/store.js';
import { createTestDatabase } from '../test/support/databases.js';
import { connectHttp, startHttpServer } from '../test/mcp-harness.js';
import { describeFlood, percentile, runSearchFlood } from '../test/support/search-flood.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const LEVELS = arg('concurrency', '8,40').split(',').map(Number);
const SECONDS = Number(arg('seconds', '8'));
const CUSTOMERS = Number(arg('customers', '60'));

// The SDK client adds an abort listener per request; many calls per client trip Node's leak warning.
process.removeAllListeners('warning');

async function main(): Promise<void> {
  const t = await createTestDatabase('embedded', { customers: CUSTOMERS });
  await ensureEmbeddings(t.db); // so the server only fits the model at start
  await t.db.close(); // the spawned server opens the directory itself
  const zava = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('ZAVA_') && v !== undefined)) as Record<string, string>;
  const server = await startHttpServer(t.flags, zava);
  const flooder = await connectHttp(server.url, STORES[0]!.managerId);
  const victim = await connectHttp(server.url, STORES[1]!.managerId);
  const lines: string[] = [`${cpus().length} cores; embedded backend, ${CUSTOMERS} customers; ${SECONDS} s per level`];
  try {
    await victim.callTool({ name: 'semantic_search_products', arguments: { query_description: 'containers for paint' } });
    // The floor: the same probe loop with nothing else running.
    const idle = { health: [] as number[], date: [] as number[] };
    for (let i = 0; i < 100; i++) {
      let t0 = performance.now();
      await (await fetch(new URL('/health', server.url))).text();
      idle.health.push(performance.now() - t0);
      t0 = performance.now();
      await victim.callTool({ name: 'get_current_utc_date', arguments: {} });
      idle.date.push(performance.now() - t0);
    }
    const f = (xs: number[], p: number) => percentile(xs, p).toFixed(1);
    lines.push(`no load: /health p50 ${f(idle.health, 50)} p99 ${f(idle.health, 99)} ms; get_current_utc_date p50 ${f(idle.date, 50)} p99 ${f(idle.date, 99)} ms`);
    let offset = 0;
    for (const concurrency of LEVELS) {
      const report = await runSearchFlood({ url: server.url, flooder, victim, probeUserId: STORES[1]!.managerId, concurrency, durationMs: SECONDS * 1000, maxSearches: 5_000, offset });
      offset += 10_000;
      lines.push(`${concurrency} searches in flight: ${describeFlood(report)}`);
    }
  } finally {
    await flooder.close().catch(() => undefined);
    await victim.close().catch(() => undefined);
    await server.stop();
    await t.cleanup();
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`event-loop bench: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
