// The embedded backend's readers are copies of a snapshot of the writer's directory: they hold the one database
// PGlite connects to and none of the templates, and a read that follows a committed write sees it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { STORES } from '../src/data/stores.js';
import { EmbeddedDatabase } from '../src/db/embedded/backend.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

const SEATTLE = STORES[0]!;

describe('embedded readers', () => {
  let t: TestDatabase;
  before(async () => {
    t = await createTestDatabase('embedded');
  });
  after(async () => {
    await t?.cleanup();
  });

  test('a reader copy holds only the database it connects to; reads after a write see the write', async () => {
    const db = t.db;
    assert.ok(db instanceof EmbeddedDatabase);
    const seattle = await db.resolveIdentity(SEATTLE.managerId);
    const productName = () => db.withIdentity(seattle, async (session) => (await session.query('SELECT product_name FROM retail.products WHERE product_id = 1')).rows[0]![0]);
    const name = await productName();
    assert.equal(typeof name, 'string');

    // The writer's directory has every database (template0, template1, postgres); a reader's copy only postgres.
    const [oid] = (await db.ownerQuery('SELECT oid::text FROM pg_database WHERE datname = current_database()')).rows[0]! as [string];
    const all = (await db.ownerQuery('SELECT count(*)::int FROM pg_database')).rows[0]![0] as number;
    assert.ok(all >= 3);
    assert.equal(readdirSync(path.join(t.flags[1]!, 'base')).filter((name) => /^\d+$/.test(name)).length, all);
    const { readersRoot } = await db.enginesForTests();
    const copies = readdirSync(readersRoot).filter((name) => name.startsWith('reader-') || name.startsWith('snapshot-'));
    assert.ok(copies.length >= 2, `a snapshot and a reader copy in ${readdirSync(readersRoot).join(', ')}`);
    for (const copy of copies) {
      assert.deepEqual(readdirSync(path.join(readersRoot, copy, 'base')).filter((name) => /^\d+$/.test(name)), [oid], copy);
    }

    // A committed write reaches the next read through a new snapshot, which skips the templates as well.
    const renamed = `${String(name)} (renamed)`;
    await db.withAdminTransaction((session) => session.query('UPDATE retail.products SET product_name = $1 WHERE product_id = 1', [renamed]));
    assert.equal(await productName(), renamed);
    const catalogRows = await db.withIdentity(seattle, async (session) => (await session.query('SELECT count(*)::int FROM pg_database')).rows[0]![0]);
    assert.equal(catalogRows, all, "the readers' catalog still lists every database");
  });
});
