// Import of a full-size file in the reference system's product_data.json layout (~20 MB: every product with a
// 1536-number description embedding and a 512-number image embedding, pretty-printed one number a line):
//   1. the streaming scan alone, in this process: time and peak heap, at 1× and 2× the products (bounded memory
//      means the peak does not grow with the file);
//   2. `zava-mcp catalog import` as a user runs it, a child process on a fresh database (embedded, and the
//      PostgreSQL service when it is up): wall time and peak RSS (/usr/bin/time), with the openai provider (the
//      file's vectors are its model's: nothing to embed, no request made, a dummy key) and with the local provider
//      (which also embeds the catalog with its own model). The migrations of the fresh database are timed apart.
// Usage: npm run bench:catalog [-- --products 300]
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { scanCatalogFile, readReferenceEmbeddings } from '../src/data/reference-catalog.js';
import { syntheticReferenceCatalog, writeReferenceCatalog } from '../test/support/reference-catalog.js';
import { createServerDatabaseUrl, serverUnavailableReason } from '../test/support/databases.js';

const { values } = parseArgs({ options: { products: { type: 'string', default: '300' } } });
const products = Number(values.products);
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/**
 * `work` run twice: timed as it is, then again for its peak live heap (used + array buffers), sampled every 20 ms
 * after a full collection (with --expose-gc), so garbage not yet collected does not count; without --expose-gc,
 * every 2 ms as it is.
 */
async function peakHeap<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; peak: number; base: number }> {
  const timedStart = performance.now();
  await work();
  const ms = performance.now() - timedStart;
  const measured = await livePeak(work);
  return { ...measured, ms };
}

async function livePeak<T>(work: () => Promise<T>): Promise<{ result: T; peak: number; base: number }> {
  const gc = globalThis.gc;
  gc?.();
  const sample = () => {
    gc?.();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = sample();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, sample());
  }, gc ? 20 : 2);
  try {
    const result = await work();
    peak = Math.max(peak, sample());
    return { result, peak, base };
  } finally {
    clearInterval(timer);
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'zava-bench-catalog-'));
try {
  console.log(`Reference-layout import, ${products} products (each 1536 + 512 numbers), Node ${process.version}${globalThis.gc ? '' : ' (no --expose-gc: heap figures include garbage)'}`);
  for (const factor of [1, 2]) {
    const file = path.join(dir, `product_data_${factor}x.json`);
    const bytes = await writeReferenceCatalog(file, syntheticReferenceCatalog(products * factor));
    const scan = await peakHeap(() => scanCatalogFile(file, 'product_data.json'));
    let vectors = 0;
    const second = await peakHeap(() => {
      vectors = 0; // peakHeap runs it twice
      return readReferenceEmbeddings(file, 'product_data.json', 64, async (batch) => void (vectors += batch.length));
    });
    console.log(
      `  scan ${factor}× (${mb(bytes)}): ${scan.ms.toFixed(0)} ms, heap +${mb(scan.peak - scan.base)} at peak; ` +
        `vector read: ${vectors} vectors in ${second.ms.toFixed(0)} ms, heap +${mb(second.peak - second.base)} at peak`,
    );
  }

  const file = path.join(dir, 'product_data_1x.json');
  const unavailable = await serverUnavailableReason().catch((error: Error) => error.message);
  if (unavailable) console.log(`  server: skipped (${unavailable})`);
  const providers: [string, NodeJS.ProcessEnv][] = [
    ['openai provider (file vectors used as they are)', { ZAVA_EMBEDDING_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-bench-unused', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }],
    ['local provider (embeds the catalog too)', { ZAVA_EMBEDDING_PROVIDER: 'local' }],
  ];
  const timed = (args: string[], env: NodeJS.ProcessEnv) => {
    const run = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    const lines = run.stderr.trim().split('\n');
    const [seconds, maxKb] = lines.at(-1)!.split(' ');
    if (run.status !== 0) throw new Error(lines.slice(-5).join('\n'));
    return { seconds: Number(seconds), rss: Number(maxKb) * 1024, lines };
  };
  for (const backend of unavailable ? ['embedded'] : ['embedded', 'server']) {
    for (const [providerName, env] of providers) {
      const server = backend === 'server' ? await createServerDatabaseUrl() : undefined;
      const flags = server ? ['--database-url', server.url] : ['--data-dir', path.join(dir, `pglite-${env.ZAVA_EMBEDDING_PROVIDER}`)];
      try {
        const migrate = timed(['db', 'migrate', ...flags], env);
        const run = timed(['catalog', 'import', file, ...flags], env);
        console.log(
          `  ${backend}, ${providerName}: catalog import ${run.seconds.toFixed(1)} s wall, peak RSS ${mb(run.rss)} ` +
            `(fresh database: migrations ${migrate.seconds.toFixed(1)} s, peak RSS ${mb(migrate.rss)})`,
        );
        for (const line of run.lines.filter((l) => /^Imported|: imported /.test(l))) console.log(`    ${line.replace(/^.*?: imported \S+/, 'imported')}`);
      } finally {
        await server?.drop();
      }
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
