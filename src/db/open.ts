// Chooses the backend from configuration: a DATABASE_URL means a PostgreSQL server, otherwise the embedded
// database in its data directory.
import type { Config } from '../infra/config.js';
import { createLogger } from '../infra/logger.js';
import { EmbeddedDatabase } from './embedded/backend.js';
import { migrate, type MigrationReport } from './migrations.js';
import { ServerDatabase } from './server/backend.js';
import type { ManagedDatabase } from './types.js';

export interface OpenOptions {
  /** Only one identity will ever call (a stdio process): see EmbeddedOptions.oneIdentity. */
  readonly oneIdentity?: boolean;
}

export async function openDatabase(config: Config, options: OpenOptions = {}): Promise<ManagedDatabase> {
  const log = createLogger(config.logLevel);
  if (config.databaseUrl) return ServerDatabase.open(config, (message) => log.warn(message));
  return EmbeddedDatabase.open({
    dataDir: config.dataDir,
    statementTimeoutMs: config.statementTimeoutMs,
    maxRows: config.maxRows,
    readers: config.embeddedReaders,
    oneIdentity: options.oneIdentity === true,
    identityConcurrency: config.identityConcurrency,
    queueTimeoutMs: config.queueTimeoutMs,
    identityQueueLimit: config.identityQueueLimit,
    maxRowBytes: config.maxRowBytes,
    tempFileLimit: config.tempFileLimit,
    piiReadRoles: config.piiReadRoles,
    warn: (message) => log.warn(message),
  });
}

/** Applies pending migrations, then loads the signing key so identity-scoped reads can run. */
export async function migrateDatabase(db: ManagedDatabase, config: Config): Promise<MigrationReport> {
  const context = { hasVector: db.hasVector, queryRole: config.queryRole, queryRolePassword: config.queryRolePassword, tempFileLimit: config.tempFileLimit };
  for (let attempt = 1; ; attempt++) {
    try {
      const report = await db.withAdminTransaction((session) => migrate(session, context));
      await db.prepare();
      return report;
    } catch (error) {
      // Roles are shared by every database of a cluster, but the migration lock is per database: two databases
      // migrating at the same moment can collide on a role's catalog row. The transaction rolled back whole, so
      // running it again is safe; the second try finds the other's work done.
      if (attempt >= 3 || !isConcurrentCatalogUpdate(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 200 * attempt));
    }
  }
}

/** PostgreSQL's "tuple concurrently updated/deleted": two transactions changed one system catalog row at once. */
function isConcurrentCatalogUpdate(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (/tuple concurrently (updated|deleted)/.test(e.message)) return true;
  }
  return false;
}
