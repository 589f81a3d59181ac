// `zava-mcp db migrate|seed`: prepare a database, embedded or server.
import type { Config } from '../infra/config.js';
import { DataLoadError } from '../infra/errors.js';
import { consoleProgress } from '../infra/progress.js';
import { openDatabase } from '../db/open.js';
import { prepareSchema } from './migrate.js';
import type { ManagedDatabase } from '../db/types.js';
import { salesSummary, seedDatabase, validateSeedOptions } from '../data/seed.js';
import { todayUtc } from '../data/dates.js';
import { createEmbeddingProvider } from '../search/settings.js';
import { ensureEmbeddings } from '../search/store.js';

/** The reference size by default: about 20 s to generate and load on a 2-core machine, embedded or server. */
export const DEFAULT_CUSTOMERS = { embedded: 100_000, server: 100_000 } as const;
export const DEFAULT_SEED = 42;

export interface SeedFlags {
  customers?: string | undefined;
  seed?: string | undefined;
  replace?: boolean | undefined;
  'end-date'?: string | undefined;
}

export function parseWholeNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^-?\d+$/.test(text.trim())) throw new DataLoadError(`${flag} must be a whole number (got "${text}")`);
  return Number(text);
}

export async function withDatabase<T>(config: Config, work: (db: ManagedDatabase) => Promise<T>): Promise<T> {
  const db = await openDatabase(config);
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

export async function runMigrate(config: Config, out: NodeJS.WritableStream = process.stderr): Promise<void> {
  await withDatabase(config, async (db) => {
    const { migrations: report, searchFunctions: functions } = await prepareSchema(db, config);
    if (report.applied.length === 0 && functions.created.length === 0) {
      out.write(`${db.location}: schema is up to date (version ${report.current}); nothing to do.\n`);
    }
    for (const step of report.applied) out.write(`${db.location}: applied migration ${step.version} (${step.name})\n`);
    if (functions.created.length > 0) out.write(`${db.location}: installed search functions ${functions.created.join(', ')}\n`);
  });
}

export function seedSettings(flags: SeedFlags, db: Pick<ManagedDatabase, 'kind'>, env: NodeJS.ProcessEnv = process.env) {
  const customers = parseWholeNumber('--customers', flags.customers ?? env.ZAVA_CUSTOMERS) ?? DEFAULT_CUSTOMERS[db.kind];
  const seed = parseWholeNumber('--seed', flags.seed ?? env.ZAVA_SEED) ?? DEFAULT_SEED;
  const endDate = flags['end-date'] ?? (env.ZAVA_END_DATE || undefined) ?? todayUtc();
  validateSeedOptions({ customers, seed, endDate });
  return { customers, seed, endDate };
}

export async function runSeed(config: Config, flags: SeedFlags, out: NodeJS.WritableStream = process.stderr): Promise<void> {
  // Refuse bad sizes before touching the database.
  seedSettings(flags, { kind: config.databaseUrl ? 'server' : 'embedded' });
  const provider = createEmbeddingProvider(); // and the embedding configuration
  await withDatabase(config, async (db) => {
    const { customers, seed, endDate } = seedSettings(flags, db);
    await prepareSchema(db, config);
    out.write(`Seeding ${db.location} with ${customers.toLocaleString('en-US')} customers (seed ${seed}, orders up to ${endDate})\n`);
    const report = await seedDatabase(db, { customers, seed, endDate, replace: flags.replace === true, progress: consoleProgress() });
    const counts = Object.entries(report.counts)
      // Customers and stores are loaded into zava_data and read through the retail views of the same names.
      .map(([table, rows]) => `  ${table.replace(/^zava_data\./, 'retail.').padEnd(32)} ${rows.toLocaleString('en-US').padStart(10)}`)
      .join('\n');
    out.write(`\nRows loaded:\n${counts}\nGenerated in ${(report.generateMs / 1000).toFixed(1)} s, loaded in ${(report.loadMs / 1000).toFixed(1)} s\n\n`);
    out.write(`${await salesSummary(db)}\n`);
    // Embed the catalog so semantic search works at once (after the commit: the dataset stays if this fails).
    const embedded = await ensureEmbeddings(db, { provider, progress: consoleProgress() });
    out.write(`Embedded ${embedded.embedded} of ${embedded.products} products with ${embedded.model} (${embedded.dimensions} dimensions).\n`);
  });
}
