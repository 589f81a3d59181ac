// `zava-mcp db backup <file>` and `zava-mcp db restore <file> [--replace]`, for both backends.
//
// PostgreSQL server: the PostgreSQL client tools, in their custom archive format (pg_dump -Fc, pg_restore), so a
// backup restores with the standard tools too. The restore runs in one transaction (--single-transaction): an
// archive that fails half-way leaves the database as it was. The query roles are cluster-wide objects a dump does
// not carry, so they are made (as the migrations make them) before the dump's grants are replayed.
//
// Embedded: PGlite's own data-directory dump (a gzipped tar). A restore unpacks into a new directory beside the
// data directory, opens it and checks it is a zava-mcp database, and only then swaps it in by renaming, so an
// interrupted or failed restore leaves the previous data directory in place. Both commands hold the data
// directory's lock: a server running on it must be stopped first (PGlite admits one process).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { Config } from '../infra/config.js';
import { DataLoadError } from '../infra/errors.js';
import { DataDirectoryLock } from '../db/embedded/dir-lock.js';
import { ensureQueryRoles } from '../db/migrations.js';
import type { ManagedDatabase } from '../db/types.js';
import { withDatabase } from './db.js';

export interface BackupReport {
  readonly file: string;
  readonly bytes: number;
  readonly ms: number;
}

/** `db backup <file>`: writes the whole database to `file` (replaced only once the new backup is complete). */
export async function runBackup(config: Config, file: string, out: NodeJS.WritableStream = process.stderr): Promise<BackupReport> {
  const started = Date.now();
  const target = path.resolve(file);
  const draft = `${target}.${process.pid}.partial`;
  try {
    if (config.databaseUrl) await dumpServer(config, draft);
    else await dumpEmbedded(config.dataDir, draft);
    await rename(draft, target);
  } finally {
    await rm(draft, { force: true });
  }
  const bytes = (await stat(target)).size;
  const report = { file: target, bytes, ms: Date.now() - started };
  out.write(`backed up ${config.databaseUrl ? 'the database' : config.dataDir} to ${target} (${formatBytes(bytes)}, ${(report.ms / 1000).toFixed(1)} s)\n`);
  return report;
}

/** `db restore <file> [--replace]`: replaces the database with the backup, all or nothing. */
export async function runRestore(config: Config, file: string, options: { replace?: boolean }, out: NodeJS.WritableStream = process.stderr): Promise<void> {
  const started = Date.now();
  const source = path.resolve(file);
  if (!existsSync(source)) throw new DataLoadError(`no backup at ${source}`);
  if (config.databaseUrl) await restoreServer(config, source, options.replace === true);
  else await restoreEmbedded(config.dataDir, source, options.replace === true);
  out.write(`restored ${config.databaseUrl ? 'the database' : config.dataDir} from ${source} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

// ---- PostgreSQL server -------------------------------------------------------------------------------------

/** Runs a PostgreSQL client tool; resolves with its stdout, rejects with a message naming the tool. */
function runTool(tool: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new DataLoadError(`${tool} was not found: install the PostgreSQL client tools (Debian: apt-get install postgresql-client) or put them on PATH`)
          : new DataLoadError(`${tool} could not run: ${error.message}`),
      );
    });
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new DataLoadError(`${tool} failed (exit ${code}): ${redact(stderr.trim()) || 'no message'}`));
    });
  });
}

/** pg_dump refuses a newer server; say so plainly, with both versions, before it runs. */
async function checkToolVersion(tool: string, db: ManagedDatabase): Promise<void> {
  const version = await runTool(tool, ['--version']);
  const major = /\(PostgreSQL\)\s+(\d+)/.exec(version)?.[1];
  if (!major) throw new DataLoadError(`${tool} --version printed something unexpected: ${version.trim()}`);
  const server = Math.floor(Number((await db.ownerQuery('SHOW server_version_num')).rows[0]?.[0]) / 10_000);
  if (Number(major) < server) {
    throw new DataLoadError(`${tool} is version ${major} but the server runs PostgreSQL ${server}: install the client tools of version ${server} or newer`);
  }
}

async function dumpServer(config: Config, file: string): Promise<void> {
  await withDatabase(config, (db) => checkToolVersion('pg_dump', db));
  await runTool('pg_dump', ['--format=custom', '--no-owner', `--file=${file}`, `--dbname=${config.databaseUrl!}`]);
}

async function restoreServer(config: Config, file: string, replace: boolean): Promise<void> {
  const url = config.databaseUrl!;
  await withDatabase(config, async (db) => {
    await checkToolVersion('pg_restore', db);
    // A file that is not an archive is refused before anything changes.
    await runTool('pg_restore', ['--list', file]).catch((error: Error) => {
      throw new DataLoadError(`${file} is not a zava-mcp server backup (a pg_dump custom-format archive): ${error.message}`);
    });
    const held = await db.ownerQuery(`SELECT count(*)::int FROM pg_namespace WHERE nspname IN ('retail', 'zava_meta', 'zava_private')`);
    if (Number(held.rows[0]?.[0]) > 0 && !replace) {
      throw new DataLoadError('the database already holds a zava-mcp schema; pass --replace to replace it with the backup (nothing was changed)');
    }
    await db.withAdminTransaction((session) => ensureQueryRoles(session, config.queryRole, config.queryRolePassword));
  });
  // One transaction: an archive that fails part-way changes nothing. --clean drops what the archive holds first.
  await runTool('pg_restore', [
    '--single-transaction',
    '--exit-on-error',
    '--no-owner',
    ...(replace ? ['--clean', '--if-exists'] : []),
    `--dbname=${url}`,
    file,
  ]);
}

// ---- Embedded ----------------------------------------------------------------------------------------------

async function dumpEmbedded(dataDir: string, file: string): Promise<void> {
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) throw new DataLoadError(`no embedded database at ${dataDir}`);
  const lock = DataDirectoryLock.acquire(dataDir);
  try {
    const db = await PGlite.create(dataDir, { extensions: { vector } });
    try {
      const dump = await db.dumpDataDir('gzip');
      await writeFile(file, Buffer.from(await dump.arrayBuffer()));
    } finally {
      await db.close();
    }
  } finally {
    lock.release();
  }
}

/** The tar inside a PGlite dump, checked whole: a damaged or cut-off file is refused before PGlite reads it. */
async function readDump(file: string): Promise<Buffer> {
  const raw = await readFile(file);
  let tar: Buffer;
  try {
    tar = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  } catch (error) {
    throw new DataLoadError(`${file} is damaged or incomplete (${(error as Error).message}); nothing was changed`);
  }
  // A tar file: "ustar" at offset 257 of its first header, and the two zero blocks that end every archive.
  const ends = tar.length >= 1536 && tar.subarray(tar.length - 1024).every((byte) => byte === 0);
  if (tar.subarray(257, 262).toString('latin1') !== 'ustar' || !ends) {
    throw new DataLoadError(`${file} is not a zava-mcp embedded backup (a PGlite data-directory dump), or it is incomplete; nothing was changed`);
  }
  return tar;
}

async function restoreEmbedded(dataDir: string, file: string, replace: boolean): Promise<void> {
  const target = path.resolve(dataDir);
  const holdsDatabase = existsSync(path.join(target, 'PG_VERSION'));
  if (holdsDatabase && !replace) {
    throw new DataLoadError(`${target} already holds a database; pass --replace to replace it with the backup (nothing was changed)`);
  }
  const tar = await readDump(file);
  const lock = DataDirectoryLock.acquire(target);
  const fresh = `${target}.restoring-${process.pid}`;
  const previous = `${target}.previous-${process.pid}`;
  try {
    await rm(fresh, { recursive: true, force: true });
    const db = await PGlite.create(fresh, { extensions: { vector }, loadDataDir: new Blob([tar]) });
    try {
      const migrated = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM zava_meta.schema_migrations`).catch(() => undefined);
      if (!migrated || migrated.rows[0]!.n === 0) throw new DataLoadError(`${file} does not hold a zava-mcp database; nothing was changed`);
    } finally {
      await db.close();
    }
    // The swap: the previous directory moves aside, the restored one takes its name, then the previous one goes.
    if (existsSync(target)) await rename(target, previous);
    await rename(fresh, target);
    await rm(previous, { recursive: true, force: true });
  } catch (error) {
    await rm(fresh, { recursive: true, force: true });
    if (!existsSync(target) && existsSync(previous)) await rename(previous, target);
    throw error;
  } finally {
    lock.release();
  }
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} kB`;
}

/** Connection strings in a tool's message lose their password. */
function redact(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+:)[^@\s]+@/g, '$1***@');
}
