// Where identity-scoped reads run: the primary's query pool, or hot standbys (ZAVA_READ_REPLICA_URLS). Every tool
// query is a read, so it may run on any standby; owner work (migrations, seeding, imports, the identity
// directory) stays on the primary. Decisions:
// - Standbys take calls in turn (round robin). Each is probed every PROBE_INTERVAL_MS with `SELECT 1`; one that
//   fails a probe or a connection attempt is taken out at once and put back when a probe succeeds, so a standby
//   that stops answering leaves the rotation within a second or two and returns the same way.
// - With no standby left, reads go to the primary (ZAVA_READ_REPLICA_FALLBACK=primary, the default) or are
//   refused with DATABASE_UNAVAILABLE (=fail), for deployments that must keep read load off the primary.
// - The signed RLS context needs nothing different on a standby: its key table and functions are replicated, and
//   the signature binds the standby backend's own pid.
import pg from 'pg';
import { redactUrl } from '../../infra/config.js';
import { DatabaseUnavailableError } from '../../infra/errors.js';

export const PROBE_INTERVAL_MS = 1_000;
const PROBE_TIMEOUT_MS = 1_500;

export interface ReadTarget {
  /** The target's address for logs and the operators' view (no password). */
  readonly name: string;
  readonly pool: pg.Pool;
  readonly role: 'primary' | 'standby';
  healthy: boolean;
}

export interface ReadRouterOptions {
  readonly fallback: 'primary' | 'fail';
  readonly probeIntervalMs?: number;
  readonly warn: (message: string) => void;
}

export class ReadRouter {
  private next = 0;
  private readonly probe: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly primary: ReadTarget,
    private readonly standbys: readonly ReadTarget[],
    private readonly options: ReadRouterOptions,
  ) {
    if (standbys.length > 0) {
      this.probe = setInterval(() => void this.probeAll(), options.probeIntervalMs ?? PROBE_INTERVAL_MS);
      this.probe.unref();
    }
  }

  static target(url: string, role: ReadTarget['role'], pool: pg.Pool): ReadTarget {
    return { name: redactUrl(url), pool, role, healthy: true };
  }

  /** A connection for one call: the next healthy standby, else the primary (or a refusal, when configured). */
  async connect(): Promise<{ client: pg.PoolClient; target: ReadTarget }> {
    for (let tried = 0; tried < this.standbys.length; tried++) {
      const target = this.standbys[this.next++ % this.standbys.length]!;
      if (!target.healthy) continue;
      try {
        return { client: await target.pool.connect(), target };
      } catch (error) {
        this.markFailed(target, error);
      }
    }
    if (this.standbys.length > 0 && this.options.fallback === 'fail') {
      throw new DatabaseUnavailableError('no read replica is answering (ZAVA_READ_REPLICA_FALLBACK=fail keeps reads off the primary)');
    }
    try {
      return { client: await this.primary.pool.connect(), target: this.primary };
    } catch (error) {
      // The driver's message names the user, host, port and database: it goes to the log (cause), not the answer.
      throw new DatabaseUnavailableError('cannot connect to the database', { cause: error });
    }
  }

  /** A call lost its connection to `target`: a standby leaves the rotation until a probe succeeds. */
  markFailed(target: ReadTarget, error?: unknown): void {
    if (target.role !== 'standby' || !target.healthy) return;
    target.healthy = false;
    this.options.warn(`read replica ${target.name} stopped answering (${error instanceof Error ? error.message : 'connection lost'}); taken out of rotation`);
  }

  /** Pools of every target, for the operators' view and metrics. */
  pools(): Record<string, { total: number; idle: number; waiting: number; healthy?: boolean }> {
    const figures = (t: ReadTarget) => ({ total: t.pool.totalCount, idle: t.pool.idleCount, waiting: t.pool.waitingCount });
    return {
      query: figures(this.primary),
      ...Object.fromEntries(this.standbys.map((t, i) => [`standby${i + 1}`, { ...figures(t), healthy: t.healthy }])),
    };
  }

  get healthyStandbys(): number {
    return this.standbys.filter((t) => t.healthy).length;
  }

  close(): Promise<unknown> {
    if (this.probe) clearInterval(this.probe);
    return Promise.allSettled([this.primary.pool.end(), ...this.standbys.map((t) => t.pool.end())]);
  }

  private async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all(
        this.standbys.map(async (target) => {
          const ok = await probe(target.pool);
          if (ok && !target.healthy) {
            target.healthy = true;
            this.options.warn(`read replica ${target.name} answers again; back in rotation`);
          } else if (!ok) {
            this.markFailed(target, new Error('health probe failed'));
          }
        }),
      );
    } finally {
      this.probing = false;
    }
  }
}

async function probe(pool: pg.Pool): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS)));
  try {
    return await Promise.race([pool.query('SELECT 1').then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
