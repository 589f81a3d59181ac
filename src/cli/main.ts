#!/usr/bin/env node
// The zava-mcp command line. Every flag has an environment variable of the same meaning (see README).
import { parseArgs } from 'node:util';
import { loadConfig, loadDotEnv } from '../infra/config.js';
import { ZavaError } from '../infra/errors.js';
import { runMigrate, runSeed } from './db.js';
import { runServe } from './serve.js';

const USAGE = `Usage:
  zava-mcp serve [--database-url URL | --data-dir DIR]
        Prepare the database (migrate; seed on first run) and serve MCP.
  zava-mcp db migrate [--database-url URL | --data-dir DIR]
        Apply pending schema migrations (idempotent).
  zava-mcp db seed [--database-url URL | --data-dir DIR] [--customers N] [--seed S] [--replace]
        Generate and load the Zava dataset in one transaction.

Environment: DATABASE_URL, ZAVA_DATA_DIR, ZAVA_CUSTOMERS, ZAVA_SEED, ZAVA_STATEMENT_TIMEOUT_MS, ZAVA_MAX_ROWS,
ZAVA_QUERY_ROLE, ZAVA_QUERY_ROLE_PASSWORD, ZAVA_QUERY_DATABASE_URL, ZAVA_POOL_MAX (see README).`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'data-dir': { type: 'string' },
  customers: { type: 'string' },
  seed: { type: 'string' },
  replace: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  if (values.help || positionals.length === 0) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  loadDotEnv();
  const config = loadConfig({ databaseUrl: values['database-url'], dataDir: values['data-dir'] });
  const command = positionals.join(' ');
  switch (command) {
    case 'db migrate':
      await runMigrate(config);
      return 0;
    case 'db seed':
      await runSeed(config, values);
      return 0;
    case 'serve':
      return runServe(config);
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

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
    if (error instanceof ZavaError) {
      process.stderr.write(`zava-mcp: ${(error as Error).message}\n`);
    } else {
      process.stderr.write(`zava-mcp: unexpected error: ${error instanceof Error ? error.stack : String(error)}\n`);
    }
    process.exitCode = 1;
  },
);
