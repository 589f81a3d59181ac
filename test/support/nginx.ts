// nginx (Debian's package) as a process of the caller's own, in front of zava-mcp replicas on loopback: a
// generated main configuration around the proxy blocks of deploy/nginx/zava-mcp.conf, so what runs is what the
// README documents. Used by test/replicas.test.ts, test/deploy.test.ts (nginx -t) and bench/soak.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export const NGINX_MISSING = spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status !== 0;

/** A configuration file of deploy/nginx, as text. */
export function deployNginxFile(name: string): Promise<string> {
  return readFile(path.join(ROOT, 'deploy', 'nginx', name), 'utf8');
}

/**
 * The proxying part of an nginx configuration, which every variant shares: the `location / { … }` block and the
 * named location after it that answers for a replica that failed under a call.
 */
export function proxyBlocks(conf: string): string {
  const start = conf.indexOf('    location / {');
  const failed = conf.indexOf('    location @replica_failed {');
  if (start < 0 || failed < start) throw new Error('no "location / {" block followed by "location @replica_failed {"');
  return conf.slice(start, conf.indexOf('\n    }', failed) + 6);
}

/** The directives of the `upstream zava_mcp` block other than its `server` lines (keepalive and its timeout). */
export function upstreamDirectives(conf: string): string[] {
  const block = /upstream zava_mcp \{([^}]*)\}/.exec(conf)?.[1];
  if (block === undefined) throw new Error('no "upstream zava_mcp" block');
  return block
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#') && !line.startsWith('server '));
}

/** A main configuration (no daemon, every path under `dir`) whose http block holds `httpBlock`. */
export function mainConfig(dir: string, httpBlock: string): string {
  return `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${httpBlock}
}
`;
}

/** A directory nginx's unprivileged workers can read (the master runs as root here). */
export async function nginxDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zava-nginx-'));
  await chmod(dir, 0o755);
  return dir;
}

/** `nginx -t` on a configuration file: the exit status and what nginx said. */
export function nginxTest(dir: string, configFile: string): { ok: boolean; output: string } {
  const run = spawnSync('nginx', ['-t', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', configFile], { encoding: 'utf8' });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

export interface Nginx {
  /** The balanced MCP endpoint, http://127.0.0.1:PORT/mcp. */
  readonly url: string;
  readonly process: ChildProcess;
  /** What nginx logged (warnings and errors: a refused upstream, a connection closed under a request). */
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts nginx round robin over `upstreams` (host:port each) with the documented proxy blocks, on a free loopback
 * port, and waits until it forwards /health (or, for upstreams that are down on purpose, until it answers at all).
 */
export async function startNginx(upstreams: readonly string[], readyWhen: 'forwarding' | 'listening' = 'forwarding'): Promise<Nginx> {
  const dir = await nginxDir();
  const port = await freePort();
  const documented = await deployNginxFile('zava-mcp.conf');
  const upstream = [...upstreams.map((u) => `server ${u} max_fails=1 fail_timeout=5s;`), ...upstreamDirectives(documented)].map((line) => `    ${line}`).join('\n');
  const http = `  upstream zava_mcp {\n${upstream}\n  }\n  server {\n    listen 127.0.0.1:${port};\n${proxyBlocks(documented)}\n  }`;
  await writeFile(path.join(dir, 'nginx.conf'), mainConfig(dir, http));
  const child = spawn('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  // Not installed: 'error' (ENOENT) and no 'exit'; without a listener the error would end the caller's process.
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
  });
  const stop = async () => {
    if (!spawnError && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnError) {
      await stop();
      throw new Error(`nginx could not be started (${spawnError.message}): install Debian's nginx package (.ci/run does)`);
    }
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok || readyWhen === 'listening', () => false)) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      const log = await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '');
      await stop();
      throw new Error(`nginx did not start: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url: `http://127.0.0.1:${port}/mcp`, process: child, errorLog: () => readFile(path.join(dir, 'error.log'), 'utf8').catch(() => ''), stop };
}
