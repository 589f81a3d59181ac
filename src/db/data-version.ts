// The data version a result-cache entry is stored under (issues 12 and 15). Migration 14 keeps it in
// zava_cache.data_version, bumped in the same transaction as every write to the data. Two readings:
// - The newest version, on the primary (DataVersionWatch). On the server backend a connection LISTENs for the
//   bump's notification: the version is re-read when one arrives (calls meanwhile read it themselves), and is
//   trusted without a round trip for at most VERSION_MAX_AGE_MS after a read, so a cached call costs no database
//   work and a change is seen by every replica as soon as its notification arrives (milliseconds). Without a
//   listener (embedded; the LISTEN connection lost) every lookup reads it first, so nothing committed before a
//   call began is missed.
// - The version the answer was computed at, read by the tool's own read, on the same connection (the same
//   server: primary, standby or embedded reader snapshot) and before the tool's own statements. Replay on a
//   standby only moves forward, so the tool's statements see data at least as new as that version: an answer
//   computed on a standby that has not replayed the newest bump is marked with the older version, and the cache
//   does not store it under the new one (see infra/cache/result-cache.ts).
// Reading it costs one small statement per call that misses the cache; calls outside a capture (everything but
// the cache's misses) pay nothing.
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { withIdentityWrapped } from './decorate.js';
import type { Database } from './types.js';

export const DATA_VERSION_SQL = 'SELECT version FROM zava_cache.data_version';

/** The newest data version, on the primary (owner connection). */
export async function readDataVersion(db: Pick<Database, 'ownerQuery'>): Promise<number> {
  const { rows } = await db.ownerQuery(DATA_VERSION_SQL);
  const version = Number(rows[0]?.[0]);
  if (!Number.isSafeInteger(version)) throw new Error('zava_cache.data_version holds no version: run `zava-mcp db migrate`');
  return version;
}

/** Longest a version read is trusted while listening (a safety net: notifications arrive in milliseconds). */
export const VERSION_MAX_AGE_MS = 1_000;
/** After the LISTEN connection fails, how long before listening is tried again (lookups read meanwhile). */
const RELISTEN_MS = 2_000;

/** The newest data version as one process knows it: see the header. */
export class DataVersionWatch {
  private known: number | undefined;
  private readStartedAt = 0;
  private listener: pg.Client | undefined;
  private listening = false;
  private relistenAt = 0;
  private reading: Promise<number> | undefined;
  private nextReading: Promise<number> | undefined;
  private closed = false;

  constructor(
    private readonly read: () => Promise<number>,
    /** Owner URL of the primary to LISTEN on (server backend); undefined: read before every lookup. */
    private readonly listenUrl?: string | undefined,
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** The newest version: the last one read while listening and fresh, else a read (shared by concurrent callers). */
  newest(): Promise<number> {
    if (this.listenUrl && !this.listening && !this.closed && Date.now() >= this.relistenAt) void this.listen();
    if (this.listening && this.known !== undefined && Date.now() - this.readStartedAt < VERSION_MAX_AGE_MS) return Promise.resolve(this.known);
    return this.readShared();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    await this.listener?.end().catch(() => undefined);
  }

  /**
   * Callers that arrive while a read is in flight wait for the next read, which they share: nobody takes a version
   * read before it asked, so it sees every change committed before it asked.
   */
  private readShared(): Promise<number> {
    if (!this.reading) {
      const started = Date.now();
      const read = this.read()
        .then((version) => {
          this.known = version;
          this.readStartedAt = started;
          return version;
        })
        .finally(() => {
          if (this.reading === read) this.reading = undefined;
        });
      this.reading = read;
      return read;
    }
    this.nextReading ??= this.reading
      .catch(() => undefined)
      .then(() => {
        this.nextReading = undefined;
        return this.readShared();
      });
    return this.nextReading;
  }

  private async listen(): Promise<void> {
    this.relistenAt = Date.now() + RELISTEN_MS;
    const client = new pg.Client({ connectionString: this.listenUrl, application_name: 'zava-mcp data version' });
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.listening = false; // every lookup reads the version until listening again
      this.relistenAt = Date.now() + RELISTEN_MS;
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', () => {
      this.readStartedAt = 0; // calls from now on read the new version themselves
      void this.readShared().catch(() => undefined);
    });
    this.listener = client;
    try {
      await client.connect();
      await client.query('LISTEN zava_data_version');
      if (this.closed) return void (await client.end());
      this.readStartedAt = 0; // a change may have committed before LISTEN took effect: read once more
      this.listening = this.listener === client;
    } catch (error) {
      this.warn(`result cache: cannot LISTEN for data changes (${error instanceof Error ? error.message : String(error)}); reading the data version before every lookup`);
      lost();
      await client.end().catch(() => undefined);
    }
  }
}

interface Capture {
  /** The least version any read of the call saw (a call may read more than once, possibly on other servers). */
  version: number | undefined;
}

const captures = new AsyncLocalStorage<Capture>();

/** Runs `work` and tells the data version its reads were computed at (undefined: it read nothing). */
export async function captureDataVersion<T>(work: () => Promise<T>): Promise<{ value: T; version: number | undefined }> {
  const capture: Capture = { version: undefined };
  const value = await captures.run(capture, work);
  return { value, version: capture.version };
}

/** The database as tools see it: inside a capture, each identity-scoped read first reads the data version. */
export function withDataVersionCapture<D extends Database>(db: D): D {
  const withIdentity: Database['withIdentity'] = (identity, work, options) => {
    const capture = captures.getStore();
    if (!capture) return db.withIdentity(identity, work, options);
    return db.withIdentity(
      identity,
      async (session) => {
        const { rows } = await session.query(DATA_VERSION_SQL, [], { maxRows: 1 });
        const version = Number(rows[0]?.[0]);
        if (Number.isSafeInteger(version)) capture.version = capture.version === undefined ? version : Math.min(capture.version, version);
        return work(session);
      },
      options,
    );
  };
  return withIdentityWrapped(db, withIdentity);
}
