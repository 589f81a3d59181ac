// Call rate limits per identity and tool (issue 11), with `rate-limiter-flexible`.
// Decisions:
// - Key: the authenticated subject (jwt: "jwt:<sub>") or the dev-mode manager UUID, and the tool name; one
//   identity flooding execute_sales_query does not use up its own get_current_utc_date.
// - A steady rate of `perMinute` calls a minute, plus a burst allowance of `burst` calls that refills over ten
//   minutes (BurstyRateLimiter): a person asking several questions at once is not refused, a loop is.
// - In memory by default; in Redis (ioredis) when REDIS_URL is set, so every replica counts the same calls.
//   Redis down: the limiter falls back to counting in memory (insuranceLimiter) rather than failing every call
//   or letting every call through.
// - Checked before the call reaches the database: a refused call costs one counter update.
import { createRedis } from '../infra/redis.js';
import { BurstyRateLimiter, type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from '../infra/errors.js';

export interface RateLimitSettings {
  /** Calls per identity and tool per minute; 0 turns limiting off. */
  readonly perMinute: number;
  readonly burst: number;
  readonly redisUrl?: string | undefined;
  /** Prefix of the Redis keys (distinct per deployment, or per test). */
  readonly keyPrefix: string;
}

export interface CallRateLimiter {
  /** Resolves when the call may go; throws RateLimitedError (with the time to wait) when it may not. */
  take(identityKey: string, tool: string): Promise<void>;
  close(): Promise<void>;
}

const BURST_WINDOW_SEC = 600;

export const NO_RATE_LIMIT: CallRateLimiter = { take: async () => undefined, close: async () => undefined };

export function createRateLimiter(settings: RateLimitSettings, warn: (message: string) => void = () => undefined): CallRateLimiter {
  if (settings.perMinute === 0) return NO_RATE_LIMIT;
  const store = counterStore(settings.redisUrl, 'rate limits', warn);
  const steady = store.counter({ points: settings.perMinute, duration: 60, keyPrefix: `${settings.keyPrefix}:m` });
  const burst = store.counter({ points: Math.max(1, settings.burst), duration: BURST_WINDOW_SEC, keyPrefix: `${settings.keyPrefix}:b` });
  const limiter = settings.burst > 0 ? new BurstyRateLimiter(steady, burst) : steady;
  return {
    async take(identityKey, tool) {
      try {
        await limiter.consume(`${identityKey}|${tool}`);
      } catch (result) {
        if (!(result instanceof RateLimiterRes)) throw result;
        const waitMs = Math.max(1, result.msBeforeNext);
        throw new RateLimitedError(
          `rate limit reached for ${tool}: at most ${settings.perMinute} calls a minute (plus a burst of ${settings.burst}). Try again in ${Math.ceil(waitMs / 1000)} s.`,
          waitMs,
        );
      }
    },
    close: () => store.close(),
  };
}

/** Where counters live: in this process, or in Redis (shared by replicas) with this process's memory as insurance. */
export interface CounterStore {
  counter(options: { points: number; duration: number; keyPrefix: string }): RateLimiterAbstract;
  close(): Promise<void>;
}

/**
 * Counters in Redis when `redisUrl` is set, else in memory. Redis down: each counter counts in this process
 * (insuranceLimiter) until it is back, so calls neither all fail nor all pass; `warn` hears it once per outage
 * (not once per call), and once more when Redis is back.
 */
export function counterStore(redisUrl: string | undefined, what: string, warn: (message: string) => void): CounterStore {
  if (!redisUrl) return { counter: (options) => new RateLimiterMemory(options), close: async () => undefined };
  const redis = createRedis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
  let failing = false;
  redis.on('error', (error: Error) => {
    if (!failing) warn(`${what}: Redis unavailable (${error.message}); counting in this process until it is back`);
    failing = true;
  });
  redis.on('ready', () => {
    if (failing) warn(`${what}: Redis is back; counting in Redis again`);
    failing = false;
  });
  return {
    counter: (options) => new RateLimiterRedis({ ...options, storeClient: redis, insuranceLimiter: new RateLimiterMemory(options) }),
    close: () => redis.quit().then(() => undefined, () => redis.disconnect()),
  };
}
