// Seeded databases on the PostgreSQL service, within a test run (test/run.ts): each configuration is seeded and
// embedded once, into a template database, and every test database of that configuration is a copy of it
// (CREATE DATABASE … TEMPLATE: about a second, where seeding 300 customers and storing the catalog's embeddings
// took 9 s on a quiet machine, and the suite creates a dozen such databases). The templates are named after the
// run's cache directory, so runs side by side (other checkouts on the same service) never share or drop each
// other's; the run drops its own at the end. Kept apart from databases.ts so the runner loads only pg.
import { createHash } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.ZAVA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** What every template of the run whose cache is `cacheDir` is named with first. */
export function templatePrefix(cacheDir: string): string {
  return `zava_tpl_${createHash('sha256').update(cacheDir).digest('hex').slice(0, 10)}_`;
}

/** The template of one configuration (a cache key). */
export function templateName(cacheDir: string, key: string): string {
  return `${templatePrefix(cacheDir)}${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** Drops the run's templates, finished or half built. Quietly does nothing when the service is not there. */
export async function dropTemplates(cacheDir: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch {
    return;
  }
  try {
    const found = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, [templatePrefix(cacheDir)]);
    for (const { datname } of found.rows) await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
