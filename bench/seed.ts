// Seeding and start-up benchmark (issue 2). Each measurement runs in its own process:
//   - the reference dataset (100,000 customers) generated and loaded into the PostgreSQL service and into a
//     new embedded database (target: ≤ 30 s and ≤ 90 s),
//   - a later start on the existing embedded database (target: ready in ≤ 5 s),
//   - peak memory of the seeding process and of a process serving the embedded database at that size.
// Usage: npm run bench:seed [-- --customers N]   (PostgreSQL at ZAVA_BENCH_PG_URL or 127.0.0.1:5432)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const customersFlag = process.argv.indexOf('--customers');
const customers = customersFlag > 0 ? Number(process.argv[customersFlag + 1]) : 100_000;
const adminUrl = process.env.ZAVA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const child = fileURLToPath(new URL('./seed-child.js', import.meta.url));

function measure(args: string[]): Record<string, unknown> {
  const run = spawnSync(process.execPath, [child, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`${args.join(' ')} failed:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** Spawns `zava-mcp serve` on a free port; milliseconds until it logs that it serves, then stops it. */
function serveUntilListening(dataDir: string): Promise<number> {
  const started = Date.now();
  const server = spawn(process.execPath, [cli, 'serve', '--data-dir', dataDir, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let log = '';
    let readyMs: number | undefined;
    server.stderr.on('data', (chunk) => {
      log += chunk;
      if (readyMs === undefined && /serving Streamable HTTP/.test(log)) {
        readyMs = Date.now() - started;
        server.kill('SIGTERM');
      }
    });
    server.once('exit', (code) => {
      if (readyMs !== undefined) resolve(readyMs);
      else reject(new Error(`serve exited (${code}) before serving:\n${log}`));
    });
  });
}

const results: Record<string, unknown>[] = [];
const database = `zava_bench_${process.pid}`;
await admin(`CREATE DATABASE ${database}`);
try {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  results.push({ label: 'seed, PostgreSQL service', ...measure(['seed', url.toString(), String(customers)]) });
  results.push({ label: 'sample analytics, PostgreSQL service', ...measure(['query', url.toString()]) });
} finally {
  await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
}

const root = mkdtempSync(path.join(tmpdir(), 'zava-bench-'));
try {
  const dir = path.join(root, 'pglite');
  results.push({ label: 'seed, embedded (new directory, initdb included)', ...measure(['seed', dir, String(customers)]) });
  for (let i = 1; i <= 3; i++) results.push({ label: `later start, embedded (run ${i})`, ...measure(['start', dir]) });
  // The whole of a later `npm start`: the incremental build (nothing to compile), then `zava-mcp serve` until it
  // answers on HTTP (database opened and migrated, embeddings checked, the local model fitted).
  const firstServe = await serveUntilListening(dir); // embeds the catalog on its first start
  results.push({ label: 'first serve on the seeded embedded database (embeds the catalog)', readyMs: firstServe });
  for (let i = 1; i <= 3; i++) {
    const build = Date.now();
    const built = spawnSync('npm', ['run', 'build', '--silent'], { encoding: 'utf8', cwd: repoRoot });
    if (built.status !== 0) throw new Error(`build failed: ${built.stderr}`);
    const buildMs = Date.now() - build;
    const serveMs = await serveUntilListening(dir);
    results.push({ label: `later npm start, embedded (run ${i})`, buildMs, serveMs, readyMs: buildMs + serveMs });
  }
  results.push({ label: 'sample analytics, embedded', ...measure(['query', dir]) });
  const du = spawnSync('du', ['-sm', dir], { encoding: 'utf8' });
  results.push({ label: 'embedded data directory size', MiB: Number(du.stdout.split('\t')[0]) });
} finally {
  rmSync(root, { recursive: true, force: true });
}

for (const r of results) console.log(JSON.stringify(r));
