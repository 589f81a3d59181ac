// Row Level Security, on both backends: every identity × every table against ground truth computed as the
// owner, and contexts that are missing, forged, replayed from another backend or expired.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { RETAIL_TABLES, STORE_SCOPED_TABLES } from '../src/db/migrations.js';
import { signContext } from '../src/db/context.js';
import { UnknownIdentityError } from '../src/infra/errors.js';
import type { Identity } from '../src/db/types.js';
import { backendsUnderTest, createTestDatabase, PG_ADMIN_URL, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import pg from 'pg';
import { openDatabase } from '../src/db/open.js';
import { queryRoleUrl } from '../src/db/server/backend.js';
import { boundedSelect } from '../src/db/bounded.js';

const storeColumn = new Map(STORE_SCOPED_TABLES);

/** Row count per table that `storeIds` may see, computed as the owner (RLS does not apply to the owner). */
async function groundTruth(t: TestDatabase, storeIds: 'all' | readonly number[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of RETAIL_TABLES) {
    const column = storeColumn.get(table);
    const filter = column && storeIds !== 'all' ? ` WHERE ${column} = ANY ($1::int[])` : '';
    const params = filter ? [`{${(storeIds as number[]).join(',')}}`] : [];
    const result = await t.db.ownerQuery(`SELECT count(*) FROM retail.${table}${filter}`, params);
    counts[table] = Number(result.rows[0]![0]);
  }
  return counts;
}

async function visibleCounts(t: TestDatabase, identity: Identity): Promise<Record<string, number>> {
  return t.db.withIdentity(identity, async (session) => {
    const counts: Record<string, number> = {};
    for (const table of RETAIL_TABLES) {
      const result = await session.query(`SELECT count(*) FROM retail.${table}`);
      counts[table] = Number(result.rows[0]![0]);
    }
    return counts;
  });
}

const MANAGER_IDS = [HEAD_OFFICE_USER_ID, ...STORES.map((s) => s.managerId), ...REGIONAL_MANAGERS.map((m) => m.managerId)];

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`row level security (${kind})`, { skip }, () => {
    let t: TestDatabase;
    before(async () => {
      t = await createTestDatabase(kind);
    });
    after(async () => t?.cleanup());

    test('the seeded data has rows in every table for every store', async () => {
      for (const store of STORES) {
        const truth = await groundTruth(t, [store.storeId]);
        for (const [table] of STORE_SCOPED_TABLES) assert.ok(truth[table]! > 0, `${table} has rows for ${store.name}`);
      }
      const all = await groundTruth(t, 'all');
      for (const table of RETAIL_TABLES.filter((name) => name !== 'product_description_embeddings')) {
        assert.ok(all[table]! > 0, `${table} has rows`);
      }
    });

    for (const managerId of MANAGER_IDS) {
      test(`identity ${managerId} sees exactly its stores' rows in every table`, async () => {
        const identity = await t.db.resolveIdentity(managerId);
        const expected = await groundTruth(t, identity.storeIds);
        assert.deepEqual(await visibleCounts(t, identity), expected);
      });
    }

    test('identities resolve to the right roles and stores', async () => {
      const headOffice = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
      assert.equal(headOffice.role, 'head_office');
      assert.equal(headOffice.storeIds, 'all');
      const seattle = await t.db.resolveIdentity(STORES[0]!.managerId.toUpperCase());
      assert.deepEqual(seattle, { userId: STORES[0]!.managerId, role: 'store_manager', storeIds: [1], pii: false });
      assert.equal(headOffice.pii, true, 'head office reads personal data by default');
      const pugetSound = await t.db.resolveIdentity(REGIONAL_MANAGERS[0]!.managerId);
      assert.equal(pugetSound.role, 'regional_manager');
      assert.deepEqual(pugetSound.storeIds, STORES.filter((s) => s.region === 'Puget Sound').map((s) => s.storeId));
      const eastAndOnline = await t.db.resolveIdentity(REGIONAL_MANAGERS[1]!.managerId);
      assert.deepEqual(eastAndOnline.storeIds, [4, 8]);
    });

    test('a missing, malformed or unknown identity is refused, never treated as head office', async () => {
      for (const bad of [undefined, null, '', '   ', 'not-a-uuid', "' OR 1=1 --", '11111111-2222-3333-4444-555555555555']) {
        await assert.rejects(t.db.resolveIdentity(bad), UnknownIdentityError, `identity ${String(bad)}`);
      }
    });

    test('an identity with no stores sees no per-store rows, and reference tables only with a valid context', async () => {
      const nobody: Identity = { userId: '11111111-2222-3333-4444-555555555555', role: 'store_manager', storeIds: [] };
      const counts = await visibleCounts(t, nobody);
      for (const [table] of STORE_SCOPED_TABLES) assert.equal(counts[table], 0, table);
      assert.ok(counts.products! > 0, 'a signed context still sees the shared catalog');
    });

    test('without the signed context the query role sees nothing at all', async () => {
      const seattle = await t.db.resolveIdentity(STORES[0]!.managerId);
      const result = await t.db.withIdentity(seattle, (s) =>
        s.query(`SELECT set_config('zava.ctx', '', true) AS cleared, (SELECT count(*) FROM retail.orders) AS orders`),
      );
      // set_config runs before the scalar subquery is evaluated, so the subquery runs with no context.
      assert.equal(result.rows[0]![1], 0);
    });

    test('a forged context (bad signature) admits nothing', async () => {
      const seattle = await t.db.resolveIdentity(STORES[0]!.managerId);
      const forged = await t.db.withIdentity(seattle, async (s) => {
        const own = String((await s.query(`SELECT current_setting('zava.ctx')`)).rows[0]![0]);
        const parts = own.split('.');
        parts[3] = '*'; // widen the scope to every store, keeping the old signature
        const widened = parts.join('.');
        const wrongKey = signContext(Buffer.alloc(32, 7), { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' }, Number(parts[1]));
        const counts: number[] = [];
        for (const token of [widened, wrongKey]) {
          const r = await s.query(`SELECT set_config('zava.ctx', $1, true), (SELECT count(*) FROM retail.orders)`, [token]);
          counts.push(Number(r.rows[0]![1]));
        }
        return counts;
      });
      assert.deepEqual(forged, [0, 0]);
    });

    test('a validly signed context bound to another backend, or expired, admits nothing', async () => {
      const key = Buffer.from(String((await t.db.ownerQuery(`SELECT encode(hmac_key, 'hex') FROM zava_private.context_key`)).rows[0]![0]), 'hex');
      const headOffice = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
      const seattle = await t.db.resolveIdentity(STORES[0]!.managerId);
      const result = await t.db.withIdentity(seattle, async (s) => {
        const pid = Number((await s.query('SELECT pg_backend_pid()')).rows[0]![0]);
        const otherBackend = signContext(key, headOffice, pid + 1);
        const expired = signContext(key, headOffice, pid, Date.now() - 60 * 60_000);
        // Control: the same key, this backend, not expired, is accepted — so the two refusals above are real.
        const valid = signContext(key, headOffice, pid);
        const counts: number[] = [];
        for (const token of [otherBackend, expired, valid]) {
          const r = await s.query(`SELECT set_config('zava.ctx', $1, true), (SELECT count(*) FROM retail.orders)`, [token]);
          counts.push(Number(r.rows[0]![1]));
        }
        return counts;
      });
      const total = Number((await t.db.ownerQuery('SELECT count(*) FROM retail.orders')).rows[0]![0]);
      assert.deepEqual(result, [0, 0, total]);
    });

    test('the signed payload is an HMAC-SHA256 the database recomputes', () => {
      const key = Buffer.alloc(32, 1);
      const token = signContext(key, { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' }, 42, 1_000);
      const parts = token.split('.');
      assert.equal(parts.length, 6);
      assert.equal(parts[5], createHmac('sha256', key).update(parts.slice(0, 5).join('.')).digest('hex'));
    });
  });
}

// The context functions are PARALLEL RESTRICTED (migration 7): PostgreSQL may plan tool queries in parallel, the
// functions run only in the leader, and the backend-pid check still holds. Proved on a database where every plan
// that can be parallel is (no setup or tuple cost, no minimum table size).
describe('row level security under parallel plans (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  let parallel: Awaited<ReturnType<typeof openDatabase>>;
  before(async () => {
    t = await createTestDatabase('server');
    const name = new URL(t.config.databaseUrl!).pathname.slice(1);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(
        `ALTER DATABASE ${name} SET parallel_setup_cost = 0; ALTER DATABASE ${name} SET parallel_tuple_cost = 0;
         ALTER DATABASE ${name} SET min_parallel_table_scan_size = 0; ALTER DATABASE ${name} SET max_parallel_workers_per_gather = 2`,
      );
    } finally {
      await admin.end();
    }
    // A fresh pool: its connections start with the database's new settings.
    parallel = await openDatabase(t.config);
    await parallel.prepare();
  });
  after(async () => {
    await parallel?.close();
    await t?.cleanup();
  });

  test('the plans of the matrix queries are parallel, with the context evaluated in the leader', async () => {
    const key = Buffer.from(String((await t.db.ownerQuery(`SELECT encode(hmac_key, 'hex') FROM zava_private.context_key`)).rows[0]![0]), 'hex');
    const seattle = await t.db.resolveIdentity(STORES[0]!.managerId);
    const client = new pg.Client({ connectionString: queryRoleUrl(t.config), options: '-c search_path=pg_catalog,retail' });
    await client.connect();
    try {
      for (const table of ['orders', 'order_items', 'customers']) {
        const truth = await groundTruth(t, seattle.storeIds);
        let launched = 0;
        // Parallel workers are a cluster-wide resource other sessions may hold: retry a few times for a launch.
        for (let attempt = 0; attempt < 5 && launched === 0; attempt++) {
          await client.query('BEGIN READ ONLY');
          await client.query(`SELECT set_config('zava.ctx', $1, true)`, [signContext(key, seattle, (client as unknown as { processID: number }).processID)]);
          const sql = boundedSelect(`SELECT count(*) FROM retail.${table}`, { maxRows: 10, maxRowBytes: 1000, maxBytes: 1000 });
          const plan = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`)).rows[0]['QUERY PLAN'] as unknown;
          const text = JSON.stringify(plan);
          assert.match(text, /"Node Type":"Gather/, `${table}: a parallel plan`);
          launched = Number(/"Workers Launched":(\d+)/.exec(text)?.[1] ?? 0);
          const counted = await client.query({ text: sql, rowMode: 'array' });
          await client.query('ROLLBACK');
          assert.equal(Number(counted.rows[0]![0]), truth[table], `${table}: the parallel plan counts exactly the visible rows`);
        }
        assert.ok(launched > 0, `${table}: parallel workers ran`);
      }
    } finally {
      await client.end();
    }
  });

  for (const managerId of [HEAD_OFFICE_USER_ID, STORES[0]!.managerId, STORES[3]!.managerId, REGIONAL_MANAGERS[0]!.managerId]) {
    test(`identity ${managerId} sees exactly its stores' rows under parallel plans`, async () => {
      const identity = await parallel.resolveIdentity(managerId);
      const counts = await parallel.withIdentity(identity, async (session) => {
        const result: Record<string, number> = {};
        for (const table of RETAIL_TABLES) result[table] = Number((await session.query(`SELECT count(*) FROM retail.${table}`)).rows[0]![0]);
        return result;
      });
      assert.deepEqual(counts, await groundTruth(t, identity.storeIds));
    });
  }
});
