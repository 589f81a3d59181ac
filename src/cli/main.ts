#!/usr/bin/env node
// The zava-mcp command line. Every flag has an environment variable of the same meaning (see README).
import './v8-flags.js'; // first: before any module compiles WebAssembly
import { parseArgs } from 'node:util';
import { loadConfig, loadDotEnv } from '../infra/config.js';
import { ZavaError } from '../infra/errors.js';
import { PACKAGE_VERSION } from '../infra/version.js';

/** Each command's usage, shown by `zava-mcp <command> --help` and, all together, by `zava-mcp --help`. */
const COMMANDS: Readonly<Record<string, string>> = {
  serve: `zava-mcp serve [--database-url URL | --data-dir DIR] [--host HOST] [--port PORT] [--stdio] [--rls-user-id UUID]
        [--customers N] [--seed S] [--end-date YYYY-MM-DD]
        Prepare the database (migrate; seed on first run, with --customers, --seed and --end-date as db seed
        takes them, else ZAVA_CUSTOMERS, ZAVA_SEED, ZAVA_END_DATE) and serve MCP: Streamable HTTP at
        http://HOST:PORT/mcp (default http://127.0.0.1:8000/mcp; identity from the x-rls-user-id header, or
        with ZAVA_AUTH=jwt from a bearer token), or stdio with --stdio (identity from --rls-user-id, or ZAVA_TOKEN).`,
  'db migrate': `zava-mcp db migrate [--database-url URL | --data-dir DIR]
        Apply pending schema migrations (idempotent).`,
  'db seed': `zava-mcp db seed [--database-url URL | --data-dir DIR] [--customers N] [--seed S] [--end-date YYYY-MM-DD] [--replace]
        Generate and load the Zava dataset in one transaction (orders up to --end-date, default today), then
        embed the catalog.`,
  'embeddings rebuild': `zava-mcp embeddings rebuild [--database-url URL | --data-dir DIR] [--force] [--batch-size N]
        Embed the products whose embedding is missing, stale or from another model with the configured
        provider (ZAVA_EMBEDDING_PROVIDER): one transaction per batch, resumable. --force re-embeds all.`,
  'db backup': `zava-mcp db backup <file> [--database-url URL | --data-dir DIR]
        Write the whole database to <file>: a pg_dump custom-format archive on a PostgreSQL server (needs the
        PostgreSQL client tools), PGlite's data-directory dump when embedded (stop the server first).`,
  'db restore': `zava-mcp db restore <file> [--replace] [--database-url URL | --data-dir DIR]
        Restore a backup made by db backup, all or nothing. A database that holds data is replaced only with
        --replace; a failed or interrupted restore leaves it as it was.`,
  'config check': `zava-mcp config check [--database-url URL | --data-dir DIR] [--host HOST] [--port PORT] [--rls-user-id UUID]
        Validate the configuration (environment, .env and flags) as serve would and print the effective
        settings with secrets masked; exit 1 naming the setting at fault.`,
  health: `zava-mcp health [--url URL] [--detail] [--host HOST] [--port PORT]
        Ask a running server whether it is ready (GET /ready: database, schema version, embeddings) and print
        each component; exit 0 when ready, 1 when not or when nothing answers (for container health checks).
        Default URL: this configuration's host and port. --detail also prints the operators' view (pools,
        slowest queries, cache, circuit, replicas); in jwt mode it needs a super_admin token in ZAVA_TOKEN.`,
  'catalog import': `zava-mcp catalog import <file.json> [--replace [--with-orders]] [--database-url URL | --data-dir DIR]
        Load a retailer's own catalog (categories → product types → products, or the reference system's
        product_data.json) and embed it, all or nothing. --replace makes the file the whole catalog (refused
        while orders hold a product it drops, unless --with-orders removes those orders too).`,
  'auth keygen': `zava-mcp auth keygen --out DIR
        Write an ES256 key pair for jwt mode: DIR/private.pem (keep it secret) and DIR/public.pem
        (ZAVA_JWT_PUBLIC_KEY).`,
  'auth token': `zava-mcp auth token --key DIR/private.pem --sub NAME --role super_admin|regional_manager|store_manager
        [--store "Zava Retail Seattle" …] [--region "Puget Sound" …] [--pii] [--ttl 1h]
        Print a signed token (issuer ZAVA_JWT_ISSUER, audience ZAVA_JWT_AUDIENCE) for jwt mode on stdout.`,
  'auth revoke': `zava-mcp auth revoke --jti ID | --sub NAME [--before TIME] [--reason TEXT] [--database-url URL | --data-dir DIR]
        Revoke one token (its jti), or every token of a subject issued before TIME (default now). Every replica
        refuses it within seconds.`,
  'audit tail': `zava-mcp audit tail [--sub SUB] [--since 2026-11-26|15m|2h|7d] [--limit N] [--json] [--database-url URL | --data-dir DIR]
        Print the newest tool calls of the audit trail (default 50), oldest first: time, subject, store scope,
        tool, outcome, rows, duration, request id, client and SQL or search text. --json prints JSON lines.`,
};

const USAGE = `Usage:
${Object.values(COMMANDS)
  .map((usage) => `  ${usage}`)
  .join('\n')}
  zava-mcp --version

Environment: DATABASE_URL, ZAVA_DATA_DIR, ZAVA_CUSTOMERS, ZAVA_SEED, ZAVA_STATEMENT_TIMEOUT_MS, ZAVA_MAX_ROWS,
ZAVA_QUERY_ROLE, ZAVA_QUERY_ROLE_PASSWORD, ZAVA_QUERY_DATABASE_URL, ZAVA_POOL_MAX, ZAVA_HOST, PORT, ZAVA_RLS_USER_ID,
ZAVA_MAX_RESULT_BYTES, ZAVA_MAX_QUERY_LENGTH, ZAVA_AUTH, ZAVA_JWT_PUBLIC_KEY, ZAVA_JWT_JWKS_URL, ZAVA_JWT_ISSUER,
ZAVA_JWT_AUDIENCE, ZAVA_OAUTH_AUTHORIZATION_SERVERS, ZAVA_TOKEN, ZAVA_RATE_LIMIT_PER_MINUTE, ZAVA_EDGE_RATE_LIMIT, REDIS_URL, ZAVA_SHUTDOWN_DELAY_MS, ZAVA_LOG_LEVEL, ZAVA_LOG_FORMAT, ZAVA_EMBEDDING_PROVIDER and its
settings (see README).`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'data-dir': { type: 'string' },
  customers: { type: 'string' },
  seed: { type: 'string' },
  'end-date': { type: 'string' },
  replace: { type: 'boolean' },
  'with-orders': { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  stdio: { type: 'boolean' },
  'rls-user-id': { type: 'string' },
  force: { type: 'boolean' },
  'batch-size': { type: 'string' },
  sub: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  url: { type: 'string' },
  detail: { type: 'boolean' },
  out: { type: 'string' },
  key: { type: 'string' },
  role: { type: 'string' },
  store: { type: 'string', multiple: true },
  region: { type: 'string', multiple: true },
  pii: { type: 'boolean' },
  ttl: { type: 'string' },
  jti: { type: 'string' },
  before: { type: 'string' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Options every command takes: asking for help or the version. */
const UNIVERSAL_OPTIONS = new Set(['help', 'version']);

/**
 * The options a command takes are the ones its usage names: anything else is refused rather than silently ignored
 * (`serve --replace` or `db migrate --customers 10` would otherwise look accepted and do nothing).
 */
function optionsOf(command: string): Set<string> {
  return new Set([...UNIVERSAL_OPTIONS, ...[...COMMANDS[command]!.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!)]);
}

/**
 * `--customers -5` is a value, not an option: parseArgs would call it ambiguous. A value-taking flag followed by
 * something that looks like a number is joined into `--flag=value`, so the project's own validation answers.
 */
export function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    const next = argv[i + 1];
    const option = name !== undefined ? (OPTIONS as Record<string, { type: string }>)[name] : undefined;
    if (option?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: joinNegativeValues(argv), options: OPTIONS, allowPositionals: true, strict: true });
  if (values.version) {
    process.stdout.write(`zava-mcp ${PACKAGE_VERSION}\n`);
    return 0;
  }
  // `catalog import`, `db backup` and `db restore` take one argument, the file; every other command is its words alone.
  const words = positionals.slice(0, 2).join(' ');
  const takesFile = words === 'catalog import' || words === 'db backup' || words === 'db restore';
  const command = (takesFile ? positionals.slice(0, 2) : positionals).join(' ');
  if (values.help || positionals.length === 0) {
    const usage = COMMANDS[command];
    process.stdout.write(usage ? `Usage:\n  ${usage}\n` : `${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!(command in COMMANDS)) {
    process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  const taken = optionsOf(command);
  const foreign = Object.keys(values).filter((name) => !taken.has(name));
  if (foreign.length > 0) {
    process.stderr.write(`zava-mcp: ${command} does not take ${foreign.map((name) => `--${name}`).join(', ')}\n\nUsage:\n  ${COMMANDS[command]}\n`);
    return 2;
  }
  if (takesFile && positionals.length !== 3) {
    process.stderr.write(`zava-mcp: ${command} needs exactly one file: ${COMMANDS[command]!.split('\n')[0]}\n\n${USAGE}\n`);
    return 2;
  }
  loadDotEnv();
  const config = loadConfig({
    databaseUrl: values['database-url'],
    dataDir: values['data-dir'],
    host: values.host,
    port: values.port,
    rlsUserId: values['rls-user-id'],
  });
  // Each command's module is loaded when it runs: importing them all (the server, the database drivers, the
  // embedding model) took about a second of CPU before --version, --help or a refused option could answer, and
  // the test suite spawns the CLI many times.
  switch (command) {
    case 'db migrate':
      await (await import('./db.js')).runMigrate(config);
      return 0;
    case 'db seed':
      await (await import('./db.js')).runSeed(config, values);
      return 0;
    case 'embeddings rebuild':
      await (await import('./embeddings.js')).runEmbeddingsRebuild(config, values);
      return 0;
    case 'auth keygen':
      await (await import('./auth.js')).runKeygen(values.out);
      return 0;
    case 'auth token':
      process.stdout.write(
        `${await (await import('./auth.js')).signToken(config, { key: values.key, sub: values.sub, role: values.role, stores: values.store, regions: values.region, pii: values.pii, ttl: values.ttl })}\n`,
      );
      return 0;
    case 'auth revoke':
      await (await import('./auth.js')).runRevoke(config, { jti: values.jti, sub: values.sub, before: values.before, reason: values.reason });
      return 0;
    case 'audit tail':
      return (await import('./audit.js')).runAuditTail(config, values);
    case 'catalog import':
      await (await import('./catalog.js')).runCatalogImport(config, positionals[2], process.stderr, values);
      return 0;
    case 'config check':
      return (await import('./config-check.js')).runConfigCheck(config);
    case 'health':
      return (await import('./health.js')).runHealth(config, values.url, process.stdout, { detail: values.detail === true, token: process.env.ZAVA_TOKEN || undefined });
    case 'db backup':
      await (await import('./backup.js')).runBackup(config, positionals[2]!);
      return 0;
    case 'db restore':
      await (await import('./backup.js')).runRestore(config, positionals[2]!, { replace: values.replace === true });
      return 0;
    default:
      return (await import('./serve.js')).runServe(config, { stdio: values.stdio === true, seed: { customers: values.customers, seed: values.seed, 'end-date': values['end-date'] } });
  }
}

/** System errors an operator causes and can fix (a path, a permission, a port): their message, no stack. */
const OPERATOR_ERRORS = new Set(['EACCES', 'EPERM', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EROFS', 'ENOSPC', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EMFILE']);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Expected failures get their message only; anything else is a bug and keeps its stack.
    if (String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`zava-mcp: ${(error as Error).message}\n\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    if (error instanceof ZavaError || OPERATOR_ERRORS.has(String((error as { code?: unknown }).code))) {
      process.stderr.write(`zava-mcp: ${(error as Error).message}\n`);
    } else {
      process.stderr.write(`zava-mcp: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`);
    }
    process.exitCode = 1;
  },
);
