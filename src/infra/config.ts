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
  pool: z.object({
    max: positiveInt('ZAVA_POOL_MAX'),
    idleTimeoutMs: positiveInt('ZAVA_POOL_IDLE_TIMEOUT_MS'),
    connectionTimeoutMs: positiveInt('ZAVA_POOL_CONNECT_TIMEOUT_MS'),
    maxUses: positiveInt('ZAVA_POOL_MAX_USES'),
    applicationName: z.string().min(1),
    workMem: z.string().regex(/^\d+(kB|MB|GB)$/, 'ZAVA_WORK_MEM must look like 8MB'),
  }),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Flags from the command line; undefined means "use the environment or the default". */
export interface ConfigOverrides {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  statementTimeoutMs?: string | number | undefined;
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
  const raw = {
    databaseUrl,
    queryDatabaseUrl: pick(undefined, 'ZAVA_QUERY_DATABASE_URL'),
    dataDir: path.resolve(pick(dataDirFlag, 'ZAVA_DATA_DIR', '.zava-data/pglite') as string),
    queryRole: pick(undefined, 'ZAVA_QUERY_ROLE', 'zava_query'),
    queryRolePassword: pick(undefined, 'ZAVA_QUERY_ROLE_PASSWORD'),
    statementTimeoutMs: pick(overrides.statementTimeoutMs, 'ZAVA_STATEMENT_TIMEOUT_MS', '30000'),
    maxRows: pick(undefined, 'ZAVA_MAX_ROWS', '1000'),
    pool: {
      // Sizes from the production seed: max(2, cores) warm, min(20, cores × 4) at most.
      max: pick(undefined, 'ZAVA_POOL_MAX', String(Math.min(20, cpuCount * 4))),
      idleTimeoutMs: pick(undefined, 'ZAVA_POOL_IDLE_TIMEOUT_MS', '300000'),
      connectionTimeoutMs: pick(undefined, 'ZAVA_POOL_CONNECT_TIMEOUT_MS', '10000'),
      maxUses: pick(undefined, 'ZAVA_POOL_MAX_USES', '50000'),
      applicationName: pick(undefined, 'ZAVA_APPLICATION_NAME', 'zava-mcp'),
      workMem: pick(undefined, 'ZAVA_WORK_MEM', '8MB'),
    },
  };
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `- ${issue.message}`).join('\n');
    throw new ConfigError(`invalid configuration:\n${problems}`);
  }
  return parsed.data;
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
