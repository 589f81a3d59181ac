// One process at a time on an embedded data directory. PGlite has no lock of its own, and two processes
// writing the same directory corrupt it, so — like PostgreSQL's postmaster.pid — a lock file next to the
// directory names the process that holds it. A lock left by a process that no longer runs is taken over.
import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { DatabaseUnavailableError } from '../../infra/errors.js';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

export class DataDirectoryLock {
  private released = false;
  private readonly releaseOnExit = () => this.release();

  private constructor(readonly path: string, private readonly content: string) {
    process.once('exit', this.releaseOnExit);
  }

  /** Takes the lock of `dataDir`, or throws naming the process that holds it. */
  static acquire(dataDir: string): DataDirectoryLock {
    const lockPath = `${dataDir}.lock`;
    const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    const content = `${JSON.stringify(owner)}\n`;
    mkdirSync(path.dirname(lockPath), { recursive: true });
    // The lock file appears whole or not at all: written under a private name, then hard-linked into place
    // (link fails if the name exists), so no other process can ever read it half-written.
    const draft = `${lockPath}.${process.pid}.tmp`;
    writeFileSync(draft, content, { mode: 0o644 });
    try {
      // Two attempts: the second follows the removal of a stale lock.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(draft, lockPath);
          return new DataDirectoryLock(lockPath, content);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
            throw new DatabaseUnavailableError(`cannot lock the embedded data directory ${dataDir}: ${(error as Error).message}`);
          }
        }
        const holder = readOwner(lockPath);
        if (holder && isRunning(holder)) {
          throw new DatabaseUnavailableError(
            `the embedded data directory ${dataDir} is in use by process ${holder.pid} on ${holder.host} (since ${holder.since}); ` +
              `stop that process or choose another --data-dir (if no zava-mcp process has it open, delete ${lockPath})`,
          );
        }
        removeIfUnchanged(lockPath, holder);
      }
      throw new DatabaseUnavailableError(`cannot lock the embedded data directory ${dataDir}: another process took it at the same moment`);
    } finally {
      rmSync(draft, { force: true });
    }
  }

  /** Removes the lock file if it is still this holder's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener('exit', this.releaseOnExit);
    try {
      if (readFileSync(this.path, 'utf8') === this.content) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

function readOwner(lockPath: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(lockPath, 'utf8')) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') {
      return { pid: parsed.pid, host: parsed.host, since: String(parsed.since ?? 'unknown') };
    }
  } catch {
    // unreadable or not ours to understand: treated as stale
  }
  return undefined;
}

/** A holder on another host cannot be checked, so it is assumed alive (a shared directory is never stolen). */
function isRunning(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeIfUnchanged(lockPath: string, seen: LockOwner | undefined): void {
  try {
    const now = readOwner(lockPath);
    if (JSON.stringify(now) === JSON.stringify(seen)) unlinkSync(lockPath);
  } catch {
    // gone already: the next attempt creates it
  }
}
