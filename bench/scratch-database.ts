// A seeded embedded database in a temporary directory for a benchmark, removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/infra/config.js';
import { openDatabase } from '../src/db/open.js';
import { prepareSchema } from '../src/cli/migrate.js';
import { seedDatabase } from '../src/data/seed.js';
import type { ManagedDatabase } from '../src/db/types.js';

export async function withScratchDatabase<T>(customers: number, work: (db: ManagedDatabase) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zava-bench-'));
  const config = loadConfig({ dataDir: path.join(dir, 'pglite') }, {});
  const db = await openDatabase(config);
  try {
    await prepareSchema(db, config);
    await seedDatabase(db, { customers, seed: 1 });
    return await work(db);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}
