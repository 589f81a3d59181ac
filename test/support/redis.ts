// A redis-server of a test's (or benchmark's) own on a free loopback port, for suites that stop and restart it:
// the shared Redis service is never disturbed. No persistence: a restart starts empty, as after a crash.
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './cluster.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { NO_EMBEDDING_ENV } from './tokens.js';
import { startHttpServer, type HttpServerProcess } from '../mcp-harness.js';

export class OwnRedis {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server (again, on the same port) and waits until it answers PING. */
  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined);
      const up = await client.connect().then(() => client.ping(), () => undefined);
      client.disconnect();
      if (up === 'PONG') return;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops it (SIGKILL, as a crash does: clients see their connections reset) and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** How many keys it holds under `prefix` (proof that counting happens here). */
  async keys(prefix: string): Promise<number> {
    return (await this.keyNames(`${prefix}*`)).length;
  }

  /** The keys matching `pattern`, through a connection of its own that fails at once while the server is down. */
  async keyNames(pattern: string): Promise<string[]> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.keys(pattern);
    } finally {
      client.disconnect();
    }
  }
}

/**
 * A Redis of its own, a small server-backend database (no embeddings, no provider: /ready's embeddings component
 * fails on purpose) and `zava-mcp serve` counting its per-tool and edge limits in that Redis.
 */
export async function serverWithOwnRedis(env: Record<string, string> = {}): Promise<{ redis: OwnRedis; t: TestDatabase; http: HttpServerProcess; cleanup(): Promise<void> }> {
  const redis = await OwnRedis.start();
  const t = await createTestDatabase('server', { customers: 40, embeddings: false });
  let http: HttpServerProcess | undefined;
  const cleanup = async () => {
    await http?.stop('SIGKILL');
    await t.cleanup();
    await redis.stop();
  };
  try {
    http = await startHttpServer(t.flags, { ...NO_EMBEDDING_ENV, REDIS_URL: redis.url, ZAVA_RATE_LIMIT_PER_MINUTE: '1000', ZAVA_EDGE_RATE_LIMIT: '5000', ...env });
    return { redis, t, http, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
