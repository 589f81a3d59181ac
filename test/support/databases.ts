// Real databases for tests: an embedded PGlite in a temporary directory, and a uniquely named database on the
// PostgreSQL service (dropped afterwards). With ZAVA_REQUIRE_SERVICES=1 (CI) a missing service fails the run;
// otherwise suites that need it are skipped and say so.
// First: test processes host embedded databases and the SQL guard themselves, with the server's V8 settings.
import '../../src/cli/v8-flags.js';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/infra/config.js';
import { migrateDatabase, openDatabase } from '../../src/db/open.js';
import { prepareSchema } from '../../src/cli/migrate.js';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { copyDirectory } from '../../src/db/embedded/copy-dir.js';
import type { ManagedDatabase } from '../../src/db/types.js';
import { seedDatabase } from '../../src/data/seed.js';
import { DEFAULT_CATALOG_URL, loadDefaultCatalog, type Catalog } from '../../src/data/catalog.js';
import { readFileSync } from 'node:fs';
import { ensureEmbeddings } from '../../src/search/store.js';
import { CachedLocalProvider } from './embeddings.js';
import { withFileLock } from './file-lock.js';
import { PG_ADMIN_URL, templateName } from './server-templates.js';

export type BackendKind = 'embedded' | 'server';

export const REQUIRE_SERVICES = process.env.ZAVA_REQUIRE_SERVICES === '1';
export { PG_ADMIN_URL };
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
  /**
   * false: an embedded directory is only copied, not opened here (`db` throws), for suites whose spawned processes
   * open it themselves: opening PGlite and checking the schema of a copy of a migrated entry cost seconds of CPU.
   * The PostgreSQL service's databases are always opened.
   */
  readonly open?: boolean;
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

function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new database on the PostgreSQL service with a unique name (a copy of `template` when one is given). */
export async function createServerDatabaseUrl(template?: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `zava_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminExec(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  return { url: databaseUrl(name), drop: () => adminExec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Within a test run (ZAVA_TEST_CACHE_DIR): the template database of one seeded configuration on the PostgreSQL
 * service, built by the first file that asks (test/support/server-templates.ts); undefined outside a run, where
 * nothing would drop it afterwards. Built under another name and renamed when complete, so a half-built one is
 * never copied; connections to it are then refused, so nothing can be connected to it when it is copied.
 */
async function serverTemplate(key: string, build: (url: string) => Promise<void>): Promise<string | undefined> {
  const cacheDir = process.env.ZAVA_TEST_CACHE_DIR;
  if (!cacheDir) return undefined;
  const name = templateName(cacheDir, key);
  const exists = async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
      return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
    } finally {
      await client.end();
    }
  };
  if (!(await exists())) {
    await withFileLock(path.join(cacheDir, `${name}.lock`), async () => {
      if (await exists()) return;
      const building = `${name}_b${process.pid}`;
      await adminExec(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
      await adminExec(`CREATE DATABASE ${building}`);
      try {
        await build(databaseUrl(building));
        await adminExec(`ALTER DATABASE ${building} WITH ALLOW_CONNECTIONS false`);
        await adminExec(`ALTER DATABASE ${building} RENAME TO ${name}`);
      } catch (error) {
        await adminExec(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`).catch(() => undefined);
        throw error;
      }
    });
  }
  return name;
}

/**
 * A seeded embedded data directory is copied from a cache keyed by schema version, size, seed and catalog,
 * so each test file does not pay for initdb and seeding again.
 */
function cacheKey(customers: number, seed: number, embeddings: boolean, catalog: Catalog | undefined): string {
  const catalogHash = createHash('sha256').update(catalog ? JSON.stringify(catalog) : readFileSync(DEFAULT_CATALOG_URL)).digest('hex').slice(0, 12);
  // The schema is named by its migrations' versions and names, so two checkouts with other migrations never share an entry.
  const schemaHash = createHash('sha256').update(JSON.stringify(MIGRATIONS.map((m) => [m.version, m.name]))).digest('hex').slice(0, 8);
  return `v${MIGRATIONS.length}-${schemaHash}-${customers}-${seed}-${TEST_END_DATE}-${catalogHash}${embeddings ? '-embedded' : ''}`;
}

async function embeddedDataDir(seeded: boolean, customers: number, seed: number, embeddings: boolean, catalog: Catalog | undefined): Promise<string> {
  const target = await mkdtemp(path.join(tmpdir(), 'zava-test-'));
  const dir = path.join(target, 'pglite');
  if (!seeded) return dir;
  const key = cacheKey(customers, seed, embeddings, catalog);
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
  await copyDirectory(cached, dir);
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
    let db: ManagedDatabase | undefined;
    if (options.open !== false) {
      db = await openDatabase(config);
      await prepareSchema(db, config);
    }
    return {
      kind,
      config,
      get db(): ManagedDatabase {
        if (!db) throw new Error('this test database was created with open: false (its directory is for spawned processes)');
        return db;
      },
      flags: ['--data-dir', dataDir],
      flagsForAnotherProcess: async () => {
        const copy = path.join(path.dirname(dataDir), `pglite-${++copies}`);
        await copyDirectory(dataDir, copy);
        return ['--data-dir', copy];
      },
      cleanup: async () => {
        await db?.close();
        await rm(path.dirname(dataDir), { recursive: true, force: true });
      },
    };
  }
  const reason = await serverUnavailableReason();
  if (reason) throw new Error(reason);
  const fill = async (db: ManagedDatabase) => {
    await seedDatabase(db, { customers, seed, endDate: TEST_END_DATE, catalog: options.catalog });
    if (embeddings) await ensureEmbeddings(db, { provider: new CachedLocalProvider() });
  };
  // The settings are part of the key: a query role or other setting that migrations write into the data.
  const template = seeded
    ? await serverTemplate(`${cacheKey(customers, seed, embeddings, options.catalog)}-${JSON.stringify(env)}`, async (url) => {
        const config = loadConfig({ databaseUrl: url }, env);
        const db = await openDatabase(config);
        try {
          await prepareSchema(db, config);
          await fill(db);
        } finally {
          await db.close();
        }
      })
    : undefined;
  const { url, drop } = await createServerDatabaseUrl(template);
  const config = loadConfig({ databaseUrl: url }, env);
  const db = await openDatabase(config);
  try {
    // On a copy this finds nothing to do, as a server starting on a prepared database does.
    await prepareSchema(db, config);
    if (seeded && !template) await fill(db);
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
