// Real databases for tests: an embedded PGlite in a temporary directory, and a uniquely named database on the
// PostgreSQL service (dropped afterwards). With ZAVA_REQUIRE_SERVICES=1 (CI) a missing service fails the run;
// otherwise suites that need it are skipped and say so.
import { cp, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/infra/config.js';
import { migrateDatabase, openDatabase } from '../../src/db/open.js';
import { prepareSchema } from '../../src/cli/migrate.js';
import { MIGRATIONS } from '../../src/db/migrations.js';
import type { ManagedDatabase } from '../../src/db/types.js';
import { seedDatabase } from '../../src/data/seed.js';
import { DEFAULT_CATALOG_URL, loadDefaultCatalog, type Catalog } from '../../src/data/catalog.js';
import { readFileSync } from 'node:fs';
import { ensureEmbeddings } from '../../src/search/store.js';
import { CachedLocalProvider } from './embeddings.js';
import { withFileLock } from './file-lock.js';

export type BackendKind = 'embedded' | 'server';

export const REQUIRE_SERVICES = process.env.ZAVA_REQUIRE_SERVICES === '1';
export const PG_ADMIN_URL = process.env.ZAVA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_CUSTOMERS = 300;
export const TEST_SEED = 7;
/** Test data ends on a fixed day, so it is the same whenever the suite runs (the generator's horizon: every order). */
export const TEST_END_DATE = '2026-12-31';

let serverCheck: Promise<string | undefined> | undefined;

/** Why the PostgreSQL service cannot be used, or undefined when it can. Throws when services are required. */
export async function serverUnavailableReason(): Promise<string | undefined> {
  serverCheck ??= (async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (error) {
      return `PostgreSQL service at ${PG_ADMIN_URL} unavailable: ${(error as Error).message}`;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  const reason = await serverCheck;
  if (reason && REQUIRE_SERVICES) throw new Error(`${reason} (ZAVA_REQUIRE_SERVICES=1)`);
  return reason;
}

export interface TestDatabase {
  readonly kind: BackendKind;
  readonly config: Config;
  /** Open, migrated and (unless empty was asked for) seeded. */
  readonly db: ManagedDatabase;
  /** For spawning a server on the same data: the flags that select it. */
  readonly flags: readonly string[];
  /**
   * Flags for one more process running beside the one on `flags`. The PostgreSQL service serves any number; an
   * embedded directory admits one process at a time, so this is a copy of it (take it while nothing writes).
   */
  flagsForAnotherProcess(): Promise<readonly string[]>;
  cleanup(): Promise<void>;
}

export interface TestDatabaseOptions {
  readonly seeded?: boolean;
  readonly customers?: number;
  readonly seed?: number;
  /**
   * Whether a seeded database also holds the local model's product embeddings (default true), as a server
   * leaves it after its first start. Tests of embedding itself ask for none.
   */
  readonly embeddings?: boolean;
  /** A catalog other than the built-in one (608 products), for suites whose cost grows with the catalog's size. */
  readonly catalog?: Catalog;
  readonly configOverrides?: Partial<Record<'statementTimeoutMs', number>>;
  /** More settings, as environment variables (ZAVA_EMBEDDED_READERS, ZAVA_TEMP_FILE_LIMIT, …). */
  readonly env?: Readonly<Record<string, string>>;
}

async function adminExec(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A new database on the PostgreSQL service with a unique name. */
export async function createServerDatabaseUrl(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `zava_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminExec(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminExec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * A seeded embedded data directory is copied from a cache keyed by schema version, size, seed and catalog,
 * so each test file does not pay for initdb and seeding again.
 */
async function embeddedDataDir(seeded: boolean, customers: number, seed: number, embeddings: boolean, catalog: Catalog | undefined): Promise<string> {
  const target = await mkdtemp(path.join(tmpdir(), 'zava-test-'));
  const dir = path.join(target, 'pglite');
  if (!seeded) return dir;
  const catalogHash = createHash('sha256').update(catalog ? JSON.stringify(catalog) : readFileSync(DEFAULT_CATALOG_URL)).digest('hex').slice(0, 12);
  // The schema is named by its migrations' versions and names, so two checkouts with other migrations never share an entry.
  const schemaHash = createHash('sha256').update(JSON.stringify(MIGRATIONS.map((m) => [m.version, m.name]))).digest('hex').slice(0, 8);
  const key = `v${MIGRATIONS.length}-${schemaHash}-${customers}-${seed}-${TEST_END_DATE}-${catalogHash}${embeddings ? '-embedded' : ''}`;
  const cached = path.join(process.env.ZAVA_TEST_CACHE_DIR ?? path.join(tmpdir(), 'zava-test-cache'), key);
  const exists = () => stat(cached).then(() => true, () => false);
  // Files running side by side that want the same entry: one builds it, the others wait and copy it.
  if (!(await exists())) {
    await withFileLock(`${cached}.lock`, async () => {
      if (await exists()) return;
      const building = `${cached}.${process.pid}.tmp`;
      await rm(building, { recursive: true, force: true });
      const config = loadConfig({ dataDir: building }, {});
      const db = await openDatabase(config);
      try {
        await migrateDatabase(db, config);
        await seedDatabase(db, { customers, seed, endDate: TEST_END_DATE, catalog });
        if (embeddings) await ensureEmbeddings(db, { provider: new CachedLocalProvider() });
      } finally {
        await db.close();
      }
      await rename(building, cached).catch(async () => rm(building, { recursive: true, force: true }));
    });
  }
  await cp(cached, dir, { recursive: true });
  return dir;
}

/**
 * The built-in catalog cut down to its first `types` product types of each category and their first `products`
 * products: every category, with its seasonality, for suites that embed the whole catalog in spawned processes.
 */
export function sampleCatalog(types: number, products: number): Catalog {
  const catalog = loadDefaultCatalog();
  return {
    ...catalog,
    categories: catalog.categories.map((category) => ({
      ...category,
      types: category.types.slice(0, types).map((type) => ({ ...type, products: type.products.slice(0, products) })),
    })),
  };
}

export async function createTestDatabase(kind: BackendKind, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const seeded = options.seeded ?? true;
  const customers = options.customers ?? TEST_CUSTOMERS;
  const seed = options.seed ?? TEST_SEED;
  const embeddings = seeded && options.embeddings !== false;
  const env = {
    ...(options.configOverrides?.statementTimeoutMs ? { ZAVA_STATEMENT_TIMEOUT_MS: String(options.configOverrides.statementTimeoutMs) } : {}),
    ...options.env,
  };
  if (kind === 'embedded') {
    const dataDir = await embeddedDataDir(seeded, customers, seed, embeddings, options.catalog);
    let copies = 0;
    const config = loadConfig({ dataDir }, env);
    const db = await openDatabase(config);
    await prepareSchema(db, config);
    return {
      kind,
      config,
      db,
      flags: ['--data-dir', dataDir],
      flagsForAnotherProcess: async () => {
        const copy = path.join(path.dirname(dataDir), `pglite-${++copies}`);
        await cp(dataDir, copy, { recursive: true });
        return ['--data-dir', copy];
      },
      cleanup: async () => {
        await db.close();
        await rm(path.dirname(dataDir), { recursive: true, force: true });
      },
    };
  }
  const reason = await serverUnavailableReason();
  if (reason) throw new Error(reason);
  const { url, drop } = await createServerDatabaseUrl();
  const config = loadConfig({ databaseUrl: url }, env);
  const db = await openDatabase(config);
  try {
    await prepareSchema(db, config);
    if (seeded) await seedDatabase(db, { customers, seed, endDate: TEST_END_DATE, catalog: options.catalog });
    if (embeddings) await ensureEmbeddings(db, { provider: new CachedLocalProvider() });
  } catch (error) {
    await db.close();
    await drop();
    throw error;
  }
  return {
    kind,
    config,
    db,
    flags: ['--database-url', url],
    flagsForAnotherProcess: async () => ['--database-url', url],
    cleanup: async () => {
      await db.close();
      await drop();
    },
  };
}

/** The backends a suite should run on: both, or embedded only when the service is absent and not required. */
export async function backendsUnderTest(): Promise<{ kind: BackendKind; skip: string | false }[]> {
  const reason = await serverUnavailableReason();
  return [
    { kind: 'embedded', skip: false },
    { kind: 'server', skip: reason ?? false },
  ];
}
