// Tool reads on a hot standby (ZAVA_READ_REPLICA_URLS): a primary of this test's own and a standby made from it
// with pg_basebackup -R; the server sends identity-scoped reads to the standby (seen in its pg_stat_activity),
// RLS is exact there for every identity, and when the standby stops the reads fall back to the primary and
// return to the standby once it answers again. The shared PostgreSQL service is never touched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { PG_ADMIN_URL, serverUnavailableReason } from './support/databases.js';
import { ReadRouter } from '../src/db/server/read-router.js';
import { DatabaseUnavailableError } from '../src/infra/errors.js';
import { freePort, OwnCluster } from './support/cluster.js';
import { connectHttp, query, startHttpServer, type HttpServerProcess } from './mcp-harness.js';
import { waitFor } from './support/wait.js';

async function sql<T extends Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Query-role backends connected to a cluster right now. */
async function queryRoleBackends(cluster: OwnCluster): Promise<number> {
  const rows = await sql<{ n: number }>(cluster.url(), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'zava_query'`);
  return rows[0]!.n;
}

/** A check that throws (a server that is down) counts as "not yet". */
const patiently = (ms = 20_000) => ({ ms, everyMs: 100, ignoreErrors: true });

describe('reads on a hot standby (own primary and standby)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let primary: OwnCluster;
  let standby: OwnCluster;
  let http: HttpServerProcess;
  let truth: Map<number, string>;

  before(async () => {
    primary = await OwnCluster.create();
    await primary.seed();
    standby = await OwnCluster.standbyOf(primary);
    // Ground truth from the primary, as its owner: each store's order count.
    const rows = await sql<{ store_id: number; n: string }>(primary.url(), 'SELECT store_id, count(*)::text AS n FROM retail.orders GROUP BY 1');
    truth = new Map(rows.map((r) => [r.store_id, r.n]));
    await waitFor('the standby replays the seed', async () => (await sql<{ n: string }>(standby.url(), 'SELECT count(*)::text AS n FROM retail.orders'))[0]!.n === [...truth.values()].reduce((a, b) => String(Number(a) + Number(b))), patiently());
    http = await startHttpServer(['--database-url', primary.url()], {
      ZAVA_READ_REPLICA_URLS: standby.url('postgres', 'zava_query'),
      ZAVA_POOL_CONNECT_TIMEOUT_MS: '1000',
      // Where reads go is the subject here: every call must reach a database, not the result cache
      // (test/cache-faults.test.ts covers the cache on a standby).
      ZAVA_CACHE: 'off',
    });
  });
  after(async () => {
    await http?.stop();
    standby?.destroy();
    primary?.destroy();
  });

  test('identity-scoped reads run on the standby, with RLS exact there for every identity', { timeout: 120_000 }, async () => {
    for (const store of STORES) {
      const client = await connectHttp(http.url, store.managerId);
      try {
        const answer = await query(client, 'SELECT store_id, count(*)::text AS n FROM retail.orders GROUP BY 1');
        assert.equal(answer.isError, false, JSON.stringify(answer.result));
        assert.deepEqual(answer.result.r, [[store.storeId, truth.get(store.storeId)]], store.name);
      } finally {
        await client.close();
      }
    }
    const hq = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
    try {
      const all = await query(hq, 'SELECT store_id, count(*)::text AS n FROM retail.orders GROUP BY 1 ORDER BY 1');
      assert.deepEqual(all.result.r, [...truth].sort((a, b) => a[0] - b[0]));
    } finally {
      await hq.close();
    }
    assert.ok((await queryRoleBackends(standby)) >= 1, 'the query role is connected to the standby');
    assert.equal(await queryRoleBackends(primary), 0, 'and not to the primary');
  });

  test('a standby that stops is taken out (reads fall back to the primary) and put back when it returns', { timeout: 120_000 }, async () => {
    const client = await connectHttp(http.url, STORES[1]!.managerId);
    const expected = [[STORES[1]!.storeId, truth.get(STORES[1]!.storeId)]];
    const ask = async () => {
      const answer = await query(client, 'SELECT store_id, count(*)::text AS n FROM retail.orders GROUP BY 1');
      return !answer.isError && JSON.stringify(answer.result.r) === JSON.stringify(expected);
    };
    try {
      assert.ok(await ask());
      standby.stop('fast');
      // The call that meets the dead standby is retried elsewhere; within seconds every call is answered by the primary.
      const fellBack = await waitFor('reads answered by the primary', async () => (await ask()) && (await queryRoleBackends(primary)) >= 1, patiently(10_000));
      let failures = 0;
      for (let i = 0; i < 10; i++) if (!(await ask())) failures++;
      assert.equal(failures, 0, 'no call fails while the primary answers');
      standby.start();
      const back = await waitFor(
        'reads back on the standby',
        async () => {
          await ask();
          return (await queryRoleBackends(standby)) >= 1;
        },
        patiently(15_000),
      );
      assert.ok(fellBack < 10_000 && back < 15_000, `fell back in ${fellBack} ms, back on the standby in ${back} ms`);
      assert.ok(await ask());
    } finally {
      await client.close();
    }
  });
});

describe('the read router', { skip: (await serverUnavailableReason()) ?? false }, () => {
  test('no standby answering: the primary takes the reads, or they are refused when configured', async () => {
    const port = await freePort(); // nothing listens there
    const make = (fallback: 'primary' | 'fail') => {
      const warnings: string[] = [];
      const router = new ReadRouter(
        ReadRouter.target(PG_ADMIN_URL, 'primary', new pg.Pool({ connectionString: PG_ADMIN_URL, max: 1 })),
        [ReadRouter.target(`postgres://zava_query:pw@127.0.0.1:${port}/x`, 'standby', new pg.Pool({ connectionString: `postgres://zava_query:pw@127.0.0.1:${port}/x`, max: 1, connectionTimeoutMillis: 500 }))],
        { fallback, warn: (m) => warnings.push(m), probeIntervalMs: 60_000 },
      );
      return { router, warnings };
    };
    const primaryFirst = make('primary');
    try {
      const { client, target } = await primaryFirst.router.connect();
      client.release();
      assert.equal(target.role, 'primary');
      assert.equal(primaryFirst.router.healthyStandbys, 0);
      assert.match(primaryFirst.warnings[0]!, /read replica postgres:\/\/zava_query:\*\*\*@127\.0\.0\.1:\d+\/x stopped answering/, 'named without its password');
    } finally {
      await primaryFirst.router.close();
    }
    const strict = make('fail');
    try {
      await assert.rejects(strict.router.connect(), (e: unknown) => e instanceof DatabaseUnavailableError && /ZAVA_READ_REPLICA_FALLBACK=fail/.test(e.message));
    } finally {
      await strict.router.close();
    }
  });
});
