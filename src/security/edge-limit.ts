// The HTTP edge's request limit (issue 11: "HTTP 429 with Retry-After where the request is refused before the MCP
// layer"). Decisions:
// - It protects the server from request floods (pings, list calls, handshakes, retries in a loop), not a tool
//   budget: the per-tool limits of rate-limit.ts do that, inside the MCP layer, as tool errors. So the default is
//   generous — 1200 requests a minute per caller, 20 a second sustained, well above what the per-tool limits let
//   one identity call (60 a minute and a burst of 20 per tool) — and a well-behaved client never meets it.
// - Key: who the edge knows is calling, after authentication: the verified token's `sub` (jwt), the x-rls-user-id
//   UUID (dev), or the client's address when the request names nobody. A forged header cannot spend someone
//   else's budget in jwt mode, since the key is taken only from a verified token.
// - A fixed window of `windowSec` seconds (rate-limiter-flexible), in memory or in Redis when REDIS_URL is set (one
//   budget across replicas), with the same in-process fallback while Redis is down (counterStore).
// - Over the limit: 429, Retry-After in whole seconds (rounded up), and a JSON-RPC error body; the body is never read.
import { RateLimiterRes } from 'rate-limiter-flexible';
import { counterStore } from './rate-limit.js';

export interface EdgeLimitSettings {
  /** Requests per caller per window; 0 turns the edge limit off. */
  readonly requests: number;
  readonly windowSec: number;
  readonly redisUrl?: string | undefined;
  /** Prefix of the Redis keys (shared with the per-tool limits' prefix, with ":edge" added). */
  readonly keyPrefix: string;
}

export type EdgeDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSec: number; readonly message: string };

export interface EdgeLimiter {
  admit(callerKey: string): Promise<EdgeDecision>;
  close(): Promise<void>;
}

const ALLOWED: EdgeDecision = { allowed: true };

export const NO_EDGE_LIMIT: EdgeLimiter = { admit: async () => ALLOWED, close: async () => undefined };

export function createEdgeLimiter(settings: EdgeLimitSettings, warn: (message: string) => void = () => undefined): EdgeLimiter {
  if (settings.requests === 0) return NO_EDGE_LIMIT;
  const store = counterStore(settings.redisUrl, 'HTTP request limit', warn);
  const counter = store.counter({ points: settings.requests, duration: settings.windowSec, keyPrefix: `${settings.keyPrefix}:edge` });
  return {
    async admit(callerKey) {
      try {
        await counter.consume(callerKey);
        return ALLOWED;
      } catch (result) {
        if (!(result instanceof RateLimiterRes)) throw result;
        const retryAfterSec = Math.max(1, Math.ceil(result.msBeforeNext / 1000));
        return {
          allowed: false,
          retryAfterSec,
          message: `too many requests: at most ${settings.requests} requests every ${settings.windowSec} s per caller. Try again in ${retryAfterSec} s.`,
        };
      }
    },
    close: () => store.close(),
  };
}
