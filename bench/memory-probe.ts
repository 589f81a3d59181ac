// Memory of one `zava-mcp serve` under the soak's call mix (issue 15: "memory of each replica flat"), measured
// without the noise of garbage not yet collected: the server runs with bench/memory-hook.ts, which forces a full
// collection in every thread (main and embedding workers) every --sample-s and logs each thread's live heap, the
// process's external/ArrayBuffer memory and RSS. One replica in jwt mode on a PostgreSQL of its own (seeded like
// the soak's), clients straight to it (no nginx, no standby, no faults).
// Variants that feed the per-request and per-identity state with new keys, which the soak's eight identities and
// eight search texts never do:
//   --fresh-identities  every client takes a new token with a new `sub` (same claims) every 20 calls;
//   --novel-searches    every search asks for made-up words (new every time) besides the soak's texts.
// Usage: npm run bench:memory -- [--minutes=3] [--clients=16] [--think-ms=100] [--sample-s=20] [--cache=on|off]
//        [--redis] [--fresh-identities] [--novel-searches] [--malloc-arena-max=N] [--json=FILE]
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { OwnCluster } from '../test/support/cluster.js';
import { OwnRedis } from '../test/support/redis.js';
import { connectWithToken, newSigningKey, signTestToken } from '../test/support/tokens.js';
import { startHttpServer, type Client } from '../test/mcp-harness.js';
import type { MemoryProbeLine } from './memory-hook.js';
import { readGroundTruth, SOAK_IDENTITIES, soakCalls, type SoakCall } from './soak-workload.js';

const HOOK = fileURLToPath(new URL('./memory-hook.js', import.meta.url));

function argument(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const minutes = Number(argument('minutes') ?? 3);
const clients = Number(argument('clients') ?? 16);
const thinkMs = Number(argument('think-ms') ?? 100);
const sampleS = Number(argument('sample-s') ?? 20);
const cache = argument('cache') ?? 'on';
const arenas = argument('malloc-arena-max');
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** A made-up word that no dictionary and no earlier call has: a new key for every word cache. */
let novel = 0;
const letters = (n: number) => [...n.toString(26)].map((d) => String.fromCharCode(97 + parseInt(d, 26))).join('');
// Letters only: a token with a digit is a code (SKU-like), which is matched as written and never looked up.
const madeUpWord = () => `zq${letters(novel++)}x${letters(Math.floor(Math.random() * 26 ** 4))}`;

const cleanups: Array<() => Promise<unknown>> = [];
const probeFile = path.join(await mkdtemp(path.join(tmpdir(), 'zava-memory-')), 'probe.jsonl');
try {
  const loadBefore = loadavg();
  const primary = await OwnCluster.create();
  cleanups.push(async () => primary.destroy());
  await primary.seed();
  const redis = flag('redis') ? await OwnRedis.start() : undefined;
  if (redis) cleanups.push(() => redis.stop());
  const key = await newSigningKey('ES256');
  const pem = path.join(path.dirname(probeFile), 'public.pem');
  await writeFile(pem, createPublicKey({ key: key.jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString());
  const env: Record<string, string> = {
    ZAVA_AUTH: 'jwt',
    ZAVA_JWT_PUBLIC_KEY: pem,
    ZAVA_CACHE: cache,
    ZAVA_RATE_LIMIT_PER_MINUTE: '1000000',
    ZAVA_EDGE_RATE_LIMIT: '1000000',
    NODE_OPTIONS: `--expose-gc --import=${HOOK}`,
    ZAVA_MEMORY_PROBE_FILE: probeFile,
    ZAVA_MEMORY_PROBE_MS: String(sampleS * 1000),
    ...(redis ? { REDIS_URL: redis.url } : {}),
    ...(arenas ? { MALLOC_ARENA_MAX: arenas } : {}),
  };
  const server = await startHttpServer(['--database-url', primary.url(), '--port', '0'], env);
  cleanups.push(() => server.stop());
  log(`server at ${server.url} (pid ${server.process.pid}); cache ${cache}${redis ? ' with Redis' : ''}${arenas ? `, MALLOC_ARENA_MAX=${arenas}` : ''}`);
  const truth = await readGroundTruth(primary.url());

  const end = Date.now() + minutes * 60_000;
  let calls = 0;
  let errors = 0;
  let wrong = 0;
  let identities = 0;
  const runClient = async (index: number) => {
    const identity = SOAK_IDENTITIES[index % SOAK_IDENTITIES.length]!;
    const mix = soakCalls(identity, truth);
    const total = mix.reduce((s, [w]) => s + w, 0);
    const pick = (): SoakCall => {
      let x = Math.random() * total;
      for (const [w, call] of mix) if ((x -= w) < 0) return call;
      return mix[0]![1];
    };
    let client: Client | undefined;
    let used = 0;
    try {
      while (Date.now() < end) {
        if (!client || (flag('fresh-identities') && used >= 20)) {
          await client?.close().catch(() => undefined);
          const sub = flag('fresh-identities') ? `${identity.sub}-${identities}` : identity.sub;
          identities++;
          client = await connectWithToken(server.url, await signTestToken({ key, sub, claims: identity.claims, expiresIn: 3600 }));
          used = 0;
        }
        const call = pick();
        const args = call.tool === 'semantic_search_products' && flag('novel-searches') ? { ...call.args, query_description: `${String(call.args.query_description)} ${madeUpWord()} ${madeUpWord()}ing` } : call.args;
        used++;
        calls++;
        try {
          const raw = await client.callTool({ name: call.tool, arguments: args });
          if (raw.isError) errors++;
          else if (args === call.args && call.check((raw.structuredContent ?? {}) as Record<string, unknown>) !== undefined) wrong++;
        } catch {
          errors++;
        }
        if (thinkMs > 0) await sleep(Math.random() * 2 * thinkMs);
      }
    } finally {
      await client?.close().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => runClient(i)));
  await sleep(sampleS * 1000 + 1000); // one more sample, after the load
  const lines = (await readFile(probeFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as MemoryProbeLine);
  const mb = (b: number) => (b / 1048576).toFixed(1);
  // Samples of all threads taken in the same round are grouped by the round's index per thread.
  const threads = [...new Set(lines.map((l) => l.thread))].sort((a, b) => a - b);
  const byThread = new Map(threads.map((t) => [t, lines.filter((l) => l.thread === t)]));
  const rounds = Math.min(...[...byThread.values()].map((ls) => ls.length));
  const t0 = lines[0]!.at;
  const out = [
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; load ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadavg().map((l) => l.toFixed(1)).join(' ')} after. ` +
      `${clients} clients, ${minutes} min, cache ${cache}${redis ? ' (Redis)' : ''}${flag('fresh-identities') ? ', a new identity every 20 calls' : ''}${flag('novel-searches') ? ', made-up words in every search' : ''}${arenas ? `, MALLOC_ARENA_MAX=${arenas}` : ''}: ` +
      `${calls} calls, ${errors} errors, ${wrong} wrong, ${identities} identities.`,
    '',
    `| t | RSS | live heap main | live heap workers (${threads.length - 1}) | external | arrayBuffers |`,
    '|---:|---:|---:|---:|---:|---:|',
  ];
  for (let r = 0; r < rounds; r++) {
    const main = byThread.get(threads[0]!)![r]!;
    const workers = threads.slice(1).reduce((s, t) => s + byThread.get(t)![r]!.liveHeap, 0);
    out.push(`| ${((main.at - t0) / 1000).toFixed(0)} s | ${mb(main.rss ?? 0)} | ${mb(main.liveHeap)} | ${mb(workers)} | ${mb(main.external)} | ${mb(main.arrayBuffers)} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  const json = argument('json');
  if (json) await writeFile(json, JSON.stringify(lines));
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log(`cleanup: ${(error as Error).message}`));
  await rm(path.dirname(probeFile), { recursive: true, force: true });
}
