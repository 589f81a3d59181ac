// Tool statements kept prepared per connection (server backend, src/db/server/pipeline.ts): the same text runs as a
// prepared statement on a connection that ran it before, and nothing about identity, errors or memory changes.
// ZAVA_POOL_MAX=1 puts every call on one connection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { MAX_CACHED_STATEMENT_CHARS, STATEMENT_CACHE_CHARS, STATEMENT_CACHE_SIZE } from '../src/db/server/pipeline.js';
import type { Identity, RowSet } from '../src/db/types.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';

describe('prepared tool statements (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  let headOffice: Identity;
  let seattle: Identity;
  let bellevue: Identity;

  before(async () => {
    t = await createTestDatabase('server', { env: { ZAVA_POOL_MAX: '1' } });
    headOffice = await t.db.resolveIdentity(HEAD_OFFICE_USER_ID);
    seattle = await t.db.resolveIdentity(STORES[0]!.managerId);
    bellevue = await t.db.resolveIdentity(STORES[2]!.managerId);
  });
  after(async () => {
    await t?.cleanup();
  });

  const run = (identity: Identity, sql: string, params: readonly (string | number)[] = []): Promise<RowSet> =>
    t.db.withIdentity(identity, (s) => s.query(sql, params));

  /** The tool statements prepared on the (one) query connection, as PostgreSQL lists them. */
  async function prepared(): Promise<{ name: string; statement: string }[]> {
    const rows = await run(headOffice, `SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'zava\\_q%'`);
    return rows.rows.map((r) => ({ name: String(r[0]), statement: String(r[1]) }));
  }

  test('the same text is prepared once and reused; each call still sees only its own rows', async () => {
    const sql = `SELECT store_id, count(*) FROM retail.orders GROUP BY 1 ORDER BY 1 /* reuse */`;
    const truth = await t.db.ownerQuery(`SELECT store_id, count(*) FROM retail.orders GROUP BY 1 ORDER BY 1`);
    const all = truth.rows.map((r) => [Number(r[0]), Number(r[1])]);
    const own = (identity: Identity) => all.filter(([store]) => identity.storeIds === 'all' || identity.storeIds.includes(store!));
    // Past PostgreSQL's five custom plans, with the role (every-store vs query role) and the context changing
    // between calls on the one connection.
    for (let round = 0; round < 8; round++) {
      for (const identity of [headOffice, seattle, bellevue, seattle, headOffice]) {
        const rows = await run(identity, sql);
        assert.deepEqual(rows.rows.map((r) => [Number(r[0]), Number(r[1])]), own(identity), `round ${round}, ${identity.userId}`);
      }
    }
    const statements = (await prepared()).filter((p) => p.statement.includes('/* reuse */'));
    assert.equal(statements.length, 1, 'one prepared statement for the text');
    // A context that does not verify sees nothing through the reused statement either.
    const stranger: Identity = { userId: '00000000-0000-0000-0000-00000000beef', role: 'store_manager', storeIds: [] };
    assert.equal((await run(stranger, sql)).rowCount, 0);
  });

  test('statements with parameters, and texts over the size limit, are not prepared', async () => {
    const before = (await prepared()).length;
    await run(seattle, `SELECT count(*) FROM retail.products WHERE product_id < $1 /* with a parameter */`, [50]);
    const long = `SELECT count(*) FROM retail.products WHERE product_name <> '${'x'.repeat(MAX_CACHED_STATEMENT_CHARS)}'`;
    await run(seattle, long);
    await run(seattle, long);
    const now = await prepared();
    assert.ok(!now.some((p) => p.statement.includes('/* with a parameter */') || p.statement.includes('xxxx')));
    assert.ok(now.length <= before + 1, 'only the listing query itself may have been added');
  });

  test('what a connection keeps is bounded by count and by text length, least recently used out first', async () => {
    for (let i = 0; i < STATEMENT_CACHE_SIZE + 20; i++) await run(seattle, `SELECT ${i} AS n /* bound ${i} */`);
    let now = await prepared();
    assert.ok(now.length <= STATEMENT_CACHE_SIZE, `${now.length} statements`);
    assert.ok(!now.some((p) => p.statement.includes('/* bound 0 */')), 'the oldest was closed');
    assert.ok(now.some((p) => p.statement.includes(`/* bound ${STATEMENT_CACHE_SIZE + 19} */`)), 'the newest is kept');
    const padding = 'y'.repeat(MAX_CACHED_STATEMENT_CHARS - 500);
    for (let i = 0; i < 8; i++) await run(seattle, `SELECT '${padding}' AS p /* long ${i} */`);
    now = await prepared();
    const chars = now.reduce((sum, p) => sum + p.statement.length, 0);
    assert.ok(chars <= STATEMENT_CACHE_CHARS + 1_000, `${chars} characters prepared`);
    assert.ok(now.some((p) => p.statement.includes('/* long 7 */')));
    assert.ok(!now.some((p) => p.statement.includes('/* long 0 */')));
  });

  test('a failing statement is closed; a syntax error leaves the connection usable; the same text fails the same way', async () => {
    const failing = `SELECT 1 / (product_id - product_id) FROM retail.products /* failing */`;
    for (let i = 0; i < 3; i++) await assert.rejects(run(seattle, failing), /division by zero/);
    const broken = `SELEC 1 /* broken */`;
    for (let i = 0; i < 2; i++) await assert.rejects(run(seattle, broken), /syntax error/);
    const ok = await run(seattle, `SELECT 42 AS answer /* after errors */`);
    assert.equal(ok.rows[0]![0], 42);
    const now = await prepared();
    assert.ok(!now.some((p) => p.statement.includes('/* failing */') || p.statement.includes('/* broken */')));
  });

  test('a table that changed shape after its statement was prepared: the call runs again, unprepared', async () => {
    const sql = `SELECT * FROM retail.categories ORDER BY category_id LIMIT 2 /* shape */`;
    const first = await run(headOffice, sql);
    await run(headOffice, sql);
    await t.db.ownerQuery(`ALTER TABLE retail.categories ADD COLUMN zava_test_extra integer DEFAULT 7`);
    try {
      const again = await run(headOffice, sql);
      assert.deepEqual(again.columns.map((c) => c.name), [...first.columns.map((c) => c.name), 'zava_test_extra']);
      assert.equal(again.rows[0]!.at(-1), 7);
      const once = await run(headOffice, sql);
      assert.equal(once.rows.length, 2);
    } finally {
      await t.db.ownerQuery(`ALTER TABLE retail.categories DROP COLUMN zava_test_extra`);
    }
    const back = await run(headOffice, sql);
    assert.deepEqual(back.columns.map((c) => c.name), first.columns.map((c) => c.name));
  });
});
