// Prometheus metrics (prom-client), one registry per server process, served at GET /metrics (or on
// ZAVA_METRICS_PORT). Decisions:
// - Labels are bounded sets only: the tool name, the outcome code, the backend, the identity's role. Never SQL
//   text, never who called: a label per manager or per statement would grow without limit and leak.
// - Counters and histograms are fed by the call pipeline's listener (one record per tool call) and by the
//   statement observer (each identity-scoped statement, slow-queries.ts); gauges (pools, breaker, audit queue)
//   are read when Prometheus scrapes, from the components that own the figures.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheObserver } from './cache/result-cache.js';
import { HotCounter, HotHistogram } from './hot-metrics.js';

/** One tool call, as the metrics see it (a subset of the pipeline's CallRecord). */
export interface ToolCallSample {
  readonly tool: string;
  /** 'OK', or the stable error code of the answer (VALIDATION_ERROR, RATE_LIMITED, …). */
  readonly code: string;
  readonly durationMs: number;
}

/** One identity-scoped statement. */
export interface StatementSample {
  readonly ms: number;
  readonly rows: number | null;
  readonly truncated: boolean;
  readonly failed: boolean;
  readonly role: string;
}

/** Figures read at scrape time; each may be absent (an embedded database has no pools, audit may be off). */
export interface GaugeSources {
  readonly pools?: () => Record<string, { total: number; idle: number; waiting: number }> | undefined;
  /** 0 closed, 1 half-open, 2 open. */
  readonly breaker?: () => 'closed' | 'half-open' | 'open' | undefined;
  readonly auditQueue?: () => number | undefined;
}

const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

export class ServerMetrics {
  readonly registry = new Registry();
  // Fed on every call: the hot-path classes (hot-metrics.ts); the rest count rare events with prom-client's own.
  private readonly toolCalls: HotCounter<'tool' | 'code'>;
  private readonly toolDuration: HotHistogram<'tool'>;
  private readonly statementDuration: HotHistogram<'role' | 'outcome'>;
  private readonly rows: HotHistogram;
  private readonly truncations: Counter;
  private readonly guardRefusals: Counter;
  private readonly rateLimited: Counter<'tool'>;
  private readonly edgeLimited: Counter;
  /** The result cache's counters (infra/cache/result-cache.ts), fed through `cacheObserver`. */
  readonly cacheObserver: CacheObserver;

  constructor(backend: 'embedded' | 'server', sources: GaugeSources = {}) {
    this.registry.setDefaultLabels({ backend });
    collectDefaultMetrics({ register: this.registry, prefix: 'zava_' });
    const registers = [this.registry];
    this.toolCalls = new HotCounter({ name: 'zava_tool_calls_total', help: 'Tool calls by tool and outcome code (OK or the error code).', labelNames: ['tool', 'code'], registers });
    this.toolDuration = new HotHistogram({
      name: 'zava_tool_call_duration_seconds',
      help: 'Tool call duration, from the pipeline taking the call to its answer.',
      labelNames: ['tool'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.statementDuration = new HotHistogram({
      name: 'zava_db_statement_duration_seconds',
      help: 'Identity-scoped statement duration in the database (RLS context, query, bounded read).',
      labelNames: ['role', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rows = new HotHistogram({ name: 'zava_rows_returned', help: 'Rows a statement returned.', buckets: [0, 1, 10, 100, 1000, 10000], registers });
    this.truncations = new Counter({ name: 'zava_results_truncated_total', help: 'Statements whose result was cut at the row or byte limit.', registers });
    this.guardRefusals = new Counter({ name: 'zava_guard_refusals_total', help: 'Queries the SQL guard refused before they reached the database.', registers });
    this.rateLimited = new Counter({ name: 'zava_rate_limited_total', help: 'Tool calls refused by the rate limit.', labelNames: ['tool'], registers });
    this.edgeLimited = new Counter({ name: 'zava_http_requests_limited_total', help: 'HTTP requests refused with 429 by the edge request limit, before the MCP layer.', registers });
    const cacheHits = new Counter({ name: 'zava_cache_hits_total', help: 'Tool answers served from the result cache, by tier (memory or redis).', labelNames: ['tier'], registers });
    const cacheMisses = new Counter({ name: 'zava_cache_misses_total', help: 'Cacheable tool calls the result cache did not hold.', registers });
    const cacheEvictions = new Counter({ name: 'zava_cache_evictions_total', help: 'Entries the memory tier dropped to stay within its byte bound.', registers });
    const cacheRedisErrors = new Counter({ name: 'zava_cache_redis_errors_total', help: 'Failed Redis commands and connection errors of the shared cache tier.', registers });
    const cacheStale = new Counter({ name: 'zava_cache_stale_answers_total', help: 'Answers computed at an older data version than the newest (a lagging standby): returned, not stored.', registers });
    this.cacheObserver = {
      hit: (tier) => cacheHits.inc({ tier }),
      miss: () => cacheMisses.inc(),
      eviction: () => cacheEvictions.inc(),
      redisError: () => cacheRedisErrors.inc(),
      staleAnswer: () => cacheStale.inc(),
    };
    if (sources.pools) {
      const pools = sources.pools;
      for (const [figure, help] of [
        ['total', 'Connections open in the pool.'],
        ['idle', 'Idle connections in the pool.'],
        ['waiting', 'Calls waiting for a connection.'],
      ] as const) {
        new Gauge({
          name: `zava_db_pool_${figure}`,
          help,
          labelNames: ['pool'],
          registers,
          collect() {
            for (const [pool, stats] of Object.entries(pools() ?? {})) this.set({ pool }, stats[figure]);
          },
        });
      }
    }
    if (sources.breaker) {
      const breaker = sources.breaker;
      new Gauge({
        name: 'zava_db_circuit_breaker_state',
        help: 'The database circuit breaker: 0 closed, 1 half-open (probing), 2 open (calls refused at once).',
        registers,
        collect() {
          const state = breaker();
          if (state) this.set(BREAKER_VALUE[state]);
        },
      });
    }
    if (sources.auditQueue) {
      const auditQueue = sources.auditQueue;
      new Gauge({
        name: 'zava_audit_queue_depth',
        help: 'Audit records waiting to be written.',
        registers,
        collect() {
          const depth = auditQueue();
          if (depth !== undefined) this.set(depth);
        },
      });
    }
  }

  toolCall(sample: ToolCallSample): void {
    this.toolCalls.labels(sample.tool, sample.code).inc();
    this.toolDuration.labels(sample.tool).observe(sample.durationMs / 1000);
    if (sample.code === 'RATE_LIMITED') this.rateLimited.inc({ tool: sample.tool });
  }

  statement(sample: StatementSample): void {
    this.statementDuration.labels(sample.role, sample.failed ? 'failed' : 'ok').observe(sample.ms / 1000);
    if (sample.rows !== null) this.rows.labels().observe(sample.rows);
    if (sample.truncated) this.truncations.inc();
  }

  guardRefusal(): void {
    this.guardRefusals.inc();
  }

  httpRequestLimited(): void {
    this.edgeLimited.inc();
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
