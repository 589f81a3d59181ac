// `zava-mcp serve` (what `npm start` runs): prepare the database, seeding it on first run, then serve.
import type { Config } from '../infra/config.js';
import { consoleProgress } from '../infra/progress.js';
import { migrateDatabase, openDatabase } from '../db/open.js';
import type { ManagedDatabase } from '../db/types.js';
import { salesSummary, seedDatabase } from '../data/seed.js';
import { seedSettings } from './db.js';

/** Opens, migrates and (when empty) seeds the database; the returned database is ready for identity reads. */
export async function prepareDatabase(config: Config, log: (line: string) => void): Promise<ManagedDatabase> {
  const started = Date.now();
  const db = await openDatabase(config);
  try {
    const report = await migrateDatabase(db, config);
    for (const step of report.applied) log(`applied migration ${step.version} (${step.name})`);
    const hasData = await db.ownerQuery('SELECT EXISTS (SELECT 1 FROM retail.stores)');
    if (hasData.rows[0]?.[0] !== true) {
      const { customers, seed } = seedSettings({}, db);
      log(`first run: seeding ${db.location} with ${customers.toLocaleString('en-US')} customers (seed ${seed})`);
      await seedDatabase(db, { customers, seed, progress: consoleProgress() });
      log(await salesSummary(db));
    }
    log(`${db.location} is ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return db;
  } catch (error) {
    await db.close();
    throw error;
  }
}

export async function runServe(config: Config): Promise<number> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const db = await prepareDatabase(config, log);
  await db.close();
  log('The MCP server is not part of this build yet: the database is prepared, and zava-mcp stops here.');
  return 0;
}
