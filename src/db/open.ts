// Chooses the backend from configuration: a DATABASE_URL means a PostgreSQL server, otherwise the embedded
// database in its data directory.
import type { Config } from '../infra/config.js';
import { createLogger } from '../infra/logger.js';
import { EmbeddedDatabase } from './embedded/backend.js';
import { migrate, type MigrationReport } from './migrations.js';
import { ServerDatabase } from './server/backend.js';
import type { ManagedDatabase } from './types.js';

export async function openDatabase(config: Config): Promise<ManagedDatabase> {
  if (config.databaseUrl) return ServerDatabase.open(config);
  const log = createLogger(config.logLevel);
  return EmbeddedDatabase.open({
    dataDir: config.dataDir,
    statementTimeoutMs: config.statementTimeoutMs,
    maxRows: config.maxRows,
    readers: config.embeddedReaders,
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
  const report = await db.withAdminTransaction((session) =>
    migrate(session, { hasVector: db.hasVector, queryRole: config.queryRole, queryRolePassword: config.queryRolePassword, tempFileLimit: config.tempFileLimit }),
  );
  await db.prepare();
  return report;
}
