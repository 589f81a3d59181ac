// The soak's own stack, all on loopback and all stopped at the end: a PostgreSQL primary of its own (OwnCluster:
// the soak restarts it) with optionally a pg_basebackup hot standby, a redis-server of its own (restarted too),
// three `zava-mcp serve` replicas in jwt mode started together on fixed free ports (a killed one comes back on its
// port), and nginx round robin in front of them (the documented location block). Nothing shared is touched.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, OwnCluster } from '../test/support/cluster.js';
import { startNginx, type Nginx } from '../test/support/nginx.js';
import { OwnRedis } from '../test/support/redis.js';
import { newSigningKey, signTestToken, type SigningKey } from '../test/support/tokens.js';
import { startHttpServer, type HttpServerProcess } from '../test/mcp-harness.js';

const MEMORY_HOOK = fileURLToPath(new URL('./memory-hook.js', import.meta.url));

export interface SoakStackOptions {
  readonly standby: boolean;
  /** The result cache of the replicas (default on); off sends every call to a database. */
  readonly cache?: boolean;
  /** Every how many ms each replica logs its threads' live heaps after a forced full collection (0 or absent: never). */
  readonly heapSampleMs?: number;
  readonly log: (line: string) => void;
}

/** Owner-side SQL on one of the soak's clusters (as postgres, a superuser). */
export async function clusterSql<T extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Query-role backends connected to a cluster now (where the replicas' reads go); 0 when it does not answer. */
export async function queryRoleBackends(cluster: OwnCluster): Promise<number> {
  const rows = await clusterSql<{ n: number }>(cluster.url(), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'zava_query'`).catch(() => [{ n: 0 }]);
  return rows[0]!.n;
}

export class SoakStack {
  primary!: OwnCluster;
  standby: OwnCluster | undefined;
  redis!: OwnRedis;
  nginx!: Nginx;
  key!: SigningKey;
  readonly replicas: HttpServerProcess[] = [];
  readonly ports: number[] = [];
  private keyDir = '';
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  private closing = false;
  private readonly prefix = `zava-soak-${process.pid}-${Date.now()}`;

  constructor(private readonly options: SoakStackOptions) {}

  /** Starts the whole stack. close() stops whatever was started, also part-way (a failure, Ctrl-C during the build). */
  async build(): Promise<void> {
    const { log } = this.options;
    let started = Date.now();
    const took = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    this.primary = await OwnCluster.create();
    await this.adopt(() => this.primary.destroy());
    await this.primary.seed();
    log(`primary on :${this.primary.port}, seeded (${took()})`);
    if (this.options.standby) {
      started = Date.now();
      this.standby = await OwnCluster.standbyOf(this.primary);
      await this.adopt(() => this.standby!.destroy());
      const primaryOrders = await clusterSql<{ n: number }>(this.primary.url(), 'SELECT count(*)::int AS n FROM retail.orders');
      for (;;) {
        const rows = await clusterSql<{ n: number }>(this.standby.url(), 'SELECT count(*)::int AS n FROM retail.orders').catch(() => [{ n: -1 }]);
        if (rows[0]!.n === primaryOrders[0]!.n) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      log(`hot standby on :${this.standby.port}, replayed the seed (${took()})`);
    }
    this.redis = await OwnRedis.start();
    await this.adopt(() => this.redis.stop());
    this.key = await newSigningKey('ES256');
    this.keyDir = await mkdtemp(path.join(tmpdir(), 'zava-soak-keys-'));
    await this.adopt(() => rm(this.keyDir, { recursive: true, force: true }));
    const publicPem = createPublicKey({ key: this.key.jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    await writeFile(path.join(this.keyDir, 'public.pem'), publicPem);
    for (let i = 0; i < 3; i++) this.ports.push(await freePort());
    started = Date.now();
    // Started together: replicas racing at start must not fail (issue 6).
    // Settled, not raced: when one fails, the others have finished starting (and are adopted) before the throw.
    const outcomes = await Promise.allSettled(this.ports.map((_, slot) => this.startReplica(slot)));
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    this.replicas.push(...outcomes.map((o) => (o as PromiseFulfilledResult<HttpServerProcess>).value));
    log(`3 replicas on :${this.ports.join(', :')} (${took()})`);
    this.nginx = await startNginx(this.ports.map((p) => `127.0.0.1:${p}`));
    await this.adopt(() => this.nginx.stop());
    log(`nginx at ${this.nginx.url}`);
  }

  /** Starts (or restarts) the replica of a slot on that slot's port. */
  async startReplica(slot: number): Promise<HttpServerProcess> {
    const env: Record<string, string> = {
      ZAVA_AUTH: 'jwt',
      ZAVA_JWT_PUBLIC_KEY: path.join(this.keyDir, 'public.pem'),
      REDIS_URL: this.redis.url,
      // Counted in Redis on every call, never reached: the shared limiter is exercised, the load never limited.
      ZAVA_RATE_LIMIT_PER_MINUTE: '1000000',
      ZAVA_RATE_LIMIT_PREFIX: this.prefix,
    };
    if (this.options.cache === false) env.ZAVA_CACHE = 'off';
    if (this.options.heapSampleMs) {
      // bench/memory-hook.ts in every thread of the replica (a restarted one appends to its slot's file).
      Object.assign(env, {
        NODE_OPTIONS: `--expose-gc --import=${MEMORY_HOOK}`,
        ZAVA_MEMORY_PROBE_FILE: this.heapProbeFile(slot),
        ZAVA_MEMORY_PROBE_MS: String(this.options.heapSampleMs),
      });
    }
    if (this.standby) env.ZAVA_READ_REPLICA_URLS = this.standby.url('postgres', 'zava_query');
    const replica = await startHttpServer(['--database-url', this.primary.url(), '--port', String(this.ports[slot])], env);
    await this.adopt(() => replica.stop().then(() => undefined));
    if (this.replicas[slot]) this.replicas[slot] = replica;
    return replica;
  }

  /** Where the replica of a slot logs its threads' live heaps (bench/memory-hook.ts), one JSON line per thread and sample. */
  heapProbeFile(slot: number): string {
    return path.join(this.keyDir, `heap-${slot}.jsonl`);
  }

  replicaUrl(slot: number): string {
    return `http://127.0.0.1:${this.ports[slot]}/mcp`;
  }

  token(sub: string, claims: Record<string, unknown>): Promise<string> {
    return signTestToken({ key: this.key, sub, claims, expiresIn: 6 * 3600 });
  }

  /**
   * Takes charge of stopping something just started; when the stack is already closing (a signal during the
   * build), stops it at once and throws, so the build goes no further.
   */
  private async adopt(cleanup: () => Promise<void> | void): Promise<void> {
    if (this.closing) {
      await cleanup();
      throw new Error('the soak was stopped while it was starting');
    }
    this.cleanups.push(cleanup);
  }

  /** Stops everything started, newest first; safe to call twice, and during the build. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop()!;
      try {
        await cleanup();
      } catch (error) {
        this.options.log(`cleanup: ${(error as Error).message}`);
      }
    }
  }
}
