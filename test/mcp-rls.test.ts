// Row Level Security through the tools: every identity sees exactly its own rows (ground truth read as the
// owner before the server starts), 50 concurrent calls from mixed identities each get their own answers, and a
// missing or unknown identity gets a clear error and no data, never head office. Identities alternate between
// the v1 (2025-era) and v2 (2026-07-28) SDK clients, so the concurrent calls mix both eras on one server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { runCli } from './support/cli.js';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';
import { PROBE, normalize, truthSql } from './support/rls-probe.js';
import { CLIENT_KINDS, connectHttp, connectStdio, query, startHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';


interface Who {
  readonly label: string;
  readonly userId: string;
  readonly storeIds: readonly number[];
}

const IDENTITIES: Who[] = [
  { label: 'head office', userId: HEAD_OFFICE_USER_ID, storeIds: STORES.map((s) => s.storeId) },
  ...STORES.map((s) => ({ label: s.name, userId: s.managerId, storeIds: [s.storeId] })),
  ...REGIONAL_MANAGERS.map((m) => ({
    label: m.name,
    userId: m.managerId,
    storeIds: STORES.filter((s) => m.regions.includes(s.region)).map((s) => s.storeId),
  })),
];


async function expectNoIdentity(client: Client, pattern: RegExp): Promise<void> {
  const answer = await query(client, 'SELECT count(*) FROM retail.orders');
  assert.equal(answer.isError, true);
  assert.deepEqual({ ...answer.result, err: '' }, { err: '', code: 'AUTHORIZATION_ERROR', q: 'SELECT count(*) FROM retail.orders', c: [], r: [], n: 0 });
  assert.match(answer.result.err!, pattern);
  const schemas = await client.callTool({ name: 'get_multiple_table_schemas', arguments: { table_names: ['retail.stores'] } });
  assert.equal(schemas.isError, true);
  assert.doesNotMatch(textOf(schemas), /Zava Retail Seattle/, 'no data without an identity');
  assert.match(textOf(schemas), pattern);
}

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`RLS through the MCP tools on the ${kind} backend`, { skip }, () => {
    let t: TestDatabase;
    const truth = new Map<string, unknown[]>();

    before(async () => {
      t = await createTestDatabase(kind, { customers: 120 });
      for (const who of IDENTITIES) truth.set(who.userId, normalize((await t.db.ownerQuery(truthSql(who.storeIds))).rows[0]!));
      // Every store has rows, so "sees exactly its rows" is not vacuous.
      for (const store of STORES) assert.ok(Number(truth.get(store.managerId)![0]) > 0, `${store.name} has orders`);
      if (kind === 'embedded') await t.db.close();
    });
    after(async () => {
      await t?.cleanup();
    });

    describe('over HTTP (identity from x-rls-user-id)', () => {
      let http: HttpServerProcess;
      const clients = new Map<string, Client>();

      before(async () => {
        http = await startHttpServer(t.flags);
        for (const [i, who] of IDENTITIES.entries()) clients.set(who.userId, await connectHttp(http.url, who.userId, CLIENT_KINDS[i % 2]));
      });
      after(async () => {
        for (const client of clients.values()) await client.close().catch(() => undefined);
        await http?.stop();
      });

      test('each identity sees exactly its own rows', async () => {
        for (const who of IDENTITIES) {
          const answer = await query(clients.get(who.userId)!, PROBE);
          assert.equal(answer.isError, false, `${who.label}: ${answer.result.err}`);
          assert.deepEqual(normalize(answer.result.r[0]!), truth.get(who.userId), who.label);
        }
      });

      test('50 concurrent calls from mixed identities each get their own answers', async () => {
        const calls = Array.from({ length: 50 }, (_, i) => IDENTITIES[(i * 7) % IDENTITIES.length]!);
        const answers = await Promise.all(calls.map((who) => query(clients.get(who.userId)!, PROBE)));
        answers.forEach((answer, i) => {
          const who = calls[i]!;
          assert.equal(answer.isError, false, `${who.label}: ${answer.result.err}`);
          assert.deepEqual(normalize(answer.result.r[0]!), truth.get(who.userId), `call ${i} (${who.label})`);
        });
      });

      test('sales by store: a store manager gets its store only; head office gets all eight', async () => {
        const sql = 'SELECT s.store_name, sum(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.stores s ON s.store_id = oi.store_id GROUP BY s.store_name ORDER BY s.store_name';
        const redmond = await query(clients.get(STORES[5]!.managerId)!, sql);
        assert.deepEqual(redmond.result.r.map((row) => row[0]), [STORES[5]!.name]);
        const all = await query(clients.get(HEAD_OFFICE_USER_ID)!, sql);
        assert.equal(all.result.n, STORES.length);
      });

      test('no header, an unknown UUID or a malformed id: a clear error and no data, never head office', async () => {
        const nobody = await connectHttp(http.url, undefined, 'v1');
        const stranger = await connectHttp(http.url, randomUUID(), 'v2');
        const garbage = await connectHttp(http.url, "' OR 1=1 --", 'v2');
        try {
          await expectNoIdentity(nobody, /no identity given: set the x-rls-user-id header/);
          await expectNoIdentity(stranger, /unknown identity/);
          await expectNoIdentity(garbage, /is not a UUID/);
        } finally {
          await Promise.all([nobody.close(), stranger.close(), garbage.close()]);
        }
      });
    });

    describe('over stdio (identity from --rls-user-id)', () => {
      for (const [i, who] of [IDENTITIES[1]!, IDENTITIES[IDENTITIES.length - 1]!].entries()) {
        test(`${who.label} sees exactly its own rows (${CLIENT_KINDS[i]} client)`, async () => {
          const stdio = await connectStdio(t.flags, who.userId, {}, CLIENT_KINDS[i]);
          try {
            const answer = await query(stdio.client, PROBE);
            assert.equal(answer.isError, false, answer.result.err);
            assert.deepEqual(normalize(answer.result.r[0]!), truth.get(who.userId));
          } finally {
            await stdio.close();
          }
        });
      }

      test('without --rls-user-id: a clear error and no data; with an unknown one: refused at start', async () => {
        const nobody = await connectStdio(t.flags, undefined, {}, 'v1');
        try {
          await expectNoIdentity(nobody.client, /no identity given/);
        } finally {
          await nobody.close();
        }
        // An identity that names no manager is the operator's mistake: the server does not start (issue 10).
        const stranger = randomUUID();
        const refused = await runCli(['serve', '--stdio', ...t.flags, '--rls-user-id', stranger]);
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, new RegExp(`unknown identity ${stranger}`));
        assert.equal(refused.stdout, '', 'no protocol output, so no data');
      });
    });
  });
}
