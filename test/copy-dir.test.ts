// The data directory copy behind the embedded readers' snapshots (src/db/embedded/copy-dir.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { copyDirectory } from '../src/db/embedded/copy-dir.js';

test('copies nested files with their modes and links as links, leaves out the skipped paths, owner-only directories', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'zava-copy-'));
  try {
    const source = path.join(root, 'source');
    await mkdir(path.join(source, 'base', '5', 'deep'), { recursive: true });
    await mkdir(path.join(source, 'base', 'pgsql_tmp'), { recursive: true });
    await writeFile(path.join(source, 'PG_VERSION'), '17\n');
    await writeFile(path.join(source, 'base', '5', '1259'), Buffer.alloc(3 * 8192, 7));
    await writeFile(path.join(source, 'base', '5', 'deep', 'empty'), '');
    await writeFile(path.join(source, 'base', 'pgsql_tmp', 'pgsql_tmp1.0'), 'spill');
    await writeFile(path.join(source, 'postmaster.pid'), '42');
    await chmod(path.join(source, 'PG_VERSION'), 0o600);
    await symlink('base/5/1259', path.join(source, 'link'));
    const files = Array.from({ length: 300 }, (_, i) => path.join(source, 'base', '5', `file-${i}`));
    await Promise.all(files.map((file, i) => writeFile(file, `content ${i}`)));

    const target = path.join(root, 'copy');
    await copyDirectory(source, target, new Set([path.join(source, 'base', 'pgsql_tmp'), path.join(source, 'postmaster.pid')]));

    assert.equal(await readFile(path.join(target, 'PG_VERSION'), 'utf8'), '17\n');
    assert.equal((await stat(path.join(target, 'PG_VERSION'))).mode & 0o777, 0o600);
    assert.deepEqual(await readFile(path.join(target, 'base', '5', '1259')), Buffer.alloc(3 * 8192, 7));
    assert.equal(await readFile(path.join(target, 'base', '5', 'deep', 'empty'), 'utf8'), '');
    for (const [i, file] of files.entries()) assert.equal(await readFile(file.replace(source, target), 'utf8'), `content ${i}`);
    assert.equal(await readlink(path.join(target, 'link')), 'base/5/1259');
    await assert.rejects(stat(path.join(target, 'base', 'pgsql_tmp')), { code: 'ENOENT' });
    await assert.rejects(stat(path.join(target, 'postmaster.pid')), { code: 'ENOENT' });
    assert.equal((await stat(target)).mode & 0o777, 0o700);
    // The copy is independent of its source.
    await writeFile(path.join(source, 'PG_VERSION'), 'changed');
    assert.equal(await readFile(path.join(target, 'PG_VERSION'), 'utf8'), '17\n');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a missing source is an error', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'zava-copy-'));
  try {
    await assert.rejects(copyDirectory(path.join(root, 'nothing'), path.join(root, 'copy')), { code: 'ENOENT' });
    await assert.rejects(stat(path.join(root, 'copy')), { code: 'ENOENT' }, 'nothing is created');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
