// Migrations, the query role, and transactional seeding, on both backends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrateDatabase } from '../src/db/open.js';
import { MIGRATIONS, RETAIL_TABLES } from '../src/db/migrations.js';
import { seedDatabase } from '../src/data/seed.js';
import { DataLoadError } from '../src/infra/errors.js';
import type { AdminSession, ManagedDatabase } from '../src/db/types.js';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';

async function count(db: ManagedDatabase, table: string): Promise<number> {
  return Number((await db.ownerQuery(`SELECT count(*) FROM ${table}`)).rows[0]![0]);
}

/** The real database, with a failure injected after `copies` bulk loads inside the seed transaction. */
function failingAfter(db: ManagedDatabase, copies: number): ManagedDatabase {
  return Object.assign(Object.create(db) as ManagedDatabase, {
    withAdminTransaction: <T>(work: (s: AdminSession) => Promise<T>) =>
      db.withAdminTransaction((session) => {
        let done = 0;
        return work({
          ...session,
          copyCsv: async (table, columns, csv) => {
            if (done++ === copies) throw new Error('simulated crash in the middle of the load');
            await session.copyCsv(table, columns, csv);
          },
        });
      }),
  });
}

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`migrations and the query role (${kind})`, { skip }, () => {
    let t: TestDatabase;
    before(async () => {
      t = await createTestDatabase(kind, { seeded: false });
    });
    after(async () => t?.cleanup());

    test('every migration is recorded once and a second run is a no-op', async () => {
      const versions = (await t.db.ownerQuery('SELECT version FROM zava_meta.schema_migrations ORDER BY version')).rows.map((r) => r[0]);
      assert.deepEqual(versions, MIGRATIONS.map((m) => m.version));
      const again = await migrateDatabase(t.db, t.config);
      assert.deepEqual(again.applied, []);
      assert.equal(again.current, MIGRATIONS.at(-1)!.version);
    });

    test('the schema has every retail table with row level security enabled', async () => {
      // customers and stores are masking views over tables in zava_data (migration 9).
      const result = await t.db.ownerQuery(
        `SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('retail', 'zava_data') AND c.relkind = 'r' ORDER BY 1`,
      );
      assert.deepEqual(result.rows.map((r) => r[0]), [...RETAIL_TABLES].sort());
      for (const row of result.rows) assert.equal(row[1], true, `${row[0]} has RLS enabled`);
      const views = await t.db.ownerQuery(
        `SELECT c.relname, c.reloptions::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'retail' AND c.relkind = 'v' ORDER BY 1`,
      );
      assert.deepEqual(views.rows, [['customers', '{security_barrier=true}'], ['stores', '{security_barrier=true}']]);
    });

    test('the query role is no superuser, cannot bypass RLS, owns nothing and may only SELECT', async () => {
      const role = t.config.queryRole;
      const attrs = await t.db.ownerQuery(
        'SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = $1',
        [role],
      );
      assert.deepEqual(attrs.rows[0], [false, false, false, false, false]);
      const owned = await t.db.ownerQuery(
        `SELECT count(*) FROM pg_class WHERE relowner = $1::regrole
         UNION ALL SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole
         UNION ALL SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole`,
        [role],
      );
      assert.deepEqual(owned.rows.map((r) => Number(r[0])), [0, 0, 0]);
      const privileges = await t.db.ownerQuery(
        `SELECT DISTINCT privilege_type FROM information_schema.role_table_grants WHERE grantee = $1 ORDER BY 1`,
        [role],
      );
      assert.deepEqual(privileges.rows.map((r) => r[0]), ['SELECT']);
      // Schema retail, and without pgvector the search's cube chunks (migration 13, read under the same policy).
      const tables = await t.db.ownerQuery(
        `SELECT DISTINCT CASE WHEN table_schema = 'retail' THEN 'retail' ELSE table_schema || '.' || table_name END
           FROM information_schema.role_table_grants WHERE grantee = $1 ORDER BY 1`,
        [role],
      );
      const chunks = (await t.db.ownerQuery(`SELECT to_regclass('zava_search.embedding_chunks') IS NOT NULL`)).rows[0]?.[0] === true;
      assert.equal(chunks, kind === 'server' && !t.db.hasVector, 'chunks exactly where pgvector is missing (cube is on the test service)');
      // And the typed analytics tools' monthly roll-up (zava_rollup), every table of which has RLS enabled.
      const granted = tables.rows.map((r) => String(r[0]));
      // And the result cache's one-row data version (migration 14), read inside a tool's own transaction; without
      // pgvector the embeddings version the in-process vector ranking is checked against (migration 16).
      const expected = ['retail', 'zava_cache.data_version', ...(chunks ? ['zava_search.embedding_chunks'] : []), ...(t.db.hasVector ? [] : ['zava_search.embeddings_version'])];
      assert.deepEqual(granted.filter((name) => !name.startsWith('zava_rollup.')), expected);
      assert.ok(granted.some((name) => name.startsWith('zava_rollup.')), 'the roll-up is readable');
      const rollup = await t.db.ownerQuery(
        `SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'zava_rollup' AND c.relkind = 'r' ORDER BY 1`,
      );
      assert.deepEqual(rollup.rows, [
        ['sales_daily', true],
        ['sales_daily_stores', true],
        ['sales_monthly', true],
        ['sales_monthly_groups', true],
        ['sales_rollup_state', true],
        ['sales_running', true],
      ]);
    });

    test('seeding is refused for bad sizes, and an interrupted load leaves nothing behind', async () => {
      await assert.rejects(seedDatabase(t.db, { customers: -5, seed: 1 }), DataLoadError);
      await assert.rejects(seedDatabase(t.db, { customers: 0, seed: 1 }), /--customers/);
      await assert.rejects(seedDatabase(t.db, { customers: 10, seed: -1 }), /--seed/);
      await assert.rejects(seedDatabase(failingAfter(t.db, 6), { customers: 50, seed: 1 }), /simulated crash/);
      for (const table of RETAIL_TABLES) assert.equal(await count(t.db, `retail.${table}`), 0, `${table} is empty`);
      assert.equal(await count(t.db, 'zava_private.regional_managers'), 0);
    });

    test('a seeded database refuses a second seed unchanged, and --replace reseeds in one go', async () => {
      const constraintsAndIndexes = () =>
        t.db.ownerQuery(
          `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'retail'::regnamespace
           UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'retail' ORDER BY 1`,
        );
      const definitions = (await constraintsAndIndexes()).rows;
      assert.ok(definitions.length >= 12 + 10, 'foreign keys and indexes exist before seeding');
      await seedDatabase(t.db, { customers: 60, seed: 5 });
      const orders = await count(t.db, 'retail.orders');
      assert.ok(orders > 0);
      await assert.rejects(seedDatabase(t.db, { customers: 80, seed: 6 }), /already holds a dataset/);
      assert.equal(await count(t.db, 'retail.orders'), orders);
      assert.equal(await count(t.db, 'retail.customers'), 60);
      await seedDatabase(t.db, { customers: 80, seed: 6, replace: true });
      assert.equal(await count(t.db, 'retail.customers'), 80);
      // Indexes and foreign keys dropped for the bulk load are all back, exactly as they were.
      assert.deepEqual((await constraintsAndIndexes()).rows, definitions);
      // Sequences continue after the loaded ids.
      const next = await t.db.ownerQuery(`SELECT nextval(pg_get_serial_sequence('retail.orders', 'order_id')) > max(order_id) FROM retail.orders`);
      assert.equal(next.rows[0]![0], true);
    });
  });
}

describe('the same seed gives the same database on both backends', async () => {
  const backends = await backendsUnderTest();
  const skip = backends.find((b) => b.kind === 'server')!.skip;
  test('identical per-table checksums', { skip }, async () => {
    const sums: string[][] = [];
    for (const kind of ['embedded', 'server'] as const) {
      // A small dataset, with the catalog's embeddings as other suites have it (the run's cached database, not
      // one seeded for this test alone): what it compares does not grow with it. Embeddings are stored as vector
      // (pgvector) or real[], whose text differs: of them, which products and models have one is compared.
      const t = await createTestDatabase(kind, { customers: 40 });
      try {
        const row: string[] = [];
        for (const table of RETAIL_TABLES) {
          const rows = table === 'product_description_embeddings' ? '(SELECT product_id, model, dimensions FROM retail.product_description_embeddings)' : `retail.${table}`;
          const r = await t.db.ownerQuery(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM ${rows} x`);
          row.push(`${table}=${String(r.rows[0]![0])}`);
        }
        sums.push(row);
      } finally {
        await t.cleanup();
      }
    }
    assert.deepEqual(sums[0], sums[1]);
  });
});
