// A PostgreSQL cluster of a test's own (initdb, pg_ctl from the Debian packages, run as the postgres user) on a
// free loopback port, for tests that stop and start their database: the shared service is never disturbed.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/infra/config.js';
import { openDatabase } from '../../src/db/open.js';
import { prepareSchema } from '../../src/cli/migrate.js';
import { seedDatabase } from '../../src/data/seed.js';
import { ensureEmbeddings } from '../../src/search/store.js';
import { TEST_END_DATE, TEST_SEED } from './databases.js';
import { CachedLocalProvider } from './embeddings.js';

export const PG_BIN = process.env.ZAVA_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A new temporary directory the postgres user owns (initdb and pg_basebackup run as that user). */
function postgresOwnedDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString());
  chownSync(dir, id('-u'), id('-g'));
  return dir;
}

export class OwnCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** initdb and start a new cluster (trust auth on loopback, fsync off: a test's data needs no durability). */
  static async create(): Promise<OwnCluster> {
    const dir = postgresOwnedDir('zava-own-pg-');
    execFileSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/initdb`, '-D', path.join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync'], {
      stdio: 'pipe',
      timeout: 120_000,
    });
    const cluster = new OwnCluster(dir, await freePort());
    cluster.start();
    return cluster;
  }

  /** A hot standby of `primary`: pg_basebackup -R (streaming replication; an immediate checkpoint, not a spread one that can take minutes), started on a port of its own. */
  static async standbyOf(primary: OwnCluster): Promise<OwnCluster> {
    const dir = postgresOwnedDir('zava-own-standby-');
    execFileSync(
      'runuser',
      ['-u', 'postgres', '--', `${PG_BIN}/pg_basebackup`, '-D', path.join(dir, 'data'), '-R', '-X', 'stream', '--checkpoint=fast', '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'],
      { stdio: 'pipe', timeout: 120_000 },
    );
    const standby = new OwnCluster(dir, await freePort());
    standby.start();
    return standby;
  }

  url(database = 'postgres', user = 'postgres'): string {
    return `postgres://${user}@127.0.0.1:${this.port}/${database}`;
  }

  /** Migrates and seeds its `postgres` database small (40 customers, the test seed and end date), embeddings included. */
  async seed(): Promise<void> {
    const config = loadConfig({ databaseUrl: this.url() }, {});
    const db = await openDatabase(config);
    try {
      await prepareSchema(db, config);
      await seedDatabase(db, { customers: 40, seed: TEST_SEED, endDate: TEST_END_DATE });
      await ensureEmbeddings(db, { provider: new CachedLocalProvider() });
    } finally {
      await db.close();
    }
  }

  start(): void {
    this.pgCtl(...this.startArgs());
  }

  /** Stops the server; `fast` disconnects clients the way a restart does. */
  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    this.pgCtl('-m', mode, '-w', 'stop');
  }

  /** start() without blocking the event loop, for callers that keep serving or measuring meanwhile (bench/soak.ts). */
  startInBackground(): Promise<void> {
    return this.pgCtlInBackground(...this.startArgs());
  }

  stopInBackground(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    return this.pgCtlInBackground('-m', mode, '-w', 'stop');
  }

  destroy(): void {
    try {
      this.stop('immediate');
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private startArgs(): string[] {
    return ['-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, '-l', path.join(this.dir, 'log'), '-w', 'start'];
  }

  private pgCtlCommand(args: string[]): string[] {
    return ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', path.join(this.dir, 'data'), ...args];
  }

  private pgCtl(...args: string[]): void {
    execFileSync('runuser', this.pgCtlCommand(args), { stdio: 'pipe', timeout: 60_000 });
  }

  private async pgCtlInBackground(...args: string[]): Promise<void> {
    await promisify(execFile)('runuser', this.pgCtlCommand(args), { timeout: 60_000 });
  }
}
