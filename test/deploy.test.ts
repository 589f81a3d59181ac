// The deployment files, checked with what runs on this machine (no Docker engine here): the Prometheus alert
// rules with promtool (Debian's prometheus package: `check rules` and the rules' own unit tests), every metric
// they name served by the code; the Dockerfile, .dockerignore and compose.yaml read and cross-checked; compose's
// nginx configuration accepted by `nginx -t` (Debian's nginx package) and proxying as the documented example.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ServerMetrics } from '../src/infra/metrics.js';
import { createTestDatabase, REQUIRE_SERVICES, type TestDatabase } from './support/databases.js';
import { runCli } from './support/cli.js';
import { freePort } from './support/cluster.js';
import { startHttpServer, type HttpServerProcess } from './mcp-harness.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { deployNginxFile, proxyBlocks, mainConfig, NGINX_MISSING, nginxDir, nginxTest, startNginx, upstreamDirectives } from './support/nginx.js';
import { tmpdir } from 'node:os';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

describe('Prometheus alert rules (deploy/prometheus)', () => {
  const skip = promtool ? false : REQUIRE_SERVICES ? false : 'promtool is not installed (Debian package prometheus)';

  test('promtool accepts the rules and their unit tests pass', { skip }, () => {
    const dir = path.join(ROOT, 'deploy', 'prometheus');
    assert.match(execFileSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir }).toString(), /SUCCESS: 6 rules found/);
    assert.match(execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir }).toString(), /SUCCESS/);
  });

  test('every metric the rules use is one the server exports', async () => {
    const metrics = new ServerMetrics('server', { pools: () => ({}), breaker: () => 'closed', auditQueue: () => 0 });
    const exported = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    const rules = parseYaml(read('deploy/prometheus/alerts.yml')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const used = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => [...r.expr.matchAll(/\bzava_[a-z_]+/g)].map((m) => m[0]))));
    assert.ok(used.size >= 6);
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(exported.has(name) || exported.has(base), `${name} is exported`);
    }
  });
});

describe('container files', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => /^[A-Z]+\s/.test(line))
    .map((line) => ({ op: line.split(/\s/)[0]!, args: line.slice(line.indexOf(' ') + 1).trim() }));

  test('Dockerfile: two stages, production dependencies only at run time, a non-root user, health check and entrypoint that exist', () => {
    const stages = instructions.filter((i) => i.op === 'FROM').map((i) => i.args);
    assert.deepEqual(stages.map((s) => s.split(' AS ')[1]), ['build', 'runtime']);
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    assert.match(runtime, /npm ci --omit=dev --ignore-scripts/);
    assert.match(runtime, /^USER node$/m);
    assert.match(runtime, /ZAVA_HOST=0\.0\.0\.0/);
    assert.match(runtime, /ZAVA_AUTH=jwt/);
    const json = (op: string) => JSON.parse(instructions.find((i) => i.op === op)!.args.replace(/^.*?CMD\s+/, '')) as string[];
    const entrypoint = json('ENTRYPOINT');
    const health = JSON.parse(/HEALTHCHECK .*CMD (\[.*\])/.exec(dockerfile)![1]!) as string[];
    assert.deepEqual(entrypoint.slice(0, 2), ['node', 'dist/src/cli/main.js']);
    assert.deepEqual(health, ['node', 'dist/src/cli/main.js', 'health']);
    assert.ok(existsSync(path.join(ROOT, entrypoint[1]!)), 'the entrypoint is what the build produces');
    assert.deepEqual(json('CMD'), ['serve']);
    // Every file the runtime copies from the build stage or the context is produced or present.
    for (const copy of instructions.filter((i) => i.op === 'COPY')) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        if (copy.args.includes('--from=build')) assert.ok(source.startsWith('/app/dist'), source);
        else assert.ok(existsSync(path.join(ROOT, source)), `${source} exists in the build context`);
      }
    }
  });

  test('.dockerignore keeps out what must not reach the image, and nothing the Dockerfile copies', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const secret of ['node_modules', '.env', '.zava-data', '.zava-keys', '.git']) assert.ok(ignored.includes(secret), secret);
    const copied = instructions.filter((i) => i.op === 'COPY' && !i.args.includes('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const source of copied) assert.ok(!ignored.includes(source), `${source} is copied, so it must not be ignored`);
  });

  type Service = {
    image?: string;
    build?: string;
    command?: string[];
    environment?: Record<string, string>;
    volumes?: string[];
    ports?: string[];
    deploy?: { replicas?: number };
    depends_on?: Record<string, { condition: string }>;
    healthcheck?: unknown;
  };
  const services = (parseYaml(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> }).services;

  test('compose.yaml: PostgreSQL with pgvector, Redis, a migration job, the server in jwt mode with the key mounted', () => {
    assert.deepEqual(Object.keys(services).sort(), ['migrate', 'nginx', 'postgres', 'redis', 'server']);
    assert.match(services.postgres!.image!, /^pgvector\/pgvector:pg15$/, 'pg_dump in the image (Debian 12: 15) must not be older than the server');
    assert.ok(services.postgres!.healthcheck && services.redis!.healthcheck);
    assert.deepEqual(services.migrate!.command, ['db', 'migrate']);
    const server = services.server!;
    assert.equal(server.environment!.ZAVA_AUTH, 'jwt');
    assert.equal(server.environment!.ZAVA_JWT_PUBLIC_KEY, '/run/zava-keys/public.pem');
    assert.ok(server.volumes!.some((v) => v.startsWith('./.zava-keys:/run/zava-keys')));
    assert.match(server.environment!.DATABASE_URL!, /^postgres:\/\/zava:.*@postgres:5432\/zava$/);
    assert.equal(server.environment!.REDIS_URL, 'redis://redis:6379');
    assert.equal(server.depends_on!.migrate!.condition, 'service_completed_successfully');
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) assert.ok(dependency in services, `${name} depends on a defined service`);
    }
  });

  test('compose.yaml: three server replicas, reached only through nginx, whose configuration names them', async () => {
    const server = services.server!;
    const nginx = services.nginx!;
    assert.equal(server.deploy?.replicas, 3);
    assert.equal(server.ports, undefined, 'replicas publish no port (three could not share one); nginx is the way in');
    assert.deepEqual(nginx.ports, ['8000:8000']);
    // The resource URL is the balancer's: its published port, unless set from outside.
    assert.equal(server.environment!.ZAVA_PUBLIC_URL, `\${ZAVA_PUBLIC_URL:-http://localhost:${nginx.ports![0]!.split(':')[0]}/mcp}`);
    assert.deepEqual(nginx.depends_on, { server: { condition: 'service_healthy' } }, "the image's HEALTHCHECK gates it");
    const mount = nginx.volumes!.find((v) => v.endsWith(':/etc/nginx/conf.d/default.conf:ro'));
    assert.ok(mount, 'the configuration replaces the image default');
    const file = mount.split(':')[0]!.replace(/^\.\//, '');
    assert.equal(file, 'deploy/nginx/compose.conf');
    const conf = read(file);
    // The upstream is the replicated service by name, on the port the image listens on.
    const upstream = /upstream zava_mcp \{([^}]*)\}/.exec(conf)![1]!;
    const servers = [...upstream.matchAll(/^\s*server\s+(\S+?):(\d+)\s/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(servers, [['server', '8000']]);
    assert.match(read('Dockerfile'), /^EXPOSE 8000$/m);
    assert.match(conf, /^\s*listen 8000;$/m);
    const documented = await deployNginxFile('zava-mcp.conf');
    assert.equal(proxyBlocks(conf), proxyBlocks(documented), 'the same proxying as the documented example');
    assert.deepEqual(upstreamDirectives(conf), upstreamDirectives(documented), 'the same upstream keepalive');
    // nginx closes idle upstream connections before a replica would (its keepAliveTimeout), or a POST can meet a closing one.
    const idle = Number(/keepalive_timeout (\d+)s;/.exec(upstreamDirectives(conf).join(' '))?.[1]);
    const replicaIdle = Number(/keepAliveTimeout = ([\d_]+);/.exec(read('src/protocol/http.ts'))![1]!.replace('_', '')) / 1000;
    assert.ok(idle < replicaIdle, `nginx upstream keepalive_timeout ${idle}s < the replicas' ${replicaIdle}s`);
  });

  test('through the documented proxying, a replica that cannot be reached is a JSON-RPC error the client can show', { skip: NGINX_MISSING && !REQUIRE_SERVICES ? 'nginx is not installed (Debian package nginx)' : false }, async () => {
    const nginx = await startNginx([`127.0.0.1:${await freePort()}`], 'listening'); // nothing listens there
    try {
      const response = await fetch(nginx.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.equal(response.status, 502);
      assert.equal(response.headers.get('content-type'), 'application/json');
      const body = (await response.json()) as { jsonrpc: string; error: { code: number; message: string } };
      assert.equal(body.jsonrpc, '2.0');
      assert.match(body.error.message, /replica serving this call stopped or could not be reached/);
    } finally {
      await nginx.stop();
    }
  });

  test('nginx -t accepts the compose configuration (the service name resolved to loopback here)', { skip: NGINX_MISSING && !REQUIRE_SERVICES ? 'nginx is not installed (Debian package nginx)' : false }, async () => {
    const dir = await nginxDir();
    try {
      // Only Docker's DNS knows `server`; everything else is the file as compose mounts it.
      const conf = read('deploy/nginx/compose.conf').replace('server server:8000', 'server 127.0.0.1:8000');
      await writeFile(path.join(dir, 'nginx.conf'), mainConfig(dir, conf));
      const accepted = nginxTest(dir, path.join(dir, 'nginx.conf'));
      assert.ok(accepted.ok, accepted.output);
      assert.match(accepted.output, /syntax is ok/);
      // And nginx -t can fail: a broken copy is refused.
      await writeFile(path.join(dir, 'broken.conf'), mainConfig(dir, conf.replace('proxy_buffering off;', 'proxy_buffering sideways;')));
      const refused = nginxTest(dir, path.join(dir, 'broken.conf'));
      assert.equal(refused.ok, false);
      assert.match(refused.output, /proxy_buffering/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the image's entrypoint and health check, run outside a container", () => {
  let t: TestDatabase;
  let keys: string;
  let http: HttpServerProcess | undefined;
  /** The runtime stage's ENV, as the container would have it. */
  const imageEnv = (): Record<string, string> => {
    const runtime = read('Dockerfile').slice(read('Dockerfile').indexOf('AS runtime')).replace(/\\\n/g, ' ');
    const env: Record<string, string> = {};
    for (const line of runtime.split('\n').filter((l) => l.startsWith('ENV '))) {
      for (const [, name, value] of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[name!] = value!;
    }
    return env;
  };

  before(async () => {
    t = await createTestDatabase('embedded', { customers: 40 });
    await t.db.close();
    keys = await mkdtemp(path.join(tmpdir(), 'zava-image-keys-'));
    const keygen = await runCli(['auth', 'keygen', '--out', keys]);
    assert.equal(keygen.code, 0, keygen.stderr);
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
    if (keys) await rm(keys, { recursive: true, force: true });
  });

  test('serve with the image environment (jwt mode on all interfaces) becomes ready, and its HEALTHCHECK passes', { timeout: 240_000 }, async () => {
    const env = imageEnv();
    assert.equal(env.ZAVA_AUTH, 'jwt');
    assert.equal(env.ZAVA_HOST, '0.0.0.0');
    const port = String(await freePort());
    const settings = { ...env, PORT: port, ZAVA_DATA_DIR: t.flags[1]!, ZAVA_JWT_PUBLIC_KEY: path.join(keys, 'public.pem') };
    // The image without a key refuses to start, saying what to configure.
    const keyless = await runCli(['serve'], { ...settings, ZAVA_JWT_PUBLIC_KEY: '' }, ROOT);
    assert.equal(keyless.code, 1);
    assert.match(keyless.stderr, /ZAVA_JWT_PUBLIC_KEY|ZAVA_JWT_JWKS_URL/);
    // startHttpServer passes --host/--port flags; the image passes none, so its ENV decides: the same values here.
    http = await startHttpServer(['--host', '0.0.0.0', '--port', port], settings);
    assert.match(http.url, new RegExp(`:${port}/mcp$`));
    const health = await runCli(['health'], settings, ROOT);
    assert.equal(health.code, 0, health.stdout + health.stderr);
    assert.match(health.stdout, new RegExp(`zava-mcp at http://127\\.0\\.0\\.1:${port}: ready`));
    // Without a token the MCP endpoint answers 401 with the bearer challenge.
    const anonymous = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer /);
  });
});
