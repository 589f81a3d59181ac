// One way to make a Redis client (ioredis), loaded only when a deployment configures Redis (REDIS_URL): the
// package takes about 70 ms of every start, which a server without Redis — the default, and every stdio server —
// never needs. ioredis is CommonJS, so require() loads it synchronously where a client is made.
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

const require = createRequire(import.meta.url);

export type { Redis };

/** A new ioredis client for `url` (loading the package on first use). */
export function createRedis(url: string, options: RedisOptions): Redis {
  const { Redis: Client } = require('ioredis') as typeof import('ioredis');
  return new Client(url, options);
}
