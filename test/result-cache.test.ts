// The result cache (issue 12): statement keys and volatility against the database's own pg_proc, the data
// version bumped by every write, and scope isolation across every identity pair — head office, each store
// manager, each regional manager, each with and without pii:read — on both backends and on both cache tiers
// (memory in the process that primed, Redis in a second process sharing it). Ground truth is each identity's
// own read of the database, outside the server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { readDataVersion } from '../src/db/data-version.js';
import type { Identity } from '../src/db/types.js';
import { CACHE_META, ResultCache } from '../src/infra/cache/result-cache.js';
import { captureDataVersion, DataVersionWatch, withDataVersionCapture } from '../src/db/data-version.js';
import { loadConfig } from '../src/infra/config.js';
import { createLogger } from '../src/infra/logger.js';
import { runConfigCheck } from '../src/cli/config-check.js';
import { InFlight } from '../src/protocol/context.js';
import { CallPipeline, devIdentities } from '../src/protocol/pipeline.js';
import { createRateLimiter } from '../src/security/rate-limit.js';
import { Writable } from 'node:stream';
import { StatementKeys } from '../src/infra/cache/statement-key.js';
import { identityFromClaims, type StoreEntry } from '../src/security/claims.js';
import { backendsUnderTest, createTestDatabase, PG_ADMIN_URL, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { NO_EMBEDDING_ENV, connectWithToken, newSigningKey, signTestToken, type SigningKey } from './support/tokens.js';
import { startHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';
import { waitFor } from './support/wait.js';

const pgSkip = (await serverUnavailableReason()) ?? false;
const redisSkip = await (async () => {
  const probe = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return false;
  } catch (error) {
    return `Redis at 127.0.0.1:6379 unavailable: ${(error as Error).message}`;
  } finally {
    probe.disconnect();
  }
})();

describe('statement keys', { skip: pgSkip }, () => {
  let keys: StatementKeys;
  before(async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
      keys = await StatementKeys.load(async (sql) => (await client.query({ text: sql, rowMode: 'array' })).rows as unknown[][]);
    } finally {
      await client.end();
    }
  });

  test('one entry per statement: a literal or an output name apart are two; spacing, comments and keyword case are one', () => {
    const base = keys.keyOf('SELECT store_id, sum(total_amount) AS revenue FROM retail.order_items WHERE store_id = 1 GROUP BY store_id');
    assert.ok(base);
    assert.equal(keys.keyOf('select store_id,  SUM(total_amount) as revenue -- a comment\n from retail.order_items where store_id=1 group by store_id'), base);
    assert.notEqual(keys.keyOf('SELECT store_id, sum(total_amount) AS revenue FROM retail.order_items WHERE store_id = 2 GROUP BY store_id'), base, 'another literal');
    assert.notEqual(keys.keyOf('SELECT store_id, sum(total_amount) AS income FROM retail.order_items WHERE store_id = 1 GROUP BY store_id'), base, 'another output name');
    assert.notEqual(keys.keyOf(`SELECT 'a' AS x`), keys.keyOf(`SELECT 'b' AS x`));
    assert.notEqual(keys.keyOf('SELECT 1 WHERE 1 IN (1, 2)'), keys.keyOf('SELECT 1 WHERE 1 IN (1, 2, 3)'));
  });

  test('volatile statements are not cached; immutable functions and fixed-setting date functions are', () => {
    for (const sql of [
      'SELECT now()',
      'SELECT current_date',
      'SELECT CURRENT_TIMESTAMP',
      'SELECT current_user',
      'SELECT random()',
      'SELECT clock_timestamp()',
      `SELECT current_setting('zava.context')`,
      'SELECT pg_backend_pid()',
      `SELECT count(*) FROM retail.orders WHERE order_date > 'today'::date - 30`,
      `SELECT 'now'::timestamptz`,
      'SELECT * FROM retail.orders TABLESAMPLE SYSTEM (10)',
      'SELECT (SELECT max(order_date) FROM retail.orders WHERE order_date < now())',
      'SELEC broken',
    ]) {
      assert.equal(keys.keyOf(sql), undefined, sql);
    }
    for (const sql of [
      'SELECT store_id, count(*), sum(total_amount), avg(quantity) FROM retail.order_items GROUP BY 1',
      `SELECT to_char(order_date, 'YYYY-MM'), date_trunc('month', order_date), extract(year FROM order_date) FROM retail.orders`,
      `SELECT lower(product_name), round(base_price, 1), coalesce(sku, '') FROM retail.products`,
      'SELECT * FROM retail.orders TABLESAMPLE SYSTEM (10) REPEATABLE (7)',
      `SELECT row_number() OVER (ORDER BY store_id) FROM retail.stores`,
    ]) {
      assert.ok(keys.keyOf(sql), sql);
    }
  });
});

describe('the data version and the pipeline stage', { skip: pgSkip }, () => {
  let t: TestDatabase;
  before(async () => {
    t = await createTestDatabase('server', { customers: 40, embeddings: false }); // the size other suites use: copied from the run's template
  });
  after(async () => t?.cleanup());

  test('every statement that writes a table a tool reads bumps it, even one that changes no row; reads do not', async () => {
    const { rows } = await t.db.ownerQuery(`SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'bump_data_version' ORDER BY 1`);
    const tables = rows.map((row) => String(row[0]));
    for (const expected of ['retail.orders', 'retail.order_items', 'retail.inventory', 'retail.products', 'retail.product_description_embeddings', 'zava_data.customers', 'zava_data.stores', 'zava_rollup.sales_monthly']) {
      assert.ok(tables.includes(expected), `${expected} in ${tables.join(', ')}`);
    }
    for (const table of tables) {
      const before_ = await readDataVersion(t.db);
      await t.db.withAdminTransaction((session) => session.exec(`DELETE FROM ${table} WHERE false`));
      const after_ = await readDataVersion(t.db);
      assert.ok(after_ > before_, `${table}: ${before_} → ${after_}`);
    }
    const still = await readDataVersion(t.db);
    await t.db.ownerQuery('SELECT count(*) FROM retail.orders');
    assert.equal(await readDataVersion(t.db), still);
    // Rolled back: no bump is visible.
    await t.db.withAdminTransaction(async (session) => {
      await session.exec('DELETE FROM retail.orders WHERE false');
      throw new Error('roll back');
    }).catch(() => undefined);
    assert.equal(await readDataVersion(t.db), still);
  });

  test('the watch: while it listens, the version costs no read; a change is seen when its notification arrives', async () => {
    let reads = 0;
    const watch = new DataVersionWatch(async () => {
      reads++;
      return readDataVersion(t.db);
    }, t.config.databaseUrl);
    try {
      const first = await watch.newest();
      await waitFor('listening', async () => {
        const before_ = reads;
        await watch.newest();
        await watch.newest();
        return reads === before_;
      }, { ms: 5_000 });
      const settled = reads;
      for (let i = 0; i < 20; i++) assert.equal(await watch.newest(), first);
      assert.equal(reads, settled, 'no read while listening and fresh');
      await t.db.withAdminTransaction((session) => session.exec('DELETE FROM retail.inventory WHERE false'));
      await waitFor('the change is seen', async () => (await watch.newest()) > first, { ms: 2_000 });
    } finally {
      await watch.close();
    }
    // Without a listener (embedded): every lookup reads.
    const plain = new DataVersionWatch(async () => {
      reads++;
      return readDataVersion(t.db);
    });
    const before_ = reads;
    await plain.newest();
    await plain.newest();
    assert.equal(reads - before_, 2);
  });

  test('the pipeline: looked up after the rate limit (a limited call is refused even when cached), failures never stored, undeclared tools never cached', async () => {
    const db = withDataVersionCapture(t.db);
    const warnings: string[] = [];
    const cache = new ResultCache(
      { enabled: true, ttlMs: 60_000, memoryBytes: 1 << 20, keyPrefix: 'test' },
      { newestVersion: () => readDataVersion(t.db), computeAt: captureDataVersion, warn: (m) => warnings.push(m) },
    );
    const pipeline = new CallPipeline({
      identities: devIdentities(t.db),
      rateLimiter: createRateLimiter({ perMinute: 3, burst: 0, keyPrefix: `test-${randomBytes(4).toString('hex')}` }),
      inFlight: new InFlight(),
      log: createLogger('silent', 'json'),
      cache,
    });
    let ran = 0;
    let fail = false;
    const stores = async (_args: unknown, call: { identity: Identity | undefined }): Promise<CallToolResult> => {
      ran++;
      const { rows } = await db.withIdentity(call.identity!, (session) => session.query('SELECT count(*)::int FROM retail.stores'));
      return fail ? { content: [{ type: 'text', text: 'failed' }], isError: true } : { content: [{ type: 'text', text: String(rows[0]![0]) }] };
    };
    const as = (userId: string) => ({ authInfo: { token: '', clientId: 'x-rls-user-id', scopes: [], extra: { userId } } });
    const cached = { cache: () => 'stores' };
    const seattle = as(STORES[0]!.managerId);
    const first = await pipeline.run('t', cached, stores, {}, seattle);
    const second = await pipeline.run('t', cached, stores, {}, seattle);
    assert.equal(ran, 1, 'the second call was answered from the cache');
    assert.deepEqual(second.content, first.content);
    assert.equal(tierOf(second), 'memory');
    await pipeline.run('t', cached, stores, {}, seattle);
    const limited = await pipeline.run('t', cached, stores, {}, seattle);
    assert.equal((limited.structuredContent as { code: string }).code, 'RATE_LIMITED', 'refused though its answer is cached');
    // Another identity; a failure is returned, not stored; a tool without a cache declaration always runs.
    const tacoma = as(STORES[1]!.managerId);
    fail = true;
    assert.equal((await pipeline.run('t', cached, stores, {}, tacoma)).isError, true);
    fail = false;
    assert.equal((await pipeline.run('t', cached, stores, {}, tacoma)).isError, undefined);
    assert.equal(ran, 3, 'the failure was not stored');
    await pipeline.run('u', {}, stores, {}, tacoma);
    await pipeline.run('u', {}, stores, {}, tacoma);
    assert.equal(ran, 5);
    assert.equal(cache.stats().hits.memory, 2);
    assert.deepEqual(warnings, []);
    await cache.close();
  });

  test('the memory tier stays within its byte bound, counting evictions', async () => {
    const db = withDataVersionCapture(t.db);
    const counted = { evictions: 0, misses: 0, hits: 0 };
    const small = new ResultCache(
      { enabled: true, ttlMs: 60_000, memoryBytes: 4_000, keyPrefix: 'test' },
      {
        newestVersion: () => readDataVersion(t.db),
        computeAt: captureDataVersion,
        warn: () => undefined,
        observer: { hit: () => counted.hits++, miss: () => counted.misses++, eviction: () => counted.evictions++, redisError: () => undefined, staleAnswer: () => undefined },
      },
    );
    const identity = await t.db.resolveIdentity(STORES[0]!.managerId);
    const answer = async (): Promise<CallToolResult> => {
      const { rows } = await db.withIdentity(identity, (session) => session.query(`SELECT repeat('x', 500) AS filler`));
      return { content: [{ type: 'text', text: String(rows[0]![0]) }] };
    };
    for (let i = 0; i < 10; i++) await small.through('t', i, identity, answer);
    assert.equal(counted.misses, 10);
    assert.ok(counted.evictions >= 6, `evictions: ${counted.evictions}`);
    const stats = small.stats();
    assert.ok(stats.bytes <= 4_000 && stats.entries >= 1 && stats.entries <= 4, JSON.stringify(stats));
    await small.through('t', 9, identity, answer); // the newest entry is still there
    assert.equal(counted.hits, 1);
    await small.close();
  });
});

describe('settings', () => {
  test('ZAVA_CACHE, ZAVA_CACHE_TTL_MS, ZAVA_CACHE_MEMORY_MB, ZAVA_CACHE_PREFIX: defaults, validation naming the variable, config check', () => {
    const defaults = loadConfig({}, {});
    assert.deepEqual(defaults.cache, { enabled: true, ttlMs: 300_000, memoryMb: 64, keyPrefix: 'zava:cache' });
    assert.equal(loadConfig({}, { ZAVA_CACHE: 'off' }).cache.enabled, false);
    assert.throws(() => loadConfig({}, { ZAVA_CACHE: 'maybe' }), /ZAVA_CACHE must be on or off/);
    assert.throws(() => loadConfig({}, { ZAVA_CACHE_TTL_MS: '0' }), /ZAVA_CACHE_TTL_MS must be greater than 0/);
    assert.throws(() => loadConfig({}, { ZAVA_CACHE_MEMORY_MB: 'lots' }), /ZAVA_CACHE_MEMORY_MB must be a number/);
    let printed = '';
    const out = new Writable({ write: (chunk, _encoding, done) => ((printed += String(chunk)), done()) });
    runConfigCheck(loadConfig({}, { ZAVA_CACHE_TTL_MS: '1000', REDIS_URL: 'redis://:sesame@cache.example:6379' }), out, {});
    const effective = JSON.parse(printed.slice(0, printed.lastIndexOf('}') + 1)) as { cache: { ttlMs: number }; rateLimit: { redisUrl: string } };
    assert.equal(effective.cache.ttlMs, 1000);
    assert.doesNotMatch(printed, /sesame/);
  });
});

/** Every kind of identity a token can grant, each with and without pii:read. */
const TOKEN_CLAIMS: readonly { name: string; claims: Record<string, unknown> }[] = [
  { name: 'head office', claims: { roles: ['super_admin'] } },
  ...STORES.map((store) => ({ name: store.name, claims: { roles: ['store_manager'], allowed_stores: [store.storeId] } })),
  ...REGIONAL_MANAGERS.map((manager) => ({ name: manager.name, claims: { roles: ['regional_manager'], allowed_regions: manager.regions } })),
].flatMap(({ name, claims }) => [
  { name, claims },
  { name: `${name} +pii`, claims: { ...claims, scope: 'pii:read' } },
]);

const ENTRIES: StoreEntry[] = STORES.map((s) => ({ storeId: s.storeId, name: s.name, managerId: s.managerId, region: s.region }));

/** Differs by store scope (customers per store) and by PII permission (e-mail masked or clear); `k` makes a new entry. */
const scopedSql = (k: number) =>
  `SELECT c.primary_store_id AS store, count(*)::int AS n, min(c.email) AS first_email FROM retail.customers c WHERE c.customer_id > ${-k} GROUP BY 1 ORDER BY 1`;

interface Caller {
  readonly name: string;
  readonly identity: Identity;
  readonly token: string;
  /** The rows its own read of the database returns for scopedSql (any k). */
  readonly truth: unknown[][];
  readonly storeNames: string[];
}

async function callTool(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

const tierOf = (result: CallToolResult) => (result._meta?.[CACHE_META] as { tier?: string } | undefined)?.tier ?? 'none';

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`scope isolation across every identity pair (${kind})`, { skip: skip || redisSkip }, () => {
    let t: TestDatabase;
    let a: HttpServerProcess;
    let b: HttpServerProcess;
    let keyDir: string;
    let key: SigningKey;
    const callers: Caller[] = [];
    const clients = new Map<string, Client>();
    const prefix = `zava-test-cache-${randomBytes(6).toString('hex')}`;

    before(async () => {
      // The seeded data other suites use too (test/support caches it per run: a directory, a template database).
      t = await createTestDatabase(kind, kind === 'embedded' ? { customers: 120 } : { customers: 40, embeddings: false });
      key = await newSigningKey();
      keyDir = await mkdtemp(path.join(tmpdir(), 'zava-cache-keys-'));
      const pem = createPublicKey({ key: key.jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
      await writeFile(path.join(keyDir, 'public.pem'), pem);
      for (const { name, claims } of TOKEN_CLAIMS) {
        const identity = identityFromClaims({ sub: name, ...claims }, ENTRIES);
        const truth = (await t.db.withIdentity(identity, (session) => session.query(scopedSql(0)))).rows;
        const storeNames = STORES.filter((s) => identity.storeIds === 'all' || identity.storeIds.includes(s.storeId)).map((s) => s.name);
        callers.push({ name, identity, token: await signTestToken({ key, sub: name.replace(/\W+/g, '-'), claims }), truth, storeNames });
      }
      // The scopes really differ: by stores, and by personal data in clear or masked.
      assert.ok(new Set(callers.map((c) => JSON.stringify(c.truth))).size >= STORES.length + 2, 'answers differ by scope');
      const headOffice = callers.filter((c) => c.identity.role === 'head_office').map((c) => JSON.stringify(c.truth));
      assert.notEqual(headOffice[0], headOffice[1], 'pii:read changes the answer');
      const env = {
        ...NO_EMBEDDING_ENV,
        ZAVA_AUTH: 'jwt',
        ZAVA_JWT_PUBLIC_KEY: path.join(keyDir, 'public.pem'),
        REDIS_URL: 'redis://127.0.0.1:6379',
        ZAVA_CACHE_PREFIX: prefix,
        ZAVA_RATE_LIMIT_PER_MINUTE: '0',
      };
      const second = await t.flagsForAnotherProcess();
      await t.db.close(); // an embedded directory admits one process; the server backend's pools are simply closed
      [a, b] = await Promise.all([startHttpServer(t.flags, env), startHttpServer(second, env)]);
    });
    after(async () => {
      for (const client of clients.values()) await client.close().catch(() => undefined);
      await a?.stop();
      await b?.stop();
      await t?.cleanup();
      await rm(keyDir, { recursive: true, force: true });
      const redis = new Redis('redis://127.0.0.1:6379');
      const stale = await redis.keys(`${prefix}:*`);
      if (stale.length > 0) await redis.del(...stale);
      redis.disconnect();
    });

    const client = async (server: HttpServerProcess, caller: Caller) => {
      const id = `${server.url} ${caller.name}`;
      let found = clients.get(id);
      if (!found) {
        found = await connectWithToken(server.url, caller.token);
        clients.set(id, found);
      }
      return found;
    };
    const rowsOf = (result: CallToolResult) => {
      assert.notEqual(result.isError, true, textOf(result));
      return (result.structuredContent as { r: unknown[][] }).r;
    };

    test('execute_sales_query: primed as any identity, every other identity gets its own rows (memory and Redis tiers)', { timeout: 120_000 }, async () => {
      // Pass 1 primes in order, pass 2 (another statement) in reverse: every ordered pair (primer, other) occurs,
      // the other's call coming after the primer's entry exists. Then every identity repeats pass 1's statement
      // on the same process (memory) and on the other process (Redis): each gets its own entry.
      for (const [k, order] of [[1, callers], [2, [...callers].reverse()]] as const) {
        for (const caller of order) {
          const result = await callTool(await client(a, caller), 'execute_sales_query', { postgresql_query: scopedSql(k) });
          assert.deepEqual(rowsOf(result), caller.truth, `${caller.name}, statement ${k}`);
          // Identities of one scope share an entry (a store manager token twice, or head office = all stores);
          // otherwise the first call of an identity is computed for it.
          const sameScopeBefore = order.slice(0, order.indexOf(caller)).some((o) => JSON.stringify(scopeOf(o.identity)) === JSON.stringify(scopeOf(caller.identity)));
          assert.equal(tierOf(result), sameScopeBefore ? 'memory' : 'none', `${caller.name}, statement ${k}`);
        }
      }
      for (const caller of callers) {
        const memory = await callTool(await client(a, caller), 'execute_sales_query', { postgresql_query: scopedSql(1) });
        assert.equal(tierOf(memory), 'memory', caller.name);
        assert.deepEqual(rowsOf(memory), caller.truth, `${caller.name} from memory`);
        const shared = await callTool(await client(b, caller), 'execute_sales_query', { postgresql_query: scopedSql(2) });
        assert.match(tierOf(shared), /^(redis|memory)$/, caller.name);
        assert.deepEqual(rowsOf(shared), caller.truth, `${caller.name} from Redis`);
      }
    });

    test('typed tools and their scope: each identity sees its own stores from a cache primed by the others', { timeout: 120_000 }, async () => {
      for (const caller of callers) {
        for (const server of [a, b]) {
          const result = await callTool(await client(server, caller), 'sales_summary', { period: '2025' });
          assert.notEqual(result.isError, true, textOf(result));
          const covered = (result.structuredContent as { stores_covered: string[] }).stores_covered;
          assert.deepEqual([...covered].sort(), [...caller.storeNames].sort(), `${caller.name} on ${server === a ? 'a' : 'b'} (${tierOf(result)})`);
        }
      }
    });

    test('a data change is seen by the next call on both processes: no stale answer survives it', { timeout: 60_000 }, async () => {
      const headOffice = callers.find((c) => c.identity.role === 'head_office' && c.identity.pii)!;
      const sql = 'SELECT count(*)::int AS n FROM retail.customers';
      const ask = async (server: HttpServerProcess) => rowsOf(await callTool(await client(server, headOffice), 'execute_sales_query', { postgresql_query: sql }))[0]![0];
      const before_ = await ask(a);
      assert.equal(await ask(b), before_);
      // A write from outside both servers (as a seed or an import would be), on the database they share.
      const writer = await openOwner(t);
      try {
        await writer.write(`INSERT INTO zava_data.customers (first_name, last_name, email, primary_store_id) VALUES ('Cache', 'Test', 'cache-${randomBytes(4).toString('hex')}@example.com', 1)`);
        if (kind === 'embedded') return; // each embedded process has its own copy of the data: nothing is shared to change
        // Both learn of the change from its notification (milliseconds); never the old answer once they have.
        await waitFor('process a answers the new count', async () => (await ask(a)) === Number(before_) + 1, { ms: 5_000 });
        await waitFor('process b answers the new count', async () => (await ask(b)) === Number(before_) + 1, { ms: 5_000 });
        for (const server of [a, b]) assert.equal(await ask(server), Number(before_) + 1);
      } finally {
        await writer.close();
      }
    });
  });
}

function scopeOf(identity: Identity) {
  return { role: identity.role, stores: identity.storeIds, pii: identity.pii === true };
}

/** An owner connection to the test's database (server), for writes from outside the servers under test. */
async function openOwner(t: TestDatabase): Promise<{ write(sql: string): Promise<void>; close(): Promise<void> }> {
  if (t.kind === 'embedded') return { write: async () => undefined, close: async () => undefined };
  const client = new pg.Client({ connectionString: t.config.databaseUrl });
  await client.connect();
  return { write: async (sql) => void (await client.query(sql)), close: () => client.end() };
}
