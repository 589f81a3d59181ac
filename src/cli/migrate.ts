// What every command that opens a database for use does first: apply pending migrations, then install the
// current plan-cached search functions (search/functions.ts), which are derived from the search code rather
// than recorded as a migration.
import type { Config } from '../infra/config.js';
import { migrateDatabase } from '../db/open.js';
import type { MigrationReport } from '../db/migrations.js';
import type { ManagedDatabase } from '../db/types.js';
import { ensureSearchFunctions, type SearchFunctionReport } from '../search/functions.js';

export async function prepareSchema(db: ManagedDatabase, config: Config): Promise<{ migrations: MigrationReport; searchFunctions: SearchFunctionReport }> {
  const migrations = await migrateDatabase(db, config);
  const searchFunctions = await ensureSearchFunctions(db, config.queryRole);
  return { migrations, searchFunctions };
}
