// Three `zava-mcp serve` replicas on one PostgreSQL database and one Redis, behind a real nginx (Debian's package,
// run as this test's own process with a generated configuration on free loopback ports, the directives of
// deploy/nginx/zava-mcp.conf): calls spread round robin over the replicas, rate limits count across them, and a
// replica killed with SIGKILL costs no call that had not reached it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { STORES } from '../src/data/stores.js';
import { createTestDatabase, REQUIRE_SERVICES, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { freePort } from './support/cluster.js';
import { connectHttp, query, startHttpServer, type HttpServerProcess } from './mcp-harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const nginxMissing = spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status !== 0;
const skip = (await serverUnavailableReason()) ?? (nginxMissing && !REQUIRE_SERVICES ? 'nginx is not installed (Debian package nginx)' : false);

/** The location block of the documented example, so the test runs what the README shows. */
async function documentedLocation(): Promise<string> {
  const conf = await readFile(path.join(ROOT, 'deploy', 'nginx', 'zava-mcp.conf'), 'utf8');
  const start = conf.indexOf('    location / {');
  return conf.slice(start, conf.indexOf('    }', start) + 5);
}

async function callsServed(http: HttpServerProcess): Promise<number> {
  const text = await (await fetch(new URL('/metrics', http.url))).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('zava_tool_calls_total{') && line.includes('tool="execute_sales_query"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('replicas behind nginx', { skip }, () => {
  let t: TestDatabase;
  let dir: string;
  let nginx: ChildProcess;
  let url: string;
  const replicas: HttpServerProcess[] = [];
  const prefix = `zava-test-${process.pid}-${Date.now()}`;

  before(async () => {
    t = await createTestDatabase('server', { customers: 40 });
    for (let i = 0; i < 3; i++) {
      replicas.push(
        await startHttpServer(t.flags, { REDIS_URL: 'redis://127.0.0.1:6379', ZAVA_RATE_LIMIT_PREFIX: prefix, ZAVA_RATE_LIMIT_PER_MINUTE: '12', ZAVA_RATE_LIMIT_BURST: '0' }),
      );
    }
    dir = await mkdtemp(path.join(tmpdir(), 'zava-nginx-'));
    await chmod(dir, 0o755); // nginx's workers run as an unprivileged user when the master is root
    const port = await freePort();
    const upstreams = replicas.map((r) => `    server ${new URL(r.url).host} max_fails=1 fail_timeout=5s;`).join('\n');
    await writeFile(
      path.join(dir, 'nginx.conf'),
      `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream zava_mcp {
${upstreams}
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
${await documentedLocation()}
  }
}
`,
    );
    nginx = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    url = `http://127.0.0.1:${port}/mcp`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline) throw new Error(`nginx did not start: ${await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  after(async () => {
    nginx?.kill('SIGTERM');
    if (nginx && nginx.exitCode === null) await new Promise((resolve) => nginx.once('exit', resolve));
    await Promise.all(replicas.map((r) => r.stop()));
    await t?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('calls spread over the three replicas; the rate limit counts across them', { timeout: 120_000 }, async () => {
    const before_ = await Promise.all(replicas.map(callsServed));
    const client = await connectHttp(url, STORES[0]!.managerId);
    try {
      const answers = [];
      for (let i = 0; i < 14; i++) answers.push(await query(client, 'SELECT count(*) FROM retail.orders'));
      const ok = answers.filter((a) => !a.isError);
      assert.equal(ok.length, 12, 'twelve calls a minute for this identity, counted across every replica');
      const limited = answers.filter((a) => a.isError);
      assert.ok(limited.every((a) => a.result.code === 'RATE_LIMITED'), JSON.stringify(limited.map((a) => a.result)));
      assert.equal(new Set(ok.map((a) => JSON.stringify(a.result.r))).size, 1, 'every replica gives the same answer');
    } finally {
      await client.close();
    }
    const served = (await Promise.all(replicas.map(callsServed))).map((n, i) => n - before_[i]!);
    assert.equal(served.reduce((a, b) => a + b, 0), 14);
    assert.ok(served.every((n) => n >= 3), `round robin: ${served.join(', ')}`);
  });

  test('a replica killed with SIGKILL: the calls after it go to the others, none fails', { timeout: 120_000 }, async () => {
    const client = await connectHttp(url, STORES[1]!.managerId);
    try {
      assert.equal((await query(client, 'SELECT 1 AS one')).isError, false);
      replicas[0]!.process.kill('SIGKILL');
      await new Promise((resolve) => replicas[0]!.process.once('exit', resolve));
      const after_ = [];
      for (let i = 0; i < 9; i++) after_.push(await query(client, 'SELECT 1 AS one'));
      assert.deepEqual(after_.map((a) => a.isError), Array(9).fill(false), 'nginx skips the dead replica (connection refused is retried)');
    } finally {
      await client.close();
    }
  });
});
