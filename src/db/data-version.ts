// The data version a result-cache entry is stored under (issues 12 and 15). Migration 14 keeps it in
// zava_cache.data_version, bumped in the same transaction as every write to the data. Two readings:
// - The newest version, read on the primary (owner connection) before each cache lookup: a data change is seen
//   by the next call on every replica, whichever process made it.
// - The version the answer was computed at, read by the tool's own read, on the same connection (the same
//   server: primary, standby or embedded reader snapshot) and before the tool's own statements. Replay on a
//   standby only moves forward, so the tool's statements see data at least as new as that version: an answer
//   computed on a standby that has not replayed the newest bump is marked with the older version, and the cache
//   does not store it under the new one (see infra/cache/result-cache.ts).
// Reading it costs one small statement per call that misses the cache; calls outside a capture (everything but
// the cache's misses) pay nothing.
import { AsyncLocalStorage } from 'node:async_hooks';
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
