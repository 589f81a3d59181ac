// Configuration from the environment (and .env), overridden by command-line flags, validated once at start.
// Every setting has one name in the environment; flags mirror them (see README).
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';

const positiveInt = (name: string) =>
  z.coerce.number({ error: `${name} must be a number` }).int(`${name} must be a whole number`).positive(`${name} must be greater than 0`);

const cpuCount = Math.max(1, cpus().length);

const ConfigSchema = z.object({
  /** PostgreSQL server URL (owner credentials: migrations and seeding). Absent → embedded PGlite. */
  databaseUrl: z
    .string()
    .refine((url) => /^postgres(ql)?:\/\//.test(url), 'DATABASE_URL must start with postgres:// or postgresql://')
    .optional(),
  /** URL the query role logs in with; default: databaseUrl with the user replaced by queryRole. */
  queryDatabaseUrl: z
    .string()
    .refine((url) => /^postgres(ql)?:\/\//.test(url), 'ZAVA_QUERY_DATABASE_URL must start with postgres://')
    .optional(),
  /** Directory of the embedded database. */
  dataDir: z.string().min(1),
  /** The non-superuser, SELECT-only role every tool query runs as. */
  queryRole: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'ZAVA_QUERY_ROLE must be a lower-case SQL identifier'),
  queryRolePassword: z.string().optional(),
  statementTimeoutMs: positiveInt('ZAVA_STATEMENT_TIMEOUT_MS'),
  maxRows: positiveInt('ZAVA_MAX_ROWS'),
  /** A statement that takes this long or longer is logged and counted as slow (ZAVA_SLOW_QUERY_MS). */
  slowQueryMs: positiveInt('ZAVA_SLOW_QUERY_MS'),
  /** Hot standbys that take the tool reads (ZAVA_READ_REPLICA_URLS, comma-separated, query role credentials). */
  readReplicaUrls: z.array(z.string().refine((url) => /^postgres(ql)?:\/\//.test(url), 'ZAVA_READ_REPLICA_URLS must be postgres:// URLs separated by commas')),
  /** With no standby answering: read from the primary, or refuse (ZAVA_READ_REPLICA_FALLBACK). */
  readReplicaFallback: z.enum(['primary', 'fail'], { error: 'ZAVA_READ_REPLICA_FALLBACK must be primary or fail' }),
  /** Prometheus metrics collected and served (ZAVA_METRICS; off: no counters are kept and /metrics answers 404). */
  metricsEnabled: z.boolean(),
  /** GET /metrics on a port of its own instead of the MCP port (ZAVA_METRICS_PORT; 0: any free port). */
  metricsPort: z.coerce.number({ error: 'ZAVA_METRICS_PORT must be a port number' }).int().min(0, 'ZAVA_METRICS_PORT must be a port number').max(65535, 'ZAVA_METRICS_PORT must be a port number').optional(),
  pool: z.object({
    max: positiveInt('ZAVA_POOL_MAX'),
    idleTimeoutMs: positiveInt('ZAVA_POOL_IDLE_TIMEOUT_MS'),
    connectionTimeoutMs: positiveInt('ZAVA_POOL_CONNECT_TIMEOUT_MS'),
    maxUses: positiveInt('ZAVA_POOL_MAX_USES'),
    applicationName: z.string().min(1),
    workMem: z.string().regex(/^\d+(kB|MB|GB)$/, 'ZAVA_WORK_MEM must look like 8MB'),
  }),
  /** MCP server: the interface and port Streamable HTTP listens on (`--host` / ZAVA_HOST, `--port` / PORT). */
  host: z.string().min(1, 'ZAVA_HOST must not be empty'),
  port: z.coerce
    .number({ error: 'PORT must be a number' })
    .int('PORT must be a whole number')
    .min(0, 'PORT must be between 0 and 65535')
    .max(65535, 'PORT must be between 0 and 65535'),
  /** The identity a stdio server acts as (`--rls-user-id` / ZAVA_RLS_USER_ID); HTTP takes x-rls-user-id. */
  rlsUserId: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'ZAVA_RLS_USER_ID / --rls-user-id must be a manager UUID, e.g. f47ac10b-58cc-4372-a567-0e02b2c3d479')
    .optional(),
  /** Byte cap on one tool answer's rows (compact JSON); rows past it are dropped with a note. */
  maxResultBytes: positiveInt('ZAVA_MAX_RESULT_BYTES'),
  /** Longest SQL text execute_sales_query accepts, in characters. */
  maxQueryLength: positiveInt('ZAVA_MAX_QUERY_LENGTH'),
  /** Largest row PostgreSQL may send for a tool query (its size in bytes); a larger row fails the query there. */
  maxRowBytes: positiveInt('ZAVA_MAX_ROW_BYTES'),
  /** Database calls one identity may run at once (the rest wait their turn, shared fairly between identities). */
  identityConcurrency: positiveInt('ZAVA_IDENTITY_CONCURRENCY'),
  /** Longest a call waits for its turn at the database before it fails with its own error. */
  queueTimeoutMs: positiveInt('ZAVA_QUEUE_TIMEOUT_MS'),
  /** Calls one identity may have waiting; more are refused at once. */
  identityQueueLimit: positiveInt('ZAVA_IDENTITY_QUEUE_LIMIT'),
  /** temp_file_limit of every tool query (PostgreSQL units: kB, MB, GB); -1 leaves the server's own setting. */
  tempFileLimit: z.string().regex(/^(-1|\d+(kB|MB|GB|TB)?)$/, 'ZAVA_TEMP_FILE_LIMIT must look like 256MB (or -1 for the server default)'),
  /** Embedded backend: read-only PGlite workers that run tool queries side by side. */
  embeddedReaders: positiveInt('ZAVA_EMBEDDED_READERS'),
  /** Identity (issue 11): see README "Production identity". */
  auth: z.object({
    /** dev: x-rls-user-id / --rls-user-id, loopback HTTP only; jwt: Authorization: Bearer <JWT>. */
    mode: z.enum(['dev', 'jwt'], { error: 'ZAVA_AUTH must be dev or jwt' }),
    /** Dev mode on a non-loopback interface, for demos only: logged loudly at start. */
    allowInsecureDev: z.boolean(),
    /** ZAVA_JWT_PUBLIC_KEY: a PEM file (or PEM text). */
    publicKey: z.string().optional(),
    jwksUrl: z.url({ error: 'ZAVA_JWT_JWKS_URL must be a URL' }).optional(),
    issuer: z.string().min(1, 'ZAVA_JWT_ISSUER must not be empty'),
    audience: z.string().min(1, 'ZAVA_JWT_AUDIENCE must not be empty'),
    clockToleranceSec: z.coerce.number({ error: 'ZAVA_JWT_CLOCK_TOLERANCE_SEC must be a number' }).int().min(0).max(600),
    jwksTimeoutMs: positiveInt('ZAVA_JWT_JWKS_TIMEOUT_MS'),
    /** Least time between two JWKS fetches for unknown kids. */
    jwksCooldownMs: positiveInt('ZAVA_JWT_JWKS_COOLDOWN_MS'),
    /** Issuer URLs named in the protected-resource metadata. */
    authorizationServers: z.array(z.url({ error: 'ZAVA_OAUTH_AUTHORIZATION_SERVERS must be URLs, separated by commas' })),
    /** The public URL of /mcp (the protected resource), when clients reach it through a proxy. */
    resourceUrl: z.url({ error: 'ZAVA_PUBLIC_URL must be a URL' }).optional(),
    /** Database unreachable past the revocation list's age limit: accept tokens on the last list (default: refuse). */
    revocationFailOpen: z.boolean(),
    /** stdio in jwt mode: the token, or a file holding it. */
    token: z.string().optional(),
    tokenFile: z.string().optional(),
  }),
  /** Calls per identity and tool per minute (0: off), plus a burst allowance; shared through Redis when REDIS_URL is set. */
  rateLimit: z.object({
    perMinute: z.coerce.number({ error: 'ZAVA_RATE_LIMIT_PER_MINUTE must be a number' }).int().min(0, 'ZAVA_RATE_LIMIT_PER_MINUTE must be 0 (off) or more'),
    burst: z.coerce.number({ error: 'ZAVA_RATE_LIMIT_BURST must be a number' }).int().min(0),
    redisUrl: z.string().refine((url) => /^rediss?:\/\//.test(url), 'REDIS_URL must start with redis:// or rediss://').optional(),
    keyPrefix: z.string().min(1),
  }),
  /**
   * On SIGTERM, how long /ready answers 503 while requests are still served, before the server stops accepting
   * and drains (ZAVA_SHUTDOWN_DELAY_MS; 0: stop accepting at once). Behind a load balancer: a few of its probe periods.
   */
  shutdownDelayMs: z.coerce.number({ error: 'ZAVA_SHUTDOWN_DELAY_MS must be a number' }).int('ZAVA_SHUTDOWN_DELAY_MS must be a whole number').min(0, 'ZAVA_SHUTDOWN_DELAY_MS must be 0 or more').max(120_000, 'ZAVA_SHUTDOWN_DELAY_MS must be at most 120000'),
  /** HTTP requests per caller per window before the MCP layer (0: off); 429 with Retry-After past it. */
  edgeLimit: z.object({
    requests: z.coerce.number({ error: 'ZAVA_EDGE_RATE_LIMIT must be a number' }).int('ZAVA_EDGE_RATE_LIMIT must be a whole number').min(0, 'ZAVA_EDGE_RATE_LIMIT must be 0 (off) or more'),
    windowSec: positiveInt('ZAVA_EDGE_RATE_LIMIT_WINDOW_SEC'),
  }),
  /** The result cache (issue 12): on/off, TTL, memory bound; shared through Redis when REDIS_URL is set. */
  cache: z.object({
    enabled: z.boolean(),
    ttlMs: positiveInt('ZAVA_CACHE_TTL_MS'),
    memoryMb: positiveInt('ZAVA_CACHE_MEMORY_MB'),
    keyPrefix: z.string().min(1, 'ZAVA_CACHE_PREFIX must not be empty'),
  }),
  /** Roles that read customer e-mail and phone in clear (issue 11); the others get them masked by PostgreSQL. */
  piiReadRoles: z.array(z.enum(['head_office', 'regional_manager', 'store_manager'], {
    error: 'ZAVA_PII_READ_ROLES must list head_office, regional_manager or store_manager (comma-separated), or be "none"',
  })),
  /** Audit trail: days kept (older rows are pruned); 0 keeps every row. */
  auditRetentionDays: z.coerce.number({ error: 'ZAVA_AUDIT_RETENTION_DAYS must be a number' }).int('ZAVA_AUDIT_RETENTION_DAYS must be a whole number').min(0, 'ZAVA_AUDIT_RETENTION_DAYS must be 0 or more'),
  /** Audit entries waiting to be written at most; past it the oldest are dropped (counted and logged). */
  auditQueueLimit: positiveInt('ZAVA_AUDIT_QUEUE_LIMIT'),
  /** Whether tool calls are recorded at all. */
  auditEnabled: z.boolean(),
  logFormat: z.enum(['auto', 'json', 'pretty'], { error: 'ZAVA_LOG_FORMAT must be auto, json or pretty' }),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'ZAVA_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
  }),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Flags from the command line; undefined means "use the environment or the default". */
export interface ConfigOverrides {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  statementTimeoutMs?: string | number | undefined;
  host?: string | undefined;
  port?: string | number | undefined;
  rlsUserId?: string | undefined;
}

/** Reads KEY=VALUE lines from .env without overriding variables already set. */
export function loadDotEnv(file = path.resolve('.env'), env: NodeJS.ProcessEnv = process.env): void {
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith('#')) continue;
    const [, key, raw] = match as unknown as [string, string, string];
    const value = raw.replace(/^(['"])(.*)\1$/, '$2');
    if (env[key] === undefined) env[key] = value;
  }
}

export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const pick = (flag: string | number | undefined, name: string, fallback?: string) =>
    flag !== undefined ? String(flag) : env[name] !== undefined && env[name] !== '' ? env[name] : fallback;
  const databaseUrl = pick(overrides.databaseUrl, 'DATABASE_URL');
  const dataDirFlag = overrides.dataDir;
  if (databaseUrl && dataDirFlag) {
    throw new ConfigError('give either --database-url (server PostgreSQL) or --data-dir (embedded), not both');
  }
  const poolMax = pick(undefined, 'ZAVA_POOL_MAX', String(Math.min(20, cpuCount * 4))) as string;
  const raw = {
    databaseUrl,
    queryDatabaseUrl: pick(undefined, 'ZAVA_QUERY_DATABASE_URL'),
    dataDir: path.resolve(pick(dataDirFlag, 'ZAVA_DATA_DIR', '.zava-data/pglite') as string),
    queryRole: pick(undefined, 'ZAVA_QUERY_ROLE', 'zava_query'),
    queryRolePassword: pick(undefined, 'ZAVA_QUERY_ROLE_PASSWORD'),
    statementTimeoutMs: pick(overrides.statementTimeoutMs, 'ZAVA_STATEMENT_TIMEOUT_MS', '30000'),
    maxRows: pick(undefined, 'ZAVA_MAX_ROWS', '1000'),
    slowQueryMs: pick(undefined, 'ZAVA_SLOW_QUERY_MS', '1000'),
    readReplicaUrls: (pick(undefined, 'ZAVA_READ_REPLICA_URLS', '') as string).split(',').map((u) => u.trim()).filter((u) => u !== ''),
    readReplicaFallback: pick(undefined, 'ZAVA_READ_REPLICA_FALLBACK', 'primary'),
    metricsEnabled: onOff(pick(undefined, 'ZAVA_METRICS', 'on') as string, 'ZAVA_METRICS'),
    metricsPort: pick(undefined, 'ZAVA_METRICS_PORT'),
    pool: {
      // Sizes from the production seed: max(2, cores) warm, min(20, cores × 4) at most.
      max: poolMax,
      idleTimeoutMs: pick(undefined, 'ZAVA_POOL_IDLE_TIMEOUT_MS', '300000'),
      connectionTimeoutMs: pick(undefined, 'ZAVA_POOL_CONNECT_TIMEOUT_MS', '10000'),
      maxUses: pick(undefined, 'ZAVA_POOL_MAX_USES', '50000'),
      applicationName: pick(undefined, 'ZAVA_APPLICATION_NAME', 'zava-mcp'),
      workMem: pick(undefined, 'ZAVA_WORK_MEM', '8MB'),
    },
    host: pick(overrides.host, 'ZAVA_HOST', '127.0.0.1'),
    port: pick(overrides.port, 'PORT', '8000'),
    rlsUserId: pick(overrides.rlsUserId, 'ZAVA_RLS_USER_ID'),
    maxResultBytes: pick(undefined, 'ZAVA_MAX_RESULT_BYTES', String(256 * 1024)),
    maxQueryLength: pick(undefined, 'ZAVA_MAX_QUERY_LENGTH', '20000'),
    maxRowBytes: pick(undefined, 'ZAVA_MAX_ROW_BYTES', String(256 * 1024)),
    identityConcurrency: pick(undefined, 'ZAVA_IDENTITY_CONCURRENCY', String(Math.max(1, Math.floor(Number(poolMax) / 4) || 1))),
    queueTimeoutMs: pick(undefined, 'ZAVA_QUEUE_TIMEOUT_MS', '10000'),
    identityQueueLimit: pick(undefined, 'ZAVA_IDENTITY_QUEUE_LIMIT', '32'),
    tempFileLimit: pick(undefined, 'ZAVA_TEMP_FILE_LIMIT', '256MB'),
    // One reader per core for throughput, plus one kept free for other identities while one floods (an identity
    // may use all readers but one); at most 4, for memory: a reader is about 115 MB at the reference dataset and
    // may grow by a few hundred MB during one statement (README, "The embedded database").
    embeddedReaders: pick(undefined, 'ZAVA_EMBEDDED_READERS', String(Math.min(4, cpuCount + 1))),
    auth: {
      mode: pick(undefined, 'ZAVA_AUTH', 'dev'),
      allowInsecureDev: pick(undefined, 'ZAVA_ALLOW_INSECURE_DEV_AUTH', 'false') === 'true',
      publicKey: pick(undefined, 'ZAVA_JWT_PUBLIC_KEY'),
      jwksUrl: pick(undefined, 'ZAVA_JWT_JWKS_URL'),
      issuer: pick(undefined, 'ZAVA_JWT_ISSUER', 'zava-auth'),
      audience: pick(undefined, 'ZAVA_JWT_AUDIENCE', 'mcp-server'),
      clockToleranceSec: pick(undefined, 'ZAVA_JWT_CLOCK_TOLERANCE_SEC', '30'),
      jwksTimeoutMs: pick(undefined, 'ZAVA_JWT_JWKS_TIMEOUT_MS', '5000'),
      jwksCooldownMs: pick(undefined, 'ZAVA_JWT_JWKS_COOLDOWN_MS', '5000'),
      authorizationServers: (pick(undefined, 'ZAVA_OAUTH_AUTHORIZATION_SERVERS', '') as string).split(',').map((s) => s.trim()).filter(Boolean),
      resourceUrl: pick(undefined, 'ZAVA_PUBLIC_URL'),
      revocationFailOpen: pick(undefined, 'ZAVA_REVOCATION_FAIL_OPEN', 'false') === 'true',
      token: pick(undefined, 'ZAVA_TOKEN'),
      tokenFile: pick(undefined, 'ZAVA_TOKEN_FILE'),
    },
    rateLimit: {
      perMinute: pick(undefined, 'ZAVA_RATE_LIMIT_PER_MINUTE', '60'),
      burst: pick(undefined, 'ZAVA_RATE_LIMIT_BURST', '20'),
      redisUrl: pick(undefined, 'REDIS_URL'),
      keyPrefix: pick(undefined, 'ZAVA_RATE_LIMIT_PREFIX', 'zava:rl'),
    },
    shutdownDelayMs: pick(undefined, 'ZAVA_SHUTDOWN_DELAY_MS', '0'),
    edgeLimit: {
      requests: pick(undefined, 'ZAVA_EDGE_RATE_LIMIT', '1200'),
      windowSec: pick(undefined, 'ZAVA_EDGE_RATE_LIMIT_WINDOW_SEC', '60'),
    },
    cache: {
      enabled: onOff(pick(undefined, 'ZAVA_CACHE', 'on') as string, 'ZAVA_CACHE'),
      ttlMs: pick(undefined, 'ZAVA_CACHE_TTL_MS', '300000'),
      memoryMb: pick(undefined, 'ZAVA_CACHE_MEMORY_MB', '64'),
      keyPrefix: pick(undefined, 'ZAVA_CACHE_PREFIX', 'zava:cache'),
    },
    piiReadRoles: listSetting(pick(undefined, 'ZAVA_PII_READ_ROLES', 'head_office') as string),
    auditRetentionDays: pick(undefined, 'ZAVA_AUDIT_RETENTION_DAYS', '90'),
    auditQueueLimit: pick(undefined, 'ZAVA_AUDIT_QUEUE_LIMIT', '10000'),
    auditEnabled: (pick(undefined, 'ZAVA_AUDIT', 'on') as string).toLowerCase() !== 'off',
    logLevel: pick(undefined, 'ZAVA_LOG_LEVEL', 'info'),
    logFormat: pick(undefined, 'ZAVA_LOG_FORMAT', 'auto'),
  };
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `- ${issue.message}`).join('\n');
    throw new ConfigError(`invalid configuration:\n${problems}`);
  }
  const { auth } = parsed.data;
  if (auth.mode === 'jwt' && !auth.publicKey && !auth.jwksUrl) {
    throw new ConfigError('invalid configuration:\n- ZAVA_AUTH=jwt needs ZAVA_JWT_PUBLIC_KEY (a PEM public key file) or ZAVA_JWT_JWKS_URL');
  }
  if (auth.publicKey && auth.jwksUrl) throw new ConfigError('invalid configuration:\n- give ZAVA_JWT_PUBLIC_KEY or ZAVA_JWT_JWKS_URL, not both');
  return parsed.data;
}

/** on/off (also true/false, 1/0); anything else is refused naming the variable. */
function onOff(value: string, name: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (['on', 'true', '1'].includes(normalized)) return true;
  if (['off', 'false', '0'].includes(normalized)) return false;
  throw new ConfigError(`invalid configuration:\n- ${name} must be on or off`);
}

/** "a, b" → ['a', 'b']; "none" or empty → []. */
function listSetting(value: string): string[] {
  const items = value.split(',').map((item) => item.trim().toLowerCase()).filter(Boolean);
  return items.length === 1 && items[0] === 'none' ? [] : items;
}

/** Hides the password in a connection URL, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}
