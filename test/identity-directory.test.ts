// The identity directory on its own (issue 9): a stuck or failing refresh never holds callers up for longer than
// its time limit, the previous directory keeps serving, and the failure is logged once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { IdentityDirectory } from '../src/db/identity.js';
import type { RowSet } from '../src/db/types.js';
import { DatabaseUnavailableError } from '../src/infra/errors.js';

const SEATTLE = STORES[0]!;

function rows(values: unknown[][]): RowSet {
  return { columns: [], rows: values, rowCount: values.length, truncated: false };
}

/** An owner query that answers from a tiny directory, or hangs / fails when told to. */
function fakeOwner(): { query: (sql: string) => Promise<RowSet>; mode: 'ok' | 'hang' | 'fail' } {
  const owner = {
    mode: 'ok' as 'ok' | 'hang' | 'fail',
    query: (sql: string): Promise<RowSet> => {
      if (owner.mode === 'hang') return new Promise(() => undefined);
      if (owner.mode === 'fail') return Promise.reject(new Error('connection lost'));
      return Promise.resolve(sql.includes('retail.stores') ? rows([[SEATTLE.storeId, SEATTLE.managerId, SEATTLE.region]]) : rows([]));
    },
  };
  return owner;
}

test('a first load that hangs fails within its time limit with a clear error', async () => {
  const owner = fakeOwner();
  owner.mode = 'hang';
  const directory = new IdentityDirectory((sql) => owner.query(sql), { timeoutMs: 100, firstLoadTimeoutMs: 300 });
  const started = Date.now();
  await assert.rejects(directory.resolve(HEAD_OFFICE_USER_ID), DatabaseUnavailableError);
  assert.ok(Date.now() - started < 2_000);
});

test('a first load slower than the refresh limit is waited for (nothing else could serve), within its own limit', async () => {
  const owner = fakeOwner();
  const slow = (sql: string) => new Promise<void>((resolve) => setTimeout(resolve, 250)).then(() => owner.query(sql));
  const directory = new IdentityDirectory(slow, { timeoutMs: 100, firstLoadTimeoutMs: 2_000 });
  assert.deepEqual((await directory.resolve(SEATTLE.managerId)).storeIds, [SEATTLE.storeId]);
  // Once loaded, a refresh as slow (two reads of 250 ms) gives up at the shorter limit and the loaded directory keeps serving.
  const started = Date.now();
  await directory.refresh();
  assert.ok(Date.now() - started < 450, 'a refresh gives up at its own limit, before the 500 ms load ends');
  assert.deepEqual((await directory.resolve(SEATTLE.managerId)).storeIds, [SEATTLE.storeId]);
});

test('a refresh that hangs or fails keeps the previous directory serving, and is logged once', async () => {
  const owner = fakeOwner();
  const warnings: string[] = [];
  const directory = new IdentityDirectory((sql) => owner.query(sql), { timeoutMs: 100, warn: (message) => warnings.push(message) });
  assert.deepEqual((await directory.resolve(SEATTLE.managerId)).storeIds, [SEATTLE.storeId]);
  owner.mode = 'hang';
  const started = Date.now();
  await directory.refresh();
  assert.ok(Date.now() - started < 2_000, 'a stuck refresh gives up at its time limit');
  owner.mode = 'fail';
  await directory.refresh();
  assert.deepEqual((await directory.resolve(SEATTLE.managerId)).storeIds, [SEATTLE.storeId], 'the previous directory still answers');
  assert.equal(warnings.length, 1, 'logged once while failing');
  assert.match(warnings[0]!, /still serving the previous one/);
  owner.mode = 'ok';
  await directory.refresh();
  owner.mode = 'fail';
  await directory.refresh();
  assert.equal(warnings.length, 2, 'a new run of failures after a success is logged again');
});
