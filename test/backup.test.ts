// `zava-mcp db backup` and `db restore`, run as an operator runs them (spawned commands), on both backends:
// a backup restores to the same table checksums after the data changed, a database that holds data is replaced
// only with --replace, a damaged backup changes nothing, and a restored database serves identity-scoped reads
// (its signed-context key came back with it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/infra/config.js';
import { openDatabase } from '../src/db/open.js';
import { prepareSchema } from '../src/cli/migrate.js';
import { STORES } from '../src/data/stores.js';
import type { ManagedDatabase } from '../src/db/types.js';
import { backendsUnderTest, createServerDatabaseUrl, createTestDatabase, type TestDatabase } from './support/databases.js';
import { runCli as run } from './support/cli.js';
import { databaseChecksum } from './mcp-harness.js';

const SEATTLE = STORES[0]!;

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`db backup and restore on the ${kind} backend`, { skip }, () => {
    let t: TestDatabase;
    let dir: string;
    /** Opens the database the commands work on, for a look as its owner, and closes it again (PGlite: one process). */
    const inspect = async <T>(work: (db: ManagedDatabase) => Promise<T>, flags = t.flags): Promise<T> => {
      const config = flags[0] === '--data-dir' ? loadConfig({ dataDir: flags[1] }, {}) : loadConfig({ databaseUrl: flags[1] }, {});
      const db = kind === 'embedded' ? await openDatabase(config) : t.db;
      try {
        if (kind === 'embedded') await prepareSchema(db, config);
        return await work(db);
      } finally {
        if (kind === 'embedded') await db.close();
      }
    };
    const checksum = (flags = t.flags) => inspect((db) => databaseChecksum(db), flags);
    /**
     * One backup of the seeded database, made by the first test (which asserts on the command's output) and
     * reused by the others (a backup spawns a process that reads every table): its file, and the checksums the data
     * had when it was taken.
     */
    let taken: Promise<{ file: string; result: Awaited<ReturnType<typeof run>>; checksums: Record<string, string> }> | undefined;
    const backupOnce = () =>
      (taken ??= (async () => {
        const checksums = await checksum();
        const file = path.join(dir, 'zava.backup');
        return { file, result: await run(['db', 'backup', file, ...t.flags]), checksums };
      })());

    before(async () => {
      t = await createTestDatabase(kind, { customers: 40, open: false }); // embedded: the commands open the directory themselves
      dir = await mkdtemp(path.join(tmpdir(), 'zava-backup-'));
    });
    after(async () => {
      await t?.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('a backup restores the data as it was; without --replace a database with data is left alone', { timeout: 240_000 }, async () => {
      const { file, result: backup, checksums: original } = await backupOnce();
      assert.equal(backup.code, 0, backup.stderr);
      assert.match(backup.stderr, /backed up .* to .*zava\.backup \(\d/);
      assert.ok(existsSync(file) && !existsSync(`${file}.partial`));

      // The data changes after the backup.
      await inspect(async (db) => {
        await db.withAdminTransaction(async (session) => {
          await session.exec(`DELETE FROM retail.order_items WHERE order_id IN (SELECT order_id FROM retail.orders WHERE store_id = 1)`);
          await session.exec(`UPDATE retail.products SET base_price = base_price + 1`);
        });
      });
      const changed = await checksum();
      assert.notDeepEqual(changed, original);

      const refused = await run(['db', 'restore', file, ...t.flags]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /already holds .*--replace.*nothing was changed/);
      assert.deepEqual(await checksum(), changed, 'nothing changed without --replace');

      const restored = await run(['db', 'restore', file, '--replace', ...t.flags]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(await checksum(), original, 'every table as it was at the backup');

      // The restored database serves identity-scoped reads: RLS and its signing key came back with the data.
      const seen = await inspect(async (db) => {
        const identity = await db.resolveIdentity(SEATTLE.managerId);
        return db.withIdentity(identity, (session) => session.query('SELECT DISTINCT store_id FROM retail.orders'));
      });
      assert.deepEqual(seen.rows.map((r) => Number(r[0])), [1]);
    });

    test('a damaged or foreign backup is refused and changes nothing', { timeout: 240_000 }, async () => {
      const { file, result } = await backupOnce();
      assert.equal(result.code, 0);
      const before_ = await checksum();
      const bytes = await readFile(file);
      const cut = path.join(dir, 'cut.backup');
      await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
      const foreign = path.join(dir, 'foreign.backup');
      await writeFile(foreign, 'not a backup at all\n');
      for (const bad of [cut, foreign]) {
        const result = await run(['db', 'restore', bad, '--replace', ...t.flags]);
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /^zava-mcp: /);
        assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
        assert.deepEqual(await checksum(), before_, `${path.basename(bad)}: the database is unchanged`);
      }
      const missing = await run(['db', 'restore', path.join(dir, 'nope.backup'), ...t.flags]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no backup at .*nope\.backup/);
      const noFile = await run(['db', 'backup', ...t.flags]);
      assert.equal(noFile.code, 2);
      assert.match(noFile.stderr, /db backup needs exactly one file/);
    });

    test('a backup restores into a new, empty database without --replace', { timeout: 240_000 }, async () => {
      const { file, result, checksums: original } = await backupOnce();
      assert.equal(result.code, 0);
      if (kind === 'embedded') {
        const target = path.join(dir, 'new-pglite');
        const restored = await run(['db', 'restore', file, '--data-dir', target]);
        assert.equal(restored.code, 0, restored.stderr);
        assert.deepEqual(await checksum(['--data-dir', target]), original);
      } else {
        const { url, drop } = await createServerDatabaseUrl();
        try {
          const restored = await run(['db', 'restore', file, '--database-url', url]);
          assert.equal(restored.code, 0, restored.stderr);
          const db = await openDatabase(loadConfig({ databaseUrl: url }, {}));
          try {
            await prepareSchema(db, loadConfig({ databaseUrl: url }, {}));
            assert.deepEqual(await databaseChecksum(db), original);
          } finally {
            await db.close();
          }
        } finally {
          await drop();
        }
      }
    });
  });
}
