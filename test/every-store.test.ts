// Head office's reads without a per-row store check (migration 17, server backend): head office's statements run as
// the every-store role, whose `whole_company` policy settles each row with one init plan; managers keep the plain,
// indexable store check; the role grants nothing by itself; it holds exactly the query role's privileges.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { signContext } from '../src/db/context.js';
import { everyStoreRole } from '../src/db/migrations.js';
import { queryRoleUrl } from '../src/db/server/backend.js';
import type { Identity } from '../src/db/types.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';

const SCOPED = ['orders', 'order_items', 'inventory'] as const;

describe('head office reads as the every-store role (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  let key: Buffer;
  let client: pg.Client;
  let pid: number;
  let everyStore: string;

  before(async () => {
    t = await createTestDatabase('server');
    key = Buffer.from(String((await t.db.ownerQuery(`SELECT encode(hmac_key, 'hex') FROM zava_private.context_key`)).rows[0]![0]), 'hex');
    everyStore = everyStoreRole(t.config.queryRole);
    client = new pg.Client({ connectionString: queryRoleUrl(t.config) });
    await client.connect();
    pid = (client as unknown as { processID: number }).processID;
  });
  after(async () => {
    await client?.end();
    await t?.cleanup();
  });

  /** Row counts of the store-scoped tables as the owner sees them, for these stores (undefined: all). */
  async function truth(storeIds: readonly number[] | undefined): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const table of SCOPED) {
      const where = storeIds ? `WHERE store_id = ANY('{${storeIds.join(',')}}'::int[])` : '';
      counts[table] = Number((await t.db.ownerQuery(`SELECT count(*) FROM retail.${table} ${where}`)).rows[0]![0]);
    }
    return counts;
  }

  /** In one transaction on the raw query-role connection: the context (or none), the role, then the statement. */
  async function asRole(identity: Identity | undefined, role: string, sql: string): Promise<pg.QueryResult> {
    await client.query('BEGIN READ ONLY');
    try {
      if (identity) await client.query(`SELECT set_config('zava.ctx', $1, true)`, [signContext(key, identity, pid)]);
      await client.query(`SELECT set_config('role', $1, true)`, [role]);
      return await client.query({ text: sql, rowMode: 'array' });
    } finally {
      await client.query('ROLLBACK');
    }
  }

  test('through the data layer, head office runs as the every-store role and sees every row; managers run as the query role', async () => {
    const everything = await truth(undefined);
    const headOffice = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
    for (const table of SCOPED) {
      const rows = await t.db.withIdentity(headOffice, (s) => s.query(`SELECT current_setting('role'), count(*) FROM retail.${table}`));
      assert.equal(rows.rows[0]![0], everyStore, `${table}: head office's role`);
      assert.equal(Number(rows.rows[0]![1]), everything[table], `${table}: head office sees every row`);
    }
    for (const managerId of [STORES[0]!.managerId, REGIONAL_MANAGERS[0]!.managerId]) {
      const manager = await t.db.resolveIdentity(managerId);
      const own = await truth(manager.storeIds === 'all' ? undefined : manager.storeIds);
      for (const table of SCOPED) {
        const rows = await t.db.withIdentity(manager, (s) => s.query(`SELECT current_setting('role'), count(*) FROM retail.${table}`));
        assert.equal(rows.rows[0]![0], 'none', `${table}: a manager's statements run as the query role`);
        assert.equal(Number(rows.rows[0]![1]), own[table], `${table}: ${managerId} sees its stores' rows`);
      }
    }
    // The role is undone with the transaction: the pooled connection is the query role again for the next call.
    const after = await t.db.withIdentity(await t.db.resolveIdentity(STORES[1]!.managerId), (s) => s.query(`SELECT current_user::text`));
    assert.equal(after.rows[0]![0], t.config.queryRole);
  });

  test('the role grants nothing by itself: a manager context sees its stores, a missing or forged one nothing', async () => {
    const seattle: Identity = { userId: STORES[0]!.managerId, role: 'store_manager', storeIds: [STORES[0]!.storeId] };
    const own = await truth([STORES[0]!.storeId]);
    for (const table of SCOPED) {
      const manager = await asRole(seattle, everyStore, `SELECT count(*) FROM retail.${table}`);
      assert.equal(Number(manager.rows[0]![0]), own[table], `${table}: a manager's context on the every-store role`);
      const none = await asRole(undefined, everyStore, `SELECT count(*) FROM retail.${table}`);
      assert.equal(Number(none.rows[0]![0]), 0, `${table}: no context`);
      await client.query('BEGIN READ ONLY');
      try {
        const forged = signContext(Buffer.alloc(32, 9), { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' }, pid);
        await client.query(`SELECT set_config('zava.ctx', $1, true), set_config('role', $2, true)`, [forged, everyStore]);
        const rows = await client.query({ text: `SELECT count(*) FROM retail.${table}`, rowMode: 'array' });
        assert.equal(Number(rows.rows[0]![0]), 0, `${table}: a context signed with another key`);
      } finally {
        await client.query('ROLLBACK');
      }
    }
  });

  test('plans: head office checks the context once before the store comparison; a manager keeps the plain store check', async () => {
    const headOffice: Identity = { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' };
    const seattle: Identity = { userId: STORES[0]!.managerId, role: 'store_manager', storeIds: [STORES[0]!.storeId] };
    const plan = async (identity: Identity, role: string) =>
      (await asRole(identity, role, `EXPLAIN (COSTS OFF) SELECT sum(total_amount) FROM retail.order_items`)).rows.map((r) => String(r[0])).join('\n');
    // PostgreSQL ORs permissive policies in reverse name order: whole_company's init plan must come first, so a
    // true value settles each row without comparing its store (a PostgreSQL that changes the order fails here).
    assert.match(await plan(headOffice, everyStore), /Filter: \(\$\d+ OR \(store_id = ANY \(\$\d+\)\)\)/);
    const manager = await plan(seattle, 'none');
    assert.match(manager, /store_id = ANY \(\$\d+\)/);
    assert.doesNotMatch(manager, / OR /, "the whole_company policy does not apply to the query role (it is NOINHERIT)");
  });

  test("the context checks are inlined into each policy's init plan, and a caller's search_path cannot redirect them", async () => {
    const headOffice: Identity = { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' };
    // Migration 18: the policies' wrappers are inlined, so each init plan calls the one SECURITY DEFINER check.
    const verbose = async (sql: string) => (await asRole(headOffice, everyStore, `EXPLAIN (VERBOSE, COSTS OFF) ${sql}`)).rows.map((r) => String(r[0])).join('\n');
    const lookup = await verbose('SELECT product_name FROM retail.products WHERE product_id = 1');
    assert.match(lookup, /Output: \(zava_ctx\.verified_parts\(\) IS NOT NULL\)/);
    assert.doesNotMatch(lookup, /is_authenticated/);
    const aggregate = await verbose('SELECT s.store_name, count(*) FROM retail.orders o JOIN retail.stores s USING (store_id) GROUP BY 1');
    assert.match(aggregate, /COALESCE\(\(\(zava_ctx\.verified_parts\(\)\)\[4\] = '\*'::text\), false\)/);
    assert.doesNotMatch(aggregate, /sees_every_store|is_authenticated/);

    // Inlined code runs with the caller's settings. A standard SQL body is bound when it is created, so an operator
    // of the caller's choosing earlier in search_path changes nothing: here an `=` that is true even for NULL,
    // which would make a forged context's missing scope equal '*'.
    await t.db.ownerQuery(`CREATE SCHEMA zava_test_evil`);
    await t.db.ownerQuery(`CREATE FUNCTION zava_test_evil.always(a text, b text) RETURNS boolean LANGUAGE sql CALLED ON NULL INPUT AS 'SELECT true'`);
    await t.db.ownerQuery(`CREATE OPERATOR zava_test_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = zava_test_evil.always)`);
    await t.db.ownerQuery(`GRANT USAGE ON SCHEMA zava_test_evil TO PUBLIC`);
    try {
      const forged = signContext(Buffer.alloc(32, 7), headOffice, pid);
      await client.query('BEGIN READ ONLY');
      try {
        await client.query(`SELECT set_config('zava.ctx', $1, true), set_config('role', $2, true)`, [forged, everyStore]);
        await client.query(`SET LOCAL search_path = zava_test_evil, pg_catalog, retail`);
        const hijacked = await client.query({ text: `SELECT NULL::text = '*'`, rowMode: 'array' });
        assert.equal(hijacked.rows[0]![0], true, "the caller's own expressions do use the planted operator");
        const checks = await client.query({ text: `SELECT zava_ctx.sees_every_store(), zava_ctx.is_authenticated(), zava_ctx.manager_ids_clear(), zava_ctx.pii_clear()`, rowMode: 'array' });
        assert.deepEqual(checks.rows[0], [false, false, false, false]);
        for (const table of SCOPED) {
          const rows = await client.query({ text: `SELECT count(*) FROM retail.${table}`, rowMode: 'array' });
          assert.equal(Number(rows.rows[0]![0]), 0, `${table}: a forged context under a planted operator`);
        }
      } finally {
        await client.query('ROLLBACK');
      }
    } finally {
      await t.db.ownerQuery(`DROP SCHEMA zava_test_evil CASCADE`);
    }
  });

  test('the every-store role holds exactly the query role privileges', async () => {
    const privileges = async (role: string) =>
      (
        await t.db.ownerQuery(
          `SELECT kind || ' ' || object || ' ' || privilege_type FROM (
             SELECT 'schema' AS kind, n.nspname::text AS object, a.privilege_type, a.grantee FROM pg_namespace n, aclexplode(n.nspacl) a
             UNION ALL SELECT 'relation', c.oid::regclass::text, a.privilege_type, a.grantee FROM pg_class c, aclexplode(c.relacl) a
             UNION ALL SELECT 'function', f.oid::regprocedure::text, a.privilege_type, a.grantee FROM pg_proc f, aclexplode(f.proacl) a
           ) p WHERE grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY 1`,
          [role],
        )
      ).rows.map((r) => String(r[0]));
    const query = await privileges(t.config.queryRole);
    assert.ok(query.some((p) => p.startsWith('relation retail.order_items SELECT')), 'the query role reads order_items');
    assert.deepEqual(await privileges(everyStore), query);
    const roles = await t.db.ownerQuery(`SELECT rolname, rolinherit, rolcanlogin FROM pg_roles WHERE rolname IN ($1, $2) ORDER BY 1`, [t.config.queryRole, everyStore]);
    assert.deepEqual(
      roles.rows.map((r) => [r[0], r[1], r[2]]),
      [[t.config.queryRole, false, true], [everyStore, true, false]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
  });
});
