// `zava-mcp serve` (what `npm start` runs): prepare the database (migrate, seed on first run, embed the catalog
// for semantic search), then serve MCP over Streamable HTTP (default) or stdio.
import type { Config } from '../infra/config.js';
import { DatabaseUnavailableError, DataLoadError } from '../infra/errors.js';
import { databaseCheck, embeddingsCheck, Readiness, redisCheck, type ComponentCheck } from '../infra/health.js';
import { SlowQueryLog, withSlowQueryLog } from '../db/slow-queries.js';
import { ServerMetrics } from '../infra/metrics.js';
import { ResultCache, type CacheSettings } from '../infra/cache/result-cache.js';
import { StatementKeys } from '../infra/cache/statement-key.js';
import { captureDataVersion, DataVersionWatch, readDataVersion, withDataVersionCapture } from '../db/data-version.js';
import { startMetricsServer } from '../protocol/metrics-http.js';
import { startTracing } from '../infra/tracing.js';
import { auditListener } from '../protocol/audit-listener.js';
import { assertPortAvailable } from './port-check.js';
import { consoleProgress, logProgress, type Progress } from '../infra/progress.js';
import { openDatabase, type OpenOptions } from '../db/open.js';
import { prepareSchema } from './migrate.js';
import type { ManagedDatabase } from '../db/types.js';
import { salesSummary, seedDatabase } from '../data/seed.js';
import { seedSettings, type SeedFlags } from './db.js';
import { loadSqlGuard } from '../analytics/guard.js';
import { QueryService } from '../analytics/query.js';
import { ProductSearchService } from '../analytics/product-search.js';
import { SchemaService } from '../analytics/schema.js';
import { filterHint } from '../analytics/filter-hints.js';
import { createLogger, isHumanFormat } from '../infra/logger.js';
import { InFlight, type ServerDeps } from '../protocol/context.js';
import { AuditWriter } from '../infra/audit.js';
import { pruneAudit, writeAuditEntries } from '../db/audit.js';
import { startHttpServer } from '../protocol/http.js';
import { createEdgeLimiter } from '../security/edge-limit.js';
import { startStdioServer } from '../protocol/stdio.js';
import { checkDevModeBinding, createIdentityStack, type IdentityStack } from './identity.js';
import { EmbeddingError, type EmbeddingProvider } from '../search/provider.js';
import { createEmbeddingProvider, createServingProvider, embeddingSettings } from '../search/settings.js';
import { ensureEmbeddings } from '../search/store.js';

/**
 * Opens, migrates and (when empty) seeds the database, then embeds whatever products lack a current embedding
 * from `provider`; the returned database is ready for identity reads and search. A provider that fails (a
 * hosted endpoint that is down) does not stop the server: it is logged, and search answers with a clear error.
 */
export async function prepareDatabase(
  config: Config,
  log: (line: string) => void,
  provider: EmbeddingProvider = createEmbeddingProvider(),
  warn: (line: string) => void = log,
  /** A stdio server's identity: checked once the stores exist, before the (slower) catalog embedding. */
  identity?: string,
  progress: Progress = consoleProgress(),
  /** How a first run seeds (serve's --customers, --seed, --end-date; else the environment's). */
  seedFlags: SeedFlags = {},
  openOptions: OpenOptions = {},
): Promise<ManagedDatabase> {
  const started = Date.now();
  const db = await openDatabase(config, openOptions);
  try {
    const { migrations: report, searchFunctions: functions } = await prepareSchema(db, config);
    for (const step of report.applied) log(`applied migration ${step.version} (${step.name})`);
    if (functions.created.length > 0) log(`installed search functions ${functions.created.join(', ')}`);
    if (!(await hasDataset(db))) {
      const { customers, seed, endDate } = seedSettings(seedFlags, db);
      log(`first run: seeding ${db.location} with ${customers.toLocaleString('en-US')} customers (seed ${seed}, orders up to ${endDate})`);
      try {
        const seeded = await seedDatabase(db, { customers, seed, endDate, progress });
        if (seeded.keptCatalog) log('the database held a catalog and no stores: sales, stores and customers were generated around that catalog');
        log(await salesSummary(db));
      } catch (error) {
        // Another replica starting at the same time seeded it first: use its dataset.
        if (!(error instanceof DataLoadError) || !(await hasDataset(db))) throw error;
        log('another process seeded the database meanwhile; using its dataset');
      }
    }
    // An identity that names no manager is the operator's mistake: refuse to start rather than fail every call.
    if (identity !== undefined) await resolveAtStart(db, identity, warn);
    try {
      const embedded = await ensureEmbeddings(db, { provider, progress });
      if (embedded.embedded > 0) log(`embedded ${embedded.embedded} of ${embedded.products} products with ${embedded.model} (${(embedded.ms / 1000).toFixed(1)} s)`);
    } catch (error) {
      if (!(error instanceof EmbeddingError)) throw error;
      warn(`could not embed the catalog with ${provider.model}: ${error.message}; semantic_search_products will answer with an error until \`zava-mcp embeddings rebuild\` succeeds`);
    }
    log(`${db.location} is ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return db;
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** How long start-up keeps trying to load the identity directory when the database is only slow. */
const START_IDENTITY_PATIENCE_MS = 60_000;

/**
 * Checks the stdio identity at start. An unknown identity fails at once; a directory load that runs out of time
 * (a database busy with start-up work on a loaded machine) is tried again for up to a minute, since refusing to
 * start because the machine is slow would be wrong.
 */
async function resolveAtStart(db: ManagedDatabase, identity: string, warn: (line: string) => void): Promise<void> {
  const deadline = Date.now() + START_IDENTITY_PATIENCE_MS;
  for (;;) {
    try {
      await db.resolveIdentity(identity);
      return;
    } catch (error) {
      if (!(error instanceof DatabaseUnavailableError) || Date.now() >= deadline) throw error;
      warn(`${error.message}; trying again`);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

async function hasDataset(db: ManagedDatabase): Promise<boolean> {
  const result = await db.ownerQuery('SELECT EXISTS (SELECT 1 FROM retail.stores)');
  return result.rows[0]?.[0] === true;
}

/** The result cache's settings: ZAVA_CACHE*, shared through REDIS_URL when it is set. */
export function cacheSettings(config: Config): CacheSettings {
  return {
    enabled: config.cache.enabled,
    ttlMs: config.cache.ttlMs,
    memoryBytes: config.cache.memoryMb * 1024 * 1024,
    redisUrl: config.rateLimit.redisUrl,
    keyPrefix: config.cache.keyPrefix,
  };
}

export interface ServeOptions {
  /** Serve stdio (for clients that spawn the server) instead of Streamable HTTP. */
  readonly stdio?: boolean | undefined;
  /** The first run's seed (--customers, --seed, --end-date); used only when the database holds no dataset. */
  readonly seed?: SeedFlags | undefined;
}

/** Longest a graceful shutdown waits for calls in progress, beyond the statement timeout. */
const DRAIN_GRACE_MS = 5_000;

/**
 * `zava-mcp serve`: Streamable HTTP at http://HOST:PORT/mcp, or stdio with --stdio. Runs until SIGTERM or
 * SIGINT (or, on stdio, until the client closes stdin), then stops accepting, drains calls in progress and
 * closes the database.
 */
export async function runServe(config: Config, options: ServeOptions = {}): Promise<number> {
  const log = createLogger(config.logLevel, config.logFormat);
  // A bad seed size is refused before anything starts, whether or not this run will seed.
  seedSettings(options.seed ?? {}, { kind: config.databaseUrl ? 'server' : 'embedded' });
  checkDevModeBinding(config, options.stdio === true, log);
  if (!options.stdio) await assertPortAvailable(config.host, config.port);
  const tracing = await startTracing();
  if (tracing) log.info('exporting OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT)');
  // Configuration errors before touching the database. The local model runs on worker threads, with query
  // embedding shared between identities like database work.
  const provider = createServingProvider(embeddingSettings(), {
    perKey: config.identityConcurrency,
    maxWaitMs: config.queueTimeoutMs,
    maxQueuedPerKey: config.identityQueueLimit,
    onWorkerError: (error) => log.error({ err: error }, 'an embedding worker stopped; replaced'),
    onBreakerChange: (state) =>
      state === 'open'
        ? log.error('the embedding provider failed repeatedly: semantic search answers EMBEDDING_UNAVAILABLE at once until a probe succeeds')
        : log.info(`embedding provider breaker ${state}`),
  });
  const progress = isHumanFormat(config.logFormat) ? consoleProgress() : logProgress(log);
  let db: ManagedDatabase;
  try {
    db = await prepareDatabase(
      config,
      (line) => log.info(line),
      provider,
      (line) => log.warn(line),
      options.stdio && config.auth.mode === 'dev' ? config.rlsUserId : undefined,
      progress,
      options.seed,
      // A stdio process serves one identity: it opens no embedded reader that identity could not use.
      { oneIdentity: options.stdio === true },
    );
  } catch (error) {
    await provider.close?.();
    throw error;
  }
  let deps: ServerDeps;
  let identity: IdentityStack;
  let redis: ReturnType<typeof redisCheck> | undefined;
  let cache: ResultCache | undefined;
  let versions: DataVersionWatch | undefined;
  // The audit trail's writer: queued, batched, off every call's path (src/infra/audit.ts).
  const audit = config.auditEnabled
    ? new AuditWriter((entries) => writeAuditEntries(db, entries), {
        queueLimit: config.auditQueueLimit,
        log,
        prune: config.auditRetentionDays > 0 ? () => pruneAudit(db, config.auditRetentionDays) : undefined,
      })
    : undefined;
  try {
    // Tools see the database through the slow-query record; start-up and shutdown use it directly.
    const slowQueries = new SlowQueryLog(config.slowQueryMs, (event) => log.warn(event, `slow query: ${event.ms} ms`));
    const raw = db;
    // ZAVA_METRICS=off: no metrics object at all, so no stage of a call counts anything (and /metrics is a 404).
    const metrics = config.metricsEnabled
      ? new ServerMetrics(raw.kind, {
          pools: () => raw.operatorView?.().pools as Record<string, { total: number; idle: number; waiting: number }> | undefined,
          breaker: () => raw.operatorView?.().breaker as 'closed' | 'half-open' | 'open' | undefined,
          auditQueue: audit ? () => audit.counts.queued : undefined,
        })
      : undefined;
    // Inside the slow-query record: the cache's data-version read is not a tool statement and is not counted.
    const served = withSlowQueryLog(withDataVersionCapture(raw), slowQueries, metrics ? (sample) => metrics.statement(sample) : undefined);
    versions = new DataVersionWatch(() => readDataVersion(raw), config.databaseUrl, (message) => log.warn(message));
    const watch = versions;
    cache = new ResultCache(cacheSettings(config), {
      newestVersion: () => watch.newest(),
      computeAt: captureDataVersion,
      warn: (message) => log.warn(message),
      observer: metrics?.cacheObserver,
    });
    const schemas = new SchemaService(served, () => watch.newest());
    const hint = async (sql: string) => filterHint(sql, await schemas.filterValues());
    const inFlight = new InFlight();
    redis = config.rateLimit.redisUrl ? redisCheck(config.rateLimit.redisUrl) : undefined;
    identity = await createIdentityStack(config, db, inFlight, log, options.stdio === true, cache);
    if (audit) identity.pipeline.onCallFinished(auditListener(audit));
    if (metrics)
      identity.pipeline.onCallFinished((record) => {
        metrics.toolCall({ tool: record.tool, code: record.code ?? 'OK', durationMs: record.durationMs });
        // The guard's refusals are the validation errors that say so (query.ts: "query refused: …").
        if (record.code === 'VALIDATION_ERROR' && record.message?.startsWith('query refused:')) metrics.guardRefusal();
      });
    deps = {
      db: served,
      queries: new QueryService(served, await loadSqlGuard({ maxLength: config.maxQueryLength }), config, log, hint),
      schemas,
      search: new ProductSearchService(served, log, provider),
      log,
      inFlight,
      pipeline: identity.pipeline,
      metrics,
      statementKeys: cache.enabled ? await StatementKeys.load(async (sql) => (await raw.ownerQuery(sql)).rows) : undefined,
      operatorView: () => ({
        slowQueries: { thresholdMs: slowQueries.thresholdMs, slowest: slowQueries.top(10) },
        cache: cache?.stats(),
        ...(raw.operatorView?.() ?? {}),
      }),
      audit,
      readiness: new Readiness(
        new Map<string, ComponentCheck>([
          ['database', databaseCheck(db)],
          ['embeddings', embeddingsCheck(db, () => provider.model)],
          ...(redis ? [['redis', redis] as const] : []),
        ]),
      ),
    };
  } catch (error) {
    await cache?.close();
    await versions?.close();
    await db.close();
    await provider.close?.();
    throw error;
  }
  const drainMs = config.statementTimeoutMs + DRAIN_GRACE_MS;

  // The stop signals are handled from before the server listens: a supervisor that sends SIGTERM the moment it
  // reads "serving" must reach this handler, not Node's default, which kills the process without draining or
  // releasing the data directory lock.
  // The first signal starts the drain; a second one while draining means "now".
  let resolveStop: (signal: string) => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => (resolveStop = resolve));
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true;
      resolveStop(signal);
      return;
    }
    log.warn('second signal: exiting without waiting');
    process.exit(1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const releaseSignals = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  let stop: (drainMs: number) => Promise<boolean>;
  let ended: Promise<unknown>;
  try {
    if (options.stdio) {
      const token = identity.stdioToken;
      if (!token && !config.rlsUserId) log.warn('no identity configured (--rls-user-id / ZAVA_RLS_USER_ID): every data tool will answer with an error');
      const stdio = await startStdioServer(deps, token ? { transport: 'stdio', processAuthInfo: () => token.authInfo() } : { transport: 'stdio', processUserId: config.rlsUserId });
      stop = stdio.close;
      ended = stdio.ended;
      log.info({ backend: db.kind, auth: config.auth.mode, identity: token ? null : config.rlsUserId ?? null }, 'zava-mcp serving MCP on stdio');
    } else {
      const metricsServer = config.metricsPort !== undefined && deps.metrics ? await startMetricsServer(deps.metrics, config.host, config.metricsPort) : undefined;
      const edgeLimit = createEdgeLimiter(
        { ...config.edgeLimit, redisUrl: config.rateLimit.redisUrl, keyPrefix: config.rateLimit.keyPrefix },
        (message) => log.warn(message),
      );
      const http = await startHttpServer(deps, {
        host: config.host,
        port: config.port,
        auth: identity.httpAuth,
        resourceUrl: config.auth.resourceUrl,
        metricsElsewhere: metricsServer !== undefined,
        edgeLimit,
      }).catch(async (error: unknown) => {
        await metricsServer?.close();
        await edgeLimit.close();
        throw error;
      });
      stop = async (drainMs) => {
        // /ready turns 503 first, so a load balancer takes this replica out of rotation; requests it still sends
        // meanwhile are served. Then no new work is taken (503 with Retry-After) and calls in progress drain.
        http.withdraw();
        if (config.shutdownDelayMs > 0) {
          log.info({ delayMs: config.shutdownDelayMs }, '/ready answers 503; still serving until the load balancer notices');
          await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
        }
        const drained = await http.close(drainMs);
        await metricsServer?.close();
        await edgeLimit.close();
        return drained;
      };
      if (metricsServer) log.info({ url: metricsServer.url }, `metrics at ${metricsServer.url}`);
      ended = new Promise(() => undefined);
      log.info({ backend: db.kind, auth: config.auth.mode, url: http.url }, `zava-mcp serving Streamable HTTP at ${http.url}`);
    }
  } catch (error) {
    releaseSignals();
    await identity.close();
    await cache?.close();
    await versions?.close();
    await db.close();
    await provider.close?.();
    throw error;
  }

  const signal = await Promise.race([stopSignal, ended.then(() => 'end of input')]);
  log.info({ inFlight: deps.inFlight.size }, `${signal}: shutting down, draining calls in progress`);
  stopping = true; // also when stdin ended: a signal from here on exits at once
  const drained = await stop(drainMs);
  if (!drained) log.warn({ inFlight: deps.inFlight.size }, 'calls still in progress after the drain period; closing anyway');
  const unwritten = (await audit?.close(DRAIN_GRACE_MS)) ?? 0;
  if (unwritten > 0) log.warn({ unwritten }, 'audit entries not written before shutdown');
  await identity.close();
  await cache?.close();
  await versions?.close();
  await db.close();
  await provider.close?.();
  redis?.close();
  await tracing?.shutdown().catch((error: unknown) => log.warn({ err: error }, 'the last traces could not be exported'));
  log.info('zava-mcp stopped');
  releaseSignals();
  return 0;
}
