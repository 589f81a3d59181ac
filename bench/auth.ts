// The cost of jwt mode over dev mode (issue 11): `npm run build && node dist/bench/auth.js [--calls N] [--seconds S] [--clients N]`.
//   verify:     jose's jwtVerify of one ES256 token with the key imported once (what every HTTP request pays), in-process.
//   latency:    p50/p95 of one-row execute_sales_query calls, one at a time, against a dev-mode and a jwt-mode
//               server on the same database, interleaved call by call.
//   throughput: calls/s of the same call from N concurrent clients (default 8) for S seconds, each mode in turn.
// Both servers run on one fresh database on the PostgreSQL service (ZAVA_BENCH_PG_URL or
// postgres://postgres@127.0.0.1:5432/postgres), seeded small, dropped afterwards. Rate limits are off.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { importSPKI, jwtVerify } from 'jose';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? Number(argv[index + 1]) : fallback;
};
const CALLS = option('calls', 400);
const SECONDS = option('seconds', 10);
const CLIENTS = option('clients', 8);
const ADMIN_URL = process.env.ZAVA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SEATTLE = 'f47ac10b-58cc-4372-a567-0e02b2c3d479';
const SQL = 'SELECT store_name FROM retail.stores WHERE store_id = 1';

function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`zava-mcp ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

function serve(databaseUrl: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--database-url', databaseUrl, '--port', '0'], {
    env: { ...process.env, ZAVA_LOG_FORMAT: 'json', ZAVA_LOG_LEVEL: 'info', ZAVA_RATE_LIMIT_PER_MINUTE: '0', ZAVA_EDGE_RATE_LIMIT: '0', ZAVA_CACHE: 'off', ZAVA_CUSTOMERS: '2000', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const match = /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/.exec(err);
      if (match) resolve({ url: match[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
}

async function call(url: string, headers: Record<string, string>): Promise<number> {
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'execute_sales_query', arguments: { postgresql_query: SQL } } }),
  });
  const text = await response.text();
  if (response.status !== 200 || text.includes('"isError":true')) throw new Error(`call failed: ${response.status} ${text.slice(0, 300)}`);
  return performance.now() - started;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

async function throughput(url: string, headers: Record<string, string>): Promise<number> {
  const until = performance.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        await call(url, headers);
        done++;
      }
    }),
  );
  return done / SECONDS;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'zava-bench-auth-'));
  const name = `zava_bench_auth_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${name}`;
  const servers: ChildProcess[] = [];
  try {
    await run(['auth', 'keygen', '--out', path.join(work, 'keys')]);
    const token = (await run(['auth', 'token', '--key', path.join(work, 'keys', 'private.pem'), '--sub', 'bench', '--role', 'store_manager', '--store', 'Zava Retail Seattle'])).trim();

    // verify: the per-request cost of the signature and claim checks with a cached key.
    const key = await importSPKI(readFileSync(path.join(work, 'keys', 'public.pem'), 'utf8'), 'ES256');
    const verifyTimes: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const started = performance.now();
      await jwtVerify(token, key, { algorithms: ['ES256'], issuer: 'zava-auth', audience: 'mcp-server' });
      verifyTimes.push(performance.now() - started);
    }

    process.stderr.write('starting the dev-mode server (seeds and embeds the catalog on first start)…\n');
    const dev = await serve(dbUrl.toString(), {});
    servers.push(dev.child);
    const jwt = await serve(dbUrl.toString(), { ZAVA_AUTH: 'jwt', ZAVA_JWT_PUBLIC_KEY: path.join(work, 'keys', 'public.pem') });
    servers.push(jwt.child);
    const devHeaders = { 'x-rls-user-id': SEATTLE };
    const jwtHeaders = { authorization: `Bearer ${token}` };
    for (let i = 0; i < 50; i++) {
      await call(dev.url, devHeaders);
      await call(jwt.url, jwtHeaders);
    }
    const devTimes: number[] = [];
    const jwtTimes: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      devTimes.push(await call(dev.url, devHeaders));
      jwtTimes.push(await call(jwt.url, jwtHeaders));
    }
    const devRate = await throughput(dev.url, devHeaders);
    const jwtRate = await throughput(jwt.url, jwtHeaders);
    const ms = (v: number) => `${v.toFixed(3)} ms`;
    const lines = [
      `machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${loadavg().map((l) => l.toFixed(1)).join(' ')} — shared with other work`,
      `jwtVerify (ES256, cached key), 2000 runs: p50 ${ms(percentile(verifyTimes, 50))}, p95 ${ms(percentile(verifyTimes, 95))}`,
      `one-row execute_sales_query, ${CALLS} calls each, interleaved: dev p50 ${ms(percentile(devTimes, 50))} p95 ${ms(percentile(devTimes, 95))}; jwt p50 ${ms(percentile(jwtTimes, 50))} p95 ${ms(percentile(jwtTimes, 95))}; jwt − dev p50 ${ms(percentile(jwtTimes, 50) - percentile(devTimes, 50))}`,
      `throughput at ${CLIENTS} clients, ${SECONDS} s each: dev ${devRate.toFixed(0)} calls/s, jwt ${jwtRate.toFixed(0)} calls/s (${((jwtRate / devRate) * 100).toFixed(0)}% of dev)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const child of servers) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
