// Recovery time (issue 12, "Tests and numbers": recovery ≤ 5 s after a database restart, and after a Redis
// restart). A spawned `zava-mcp serve` over HTTP, driven by the official SDK client:
// - Database: a PostgreSQL cluster of this script's own (the shared service is never touched) is stopped (fast
//   shutdown, as a restart does) while a client keeps calling execute_sales_query; once the breaker answers at
//   once it is started again, and the time from "pg_ctl start returned" to the first answered call is measured,
//   calling every 50 ms.
// - Redis: a redis-server of its own (REDIS_URL; per-tool and edge limits on) is killed while calls flow, then
//   started again on the same port; measured from "it answers PING" to (a) the limits counting in Redis again
//   (its keys reappear after a call) and (b) /ready reporting Redis ok. Calls never fail during a Redis outage (the
//   limits count in the process meanwhile), so there is no "first answered call" to wait for.
// Prints each round and the median and worst. Usage: npm run build && node dist/bench/recovery.js [--rounds N]
import { loadavg } from 'node:os';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { OwnCluster } from '../test/support/cluster.js';
import { serverWithOwnRedis } from '../test/support/redis.js';
import { NO_EMBEDDING_ENV } from '../test/support/tokens.js';
import { connectHttp, query, startHttpServer } from '../test/mcp-harness.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg('rounds', 5);
const POLL_MS = 50;
const GIVE_UP_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(label: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `${label}: median ${median} ms, worst ${sorted.at(-1)} ms (rounds: ${values.join(', ')} ms)`;
}

/** Polls `ok` every POLL_MS; the ms until it first holds (or throws after GIVE_UP_MS). */
async function until(ok: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < GIVE_UP_MS) {
    if (await ok()) return Date.now() - started;
    await sleep(POLL_MS);
  }
  throw new Error(`not recovered within ${GIVE_UP_MS} ms`);
}

async function databaseRestarts(): Promise<number[]> {
  const cluster = await OwnCluster.create();
  try {
    await cluster.seed();
    const http = await startHttpServer(['--database-url', cluster.url()], { ...NO_EMBEDDING_ENV, ZAVA_POOL_CONNECT_TIMEOUT_MS: '1000' });
    const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
    const times: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        if ((await query(client, 'SELECT count(*) FROM retail.orders')).isError) throw new Error('not serving before the restart');
        cluster.stop('fast');
        // Calls while it is down, until the breaker refuses at once (what a client meets during an outage).
        for (let i = 0; i < 20; i++) {
          const started = performance.now();
          await query(client, 'SELECT count(*) FROM retail.orders');
          if (performance.now() - started < 100) break;
        }
        cluster.start();
        const ms = await until(async () => !(await query(client, 'SELECT count(*) FROM retail.orders')).isError);
        times.push(ms);
        console.log(`database round ${round + 1}: answered again ${ms} ms after it returned`);
        await sleep(1_000);
      }
    } finally {
      await client.close().catch(() => undefined);
      await http.stop();
    }
    return times;
  } finally {
    cluster.destroy();
  }
}

async function redisRestarts(): Promise<{ counting: number[]; ready: number[] }> {
  const prefix = `zava-bench-recovery-${process.pid}`;
  const { redis, http, cleanup } = await serverWithOwnRedis({ ZAVA_RATE_LIMIT_PREFIX: prefix, ZAVA_RATE_LIMIT_PER_MINUTE: '100000', ZAVA_EDGE_RATE_LIMIT: '100000' });
  const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
  // /ready's Redis component (the embeddings one fails here on purpose: no provider is configured).
  const ready = async () => ((await (await fetch(new URL('/ready', http.url))).json()) as { components: Record<string, { status: string }> }).components['redis']?.status === 'ok';
  const counting: number[] = [];
  const readyTimes: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await redis.stop();
      for (let i = 0; i < 10; i++) if ((await query(client, 'SELECT 1 AS one')).isError) throw new Error('a call failed while Redis was down');
      await until(async () => !(await ready())); // the outage is seen
      await redis.start();
      const back = Date.now();
      let countingMs: number | undefined;
      let readyMs: number | undefined;
      while (countingMs === undefined || readyMs === undefined) {
        if (Date.now() - back > GIVE_UP_MS) throw new Error(`not recovered within ${GIVE_UP_MS} ms`);
        if ((await query(client, 'SELECT 1 AS one')).isError) throw new Error('a call failed after Redis returned');
        if (countingMs === undefined && (await redis.keys(`${prefix}:m`)) > 0 && (await redis.keys(`${prefix}:edge`)) > 0) countingMs = Date.now() - back;
        if (readyMs === undefined && (await ready())) readyMs = Date.now() - back;
        await sleep(POLL_MS);
      }
      counting.push(countingMs);
      readyTimes.push(readyMs);
      console.log(`redis round ${round + 1}: limits in Redis again after ${countingMs} ms; /ready Redis ok after ${readyMs} ms`);
      await sleep(1_000);
    }
  } finally {
    await client.close().catch(() => undefined);
    await cleanup();
  }
  return { counting, ready: readyTimes };
}

const load = () => loadavg().map((n) => n.toFixed(1)).join(' / ');
console.log(`recovery benchmark, ${new Date().toISOString()}, ${ROUNDS} rounds, load average ${load()}`);
const redis = await redisRestarts();
const database = await databaseRestarts();
console.log(`load average at the end ${load()}`);
console.log(summary('after a database restart, first answered call', database));
console.log(summary('after a Redis restart, limits counted in Redis again', redis.counting));
console.log(summary("after a Redis restart, /ready's Redis component ok", redis.ready));
