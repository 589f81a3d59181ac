// Liveness and readiness. `/health` says the process is alive and answers without touching anything else (a
// container's liveness probe must not fail because the database is slow). `/ready` says whether this replica
// should receive traffic: each component is checked with its own short time limit, side by side, and named
// with its status and latency, so a 503 says what is wrong. Checks never throw: a failure is a component's
// status. The answer is cached for a moment, so a probe storm costs the database one check per interval.
//
// What a failing /ready means for new work (issue 12: "stop taking new work when /ready fails"), decided per cause:
// - The database: calls are not queued behind it. Its circuit breaker (db/resilience.ts) answers each new call at
//   once with DATABASE_UNAVAILABLE and a retry hint, and one probe call closes it within seconds of its return.
// - Redis: /ready names it failing, as the rule asks ("Redis reachable when configured"), so a load balancer
//   with healthy replicas prefers them; the replica still answers what it gets, since nothing it serves needs
//   Redis (the limits count in the process meanwhile: security/rate-limit.ts, one log line per outage).
// - Shutdown: /ready answers 503 first (RunningHttpServer.withdraw), then after ZAVA_SHUTDOWN_DELAY_MS new requests
//   get 503 with Retry-After and calls in progress drain (cli/serve.ts).
import { createRedis, type Redis } from './redis.js';
import { MIGRATIONS } from '../db/migrations.js';
import type { Database } from '../db/types.js';

export type ComponentStatus = 'ok' | 'failing';

export interface ComponentReport {
  readonly status: ComponentStatus;
  readonly latencyMs: number;
  /** What is wrong, when failing; what was found otherwise (versions, counts). */
  readonly detail?: string;
}

export interface ReadinessReport {
  readonly status: 'ready' | 'not ready';
  readonly components: Record<string, ComponentReport>;
}

/** One readiness component: resolves with a detail when ready, rejects (or times out) when not. */
export type ComponentCheck = (signal: AbortSignal) => Promise<string | undefined>;

/** Longest one component may take before it counts as failing. */
export const COMPONENT_TIMEOUT_MS = 2_000;
/** How long a readiness answer is reused. */
const CACHE_MS = 1_000;

export class Readiness {
  private last: { at: number; report: Promise<ReadinessReport> } | undefined;

  constructor(
    private readonly components: ReadonlyMap<string, ComponentCheck>,
    private readonly timeoutMs = COMPONENT_TIMEOUT_MS,
  ) {}

  /** The current report (shared by callers within CACHE_MS of each other). */
  check(): Promise<ReadinessReport> {
    const now = Date.now();
    if (this.last && now - this.last.at < CACHE_MS) return this.last.report;
    const report = this.run();
    this.last = { at: now, report };
    return report;
  }

  private async run(): Promise<ReadinessReport> {
    const entries = await Promise.all([...this.components].map(async ([name, check]) => [name, await this.timed(check)] as const));
    const components = Object.fromEntries(entries);
    const ready = entries.every(([, report]) => report.status === 'ok');
    return { status: ready ? 'ready' : 'not ready', components };
  }

  private async timed(check: ComponentCheck): Promise<ComponentReport> {
    const started = performance.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new Error(`no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      const detail = await Promise.race([check(abort.signal), timeout]);
      return { status: 'ok', latencyMs: elapsed(started), ...(detail ? { detail } : {}) };
    } catch (error) {
      return { status: 'failing', latencyMs: elapsed(started), detail: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/** The database answers, and its schema is at this build's migration version. */
export function databaseCheck(db: Database): ComponentCheck {
  const latest = Math.max(...MIGRATIONS.map((m) => m.version));
  return async () => {
    const result = await db.ownerQuery('SELECT coalesce(max(version), 0) FROM zava_meta.schema_migrations');
    const version = Number(result.rows[0]?.[0] ?? 0);
    if (version < latest) throw new Error(`schema at version ${version}, this server needs ${latest}: run \`zava-mcp db migrate\``);
    if (version > latest) throw new Error(`schema at version ${version} is newer than this server (${latest}): upgrade the server`);
    return `schema version ${version}`;
  };
}

/** Every product has an embedding of the configured model (what semantic search compares queries with). */
export function embeddingsCheck(db: Database, model: () => string): ComponentCheck {
  return async () => {
    const name = model();
    const result = await db.ownerQuery(
      `SELECT (SELECT count(*) FROM retail.products), (SELECT count(DISTINCT product_id) FROM retail.product_description_embeddings WHERE model = $1)`,
      [name],
    );
    const [products, embedded] = (result.rows[0] ?? [0, 0]).map(Number) as [number, number];
    if (embedded < products) throw new Error(`${products - embedded} of ${products} products have no ${name} embedding: run \`zava-mcp embeddings rebuild\``);
    return `${embedded} products embedded with ${name}`;
  };
}

/**
 * Redis answers PING (when REDIS_URL is configured: the shared rate limits). One connection of its own, made on
 * the first check and kept; it never queues commands while disconnected, so a check fails fast.
 */
export function redisCheck(url: string): ComponentCheck & { close(): void } {
  let client: Redis | undefined;
  const check = async () => {
    if (!client) {
      client = createRedis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: COMPONENT_TIMEOUT_MS, retryStrategy: () => 1_000 });
      client.on('error', () => undefined); // reported by the check, not as an unhandled event
    }
    if (client.status === 'wait') await client.connect();
    const answer = await client.ping();
    if (answer !== 'PONG') throw new Error(`PING answered ${answer}`);
    return 'PONG';
  };
  return Object.assign(check, { close: () => client?.disconnect() });
}
