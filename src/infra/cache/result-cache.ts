// The result cache (issues 12 and 15): tool answers kept in memory (lru-cache, bounded by bytes) and, when
// REDIS_URL is set, in Redis shared by every replica, for a TTL (ZAVA_CACHE_TTL_MS, default 5 minutes).
// Decisions:
// - Key: the data version, the tool, what the tool says its answer depends on (the normalized statement, the
//   arguments) and the caller's scope: role, store ids and the PII permission. The user id is not in it: what a
//   tool answers depends on those three only (RLS admits rows by store, masks personal data by permission), and a
//   statement that could read more of the caller (current_setting, CURRENT_USER) is not cached at all
//   (statement-key.ts). An answer computed for one scope is never served to another.
// - Data version: the newest one as db/data-version.ts knows it (from the primary: notified of each change, or
//   read before the lookup), so no replica answers from the cache what a data change made old. An answer is stored under the version its own read
//   saw (db/data-version.ts); one computed on a standby that has not replayed the newest version is returned but
//   not stored, so a lagging standby never puts stale rows under the new version.
// - Only successful answers are stored; refusals and failures are not.
// - Redis down (or slow: 500 ms per command): the shared tier is skipped, with one log line when it goes and one
//   when it is back (ioredis reconnects by itself); each replica keeps its memory tier and calls succeed. No
//   command waits in a queue while disconnected.
// - The newest version cannot be read (database down): the cache is skipped and the call runs as without it.
import { createHash } from 'node:crypto';
import { createRedis, type Redis } from '../redis.js';
import { LRUCache } from 'lru-cache';
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { Identity } from '../../db/types.js';
import { annotateSpan, inSpan } from '../tracing.js';
import { PACKAGE_VERSION } from '../version.js';

export interface CacheSettings {
  readonly enabled: boolean;
  readonly ttlMs: number;
  /** Bytes the memory tier may hold (entries as JSON text, two bytes a character, keys included). */
  readonly memoryBytes: number;
  /** The shared tier; absent: memory only. */
  readonly redisUrl?: string | undefined;
  /** Prefix of the Redis keys (per deployment, or per test). */
  readonly keyPrefix: string;
}

/** Counters the cache feeds (metrics.ts); labels are bounded: the tier and nothing else. */
export interface CacheObserver {
  hit(tier: 'memory' | 'redis'): void;
  miss(): void;
  eviction(): void;
  redisError(): void;
  /** An answer computed at an older data version than the newest (a lagging standby): returned, not stored. */
  staleAnswer(): void;
}

export interface CacheStats {
  readonly enabled: boolean;
  readonly hits: { readonly memory: number; readonly redis: number };
  readonly misses: number;
  /** hits ÷ (hits + misses), or null before the first lookup. */
  readonly hitRatio: number | null;
  readonly entries: number;
  readonly bytes: number;
  readonly redis: 'off' | 'up' | 'down';
}

export interface CacheDeps {
  /** The newest data version, on the primary (DataVersionWatch). */
  readonly newestVersion: () => Promise<number>;
  /** Runs a tool's work and tells the data version its reads saw (db/data-version.ts). */
  readonly computeAt: <T>(work: () => Promise<T>) => Promise<{ value: T; version: number | undefined }>;
  readonly warn: (message: string) => void;
  readonly observer?: CacheObserver | undefined;
}

const REDIS_COMMAND_TIMEOUT_MS = 500;

/** Where an answer came from, for the answer's _meta (clients and tests can tell a cached answer). */
export const CACHE_META = 'zava/cache';

export class ResultCache {
  private readonly memory: LRUCache<string, string>;
  private readonly redis: Redis | undefined;
  private redisDown = false;
  private readonly counts = { memory: 0, redis: 0, misses: 0 };
  private versionWarned = false;

  constructor(
    readonly settings: CacheSettings,
    private readonly deps: CacheDeps,
  ) {
    const observer = deps.observer;
    this.memory = new LRUCache<string, string>({
      maxSize: Math.max(1, settings.memoryBytes),
      sizeCalculation: (value, key) => Math.max(1, (value.length + key.length) * 2),
      ttl: settings.ttlMs,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') observer?.eviction();
      },
    });
    if (settings.enabled && settings.redisUrl) {
      const redis = createRedis(settings.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
        retryStrategy: (times) => Math.min(times * 200, 2_000),
      });
      redis.on('error', (error: Error) => this.markRedisDown(error));
      redis.on('ready', () => {
        if (this.redisDown) deps.warn('result cache: Redis answers again; the shared cache is back');
        this.redisDown = false;
      });
      this.redis = redis;
    }
  }

  get enabled(): boolean {
    return this.settings.enabled;
  }

  /**
   * The answer of `tool` for `material` in `identity`'s scope: from the cache when it holds one for the newest data
   * version, else computed by `compute` and stored (when successful and computed at the newest version).
   */
  async through(tool: string, material: unknown, identity: Identity, compute: () => Promise<CallToolResult>): Promise<CallToolResult> {
    if (!this.settings.enabled) return compute();
    const looked = await inSpan('cache', { 'zava.tool': tool }, () => this.lookup(tool, material, identity));
    if (looked === undefined) return compute();
    if ('answer' in looked) return looked.answer;
    const { value, version } = await this.deps.computeAt(compute);
    if (value.isError || version === undefined) return value;
    if (version < looked.version) {
      this.deps.observer?.staleAnswer();
      return value;
    }
    this.store(entryKey(this.settings.keyPrefix, version, looked.digest), JSON.stringify(value));
    return value;
  }

  stats(): CacheStats {
    const hits = this.counts.memory + this.counts.redis;
    const total = hits + this.counts.misses;
    return {
      enabled: this.settings.enabled,
      hits: { memory: this.counts.memory, redis: this.counts.redis },
      misses: this.counts.misses,
      hitRatio: total === 0 ? null : Math.round((hits / total) * 1000) / 1000,
      entries: this.memory.size,
      bytes: this.memory.calculatedSize,
      redis: this.redis ? (this.redisDown || this.redis.status !== 'ready' ? 'down' : 'up') : 'off',
    };
  }

  async close(): Promise<void> {
    if (this.redis) await this.redis.quit().catch(() => this.redis?.disconnect());
  }

  /** A cached answer, or the version and digest a new one is stored under; undefined: skip the cache. */
  private async lookup(
    tool: string,
    material: unknown,
    identity: Identity,
  ): Promise<{ answer: CallToolResult } | { version: number; digest: string } | undefined> {
    let version: number;
    try {
      version = await this.deps.newestVersion();
      if (this.versionWarned) this.deps.warn('result cache: the data version can be read again; caching resumed');
      this.versionWarned = false;
    } catch (error) {
      if (!this.versionWarned) this.deps.warn(`result cache: cannot read the data version (${error instanceof Error ? error.message : String(error)}); calls run uncached until it can`);
      this.versionWarned = true;
      return undefined;
    }
    const digest = scopeDigest(tool, material, identity);
    const key = entryKey(this.settings.keyPrefix, version, digest);
    const local = this.memory.get(key);
    if (local !== undefined) return this.hit('memory', local, version);
    const shared = await this.redisGet(key);
    if (shared !== undefined) {
      this.memory.set(key, shared);
      return this.hit('redis', shared, version);
    }
    this.counts.misses++;
    this.deps.observer?.miss();
    annotateSpan({ 'zava.cache': 'miss' });
    return { version, digest };
  }

  private hit(tier: 'memory' | 'redis', text: string, version: number): { answer: CallToolResult } {
    this.counts[tier]++;
    this.deps.observer?.hit(tier);
    annotateSpan({ 'zava.cache': `hit:${tier}` });
    const answer = JSON.parse(text) as CallToolResult;
    return { answer: { ...answer, _meta: { ...answer._meta, [CACHE_META]: { tier, version } } } };
  }

  private store(key: string, text: string): void {
    this.memory.set(key, text);
    if (!this.redisUsable()) return;
    this.redis!.set(key, text, 'PX', this.settings.ttlMs).catch((error: unknown) => this.markRedisDown(error));
  }

  private async redisGet(key: string): Promise<string | undefined> {
    if (!this.redisUsable()) return undefined;
    try {
      return (await this.redis!.get(key)) ?? undefined;
    } catch (error) {
      this.markRedisDown(error);
      return undefined;
    }
  }

  private redisUsable(): boolean {
    return this.redis !== undefined && !this.redisDown && this.redis.status === 'ready';
  }

  private markRedisDown(error: unknown): void {
    this.deps.observer?.redisError();
    if (this.redisDown) return;
    this.redisDown = true;
    this.deps.warn(`result cache: Redis unavailable (${error instanceof Error ? error.message : String(error)}); answering without the shared cache until it is back`);
    // A timed-out command on a connection that is still up: try again after a moment rather than at the next reconnect.
    if (this.redis?.status === 'ready') {
      setTimeout(() => {
        if (this.redis?.status !== 'ready' || !this.redisDown) return; // a reconnect's 'ready' will say it
        this.redisDown = false;
        this.deps.warn('result cache: Redis answers again; the shared cache is back');
      }, 1_000).unref();
    }
  }
}

/**
 * What an entry is about, in the caller's scope: tool, material, role, store ids, PII permission — and the server's
 * version, so replicas of two releases sharing one Redis during a rolling deploy never read each other's answers
 * (a tool's answer shape may differ between them).
 */
function scopeDigest(tool: string, material: unknown, identity: Identity): string {
  const stores = identity.storeIds === 'all' ? 'all' : [...identity.storeIds].sort((a, b) => a - b);
  const scope = { role: identity.role, stores, pii: identity.pii === true };
  return createHash('sha256').update(JSON.stringify([PACKAGE_VERSION, tool, material, scope])).digest('base64url');
}

function entryKey(prefix: string, version: number, digest: string): string {
  return `${prefix}:v${version}:${digest}`;
}
