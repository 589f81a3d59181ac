// One process at a time on an embedded data directory: a second opener (in this process, a CLI command, a
// second server) is refused with the holder's pid and changes nothing; a lock left by a dead process — even one
// killed with SIGKILL in the middle of serving — is taken over, and the data is still there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { openDatabase } from '../src/db/open.js';
import { DatabaseUnavailableError } from '../src/infra/errors.js';
import type { ManagedDatabase } from '../src/db/types.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { runCli } from './support/cli.js';
import { startHttpServer } from './mcp-harness.js';

async function orderCount(db: ManagedDatabase): Promise<number> {
  return Number((await db.ownerQuery('SELECT count(*) FROM retail.orders')).rows[0]![0]);
}

/** The pid of a process that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('embedded data directory lock', () => {
  let t: TestDatabase;
  let orders: number;
  let lockPath: string;

  before(async () => {
    t = await createTestDatabase('embedded', { customers: 40 });
    orders = await orderCount(t.db);
    lockPath = `${t.config.dataDir}.lock`;
  });
  after(async () => t?.cleanup());

  test('the holder is written next to the directory', () => {
    const holder = JSON.parse(readFileSync(lockPath, 'utf8')) as { pid: number; host: string };
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.host, hostname());
  });

  test('a second open in the same process is refused and the first handle keeps working', async () => {
    await assert.rejects(openDatabase(t.config), (error: unknown) => {
      assert.ok(error instanceof DatabaseUnavailableError);
      assert.match(error.message, new RegExp(`is in use by process ${process.pid} on `));
      assert.match(error.message, /choose another --data-dir/);
      return true;
    });
    assert.equal(await orderCount(t.db), orders);
  });

  test('a CLI command on a held directory exits with the reason and changes nothing', async () => {
    const refused = await runCli(['db', 'seed', ...t.flags, '--customers', '10', '--replace']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`is in use by process ${process.pid}`));
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(await orderCount(t.db), orders);
  });

  test('closing releases the lock; a lock left by a dead process is taken over', async () => {
    await t.db.close();
    assert.equal(existsSync(lockPath), false, 'the lock file is removed on close');

    const dead = deadPid();
    writeFileSync(lockPath, `${JSON.stringify({ pid: dead, host: hostname(), since: '2020-01-01T00:00:00.000Z' })}\n`);
    const reopened = await openDatabase(t.config);
    try {
      assert.equal((JSON.parse(readFileSync(lockPath, 'utf8')) as { pid: number }).pid, process.pid);
      assert.equal(await orderCount(reopened), orders);
    } finally {
      await reopened.close();
    }
  });

  test('a server killed with SIGKILL leaves a lock that the next process takes over, with the data intact', async () => {
    const server = await startHttpServer(t.flags);
    try {
      const second = await runCli(['db', 'migrate', ...t.flags]);
      assert.notEqual(second.code, 0, 'a second process is refused while the server runs');
      assert.match(second.stderr, new RegExp(`is in use by process ${server.process.pid}`));
    } finally {
      assert.equal(await server.stop('SIGKILL'), null);
    }
    assert.equal(existsSync(lockPath), true, 'SIGKILL leaves the lock file behind');
    const after = await runCli(['db', 'migrate', ...t.flags]);
    assert.equal(after.code, 0, after.stderr);
    const db = await openDatabase(t.config);
    try {
      assert.equal(await orderCount(db), orders);
    } finally {
      await db.close();
    }
  });
});
