// Hostile input through the real server: malformed JSON-RPC, huge and deeply nested SQL, every refused
// statement kind, identity-changing SQL, a query cancelled at the statement timeout while others still answer,
// unknown tables, and a graceful shutdown that drains a call in progress. Afterwards every table is unchanged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { openDatabase } from '../src/db/open.js';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';
import { connectHttp, databaseChecksum, query, startHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';

const SEATTLE = STORES[0]!;
const TIMEOUT_MS = 1500;

/** Statements the server must refuse (guard first, READ ONLY transaction and RLS behind it). */
const REFUSED = [
  'SELECT 1; SELECT 2',
  'SELECT 1; DELETE FROM retail.orders',
  "/* hello */ sElEcT 1; dElEtE FROM retail.orders",
  "SELECT $$x$$; DROP TABLE retail.orders",
  "INSERT INTO retail.stores VALUES (99, 'Fake', '11111111-1111-1111-1111-111111111111', false, 'Nowhere')",
  'UPDATE retail.products SET base_price = 0.01',
  'DELETE FROM retail.order_items',
  'TRUNCATE retail.orders',
  'DROP TABLE retail.orders',
  'CREATE TABLE retail.stolen AS SELECT * FROM retail.customers',
  'ALTER TABLE retail.orders DISABLE ROW LEVEL SECURITY',
  'WITH gone AS (DELETE FROM retail.orders RETURNING *) SELECT count(*) FROM gone',
  'SELECT * INTO retail.copy_of_orders FROM retail.orders',
  'SELECT * FROM retail.orders FOR UPDATE',
  'SELECT * FROM retail.inventory FOR SHARE',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'START TRANSACTION READ WRITE',
  "SET zava.ctx = 'v1.0.0.*.0.forged'",
  'RESET ALL',
  'SET ROLE postgres',
  'SET SESSION AUTHORIZATION postgres',
  'COPY retail.customers TO STDOUT',
  "COPY retail.customers TO '/tmp/zava-customers.csv'",
  'CALL retail.nothing()',
  'DO $$BEGIN DELETE FROM retail.orders; END$$',
  'LISTEN zava',
  "NOTIFY zava, 'hello'",
  'PREPARE p AS SELECT 1',
  'VACUUM retail.orders',
  'LOCK TABLE retail.orders',
  'GRANT ALL ON retail.orders TO PUBLIC',
  "SELECT set_config('zava.ctx', 'v1.0.0.*.0.forged', false)",
  "SELECT set_config('role', 'postgres', false)",
  'SELECT pg_advisory_lock(42)',
  "SELECT pg_read_file('/etc/passwd')",
  "SELECT lo_import('/etc/passwd')",
  "SELECT nextval('retail.orders_order_id_seq')",
  'SELECT pg_terminate_backend(pg_backend_pid())',
  "SELECT query_to_xml('DELETE FROM retail.orders RETURNING 1', true, true, '')",
  "SELECT * FROM dblink('host=127.0.0.1', 'SELECT 1') AS t(x int)",
  'EXPLAIN ANALYZE DELETE FROM retail.orders',
  'EXPLAIN ANALYZE SELECT count(*) FROM retail.orders',
  'SELECT * FROM zava_private.context_key',
  'SELECT * FROM zava_private.regional_managers',
];

/** Calls that try to become someone else; the next call from the same identity must still see its own rows. */
const IDENTITY_CHANGES = [
  "SELECT set_config('zava.ctx', 'v1.0.0.*.0.0', false)",
  "SET zava.ctx TO 'v1.0.0.*.0.0'",
  'SET ROLE zava_query',
  "SELECT set_config('search_path', 'public', false)",
  'RESET zava.ctx',
  "SELECT current_setting('zava.ctx')",
];

const SEATTLE_ORDERS = 'SELECT count(*) AS orders, min(store_id) AS lo, max(store_id) AS hi FROM retail.orders';

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return client.callTool({ name, arguments: args });
}

async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  return { status: response.status, body: await response.text() };
}

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`hostile input through the MCP server on the ${kind} backend`, { skip }, () => {
    let t: TestDatabase;
    let http: HttpServerProcess;
    let seattle: Client;
    let headOffice: Client;
    let before_: Record<string, string>;
    let seattleOrders: number;

    before(async () => {
      // Seeded with the default provider's embeddings, as a server leaves it: the checksum covers them too.
      t = await createTestDatabase(kind, { customers: 120 });
      before_ = await databaseChecksum(t.db);
      seattleOrders = Number((await t.db.ownerQuery(`SELECT count(*) FROM retail.orders WHERE store_id = ${SEATTLE.storeId}`)).rows[0]![0]);
      if (kind === 'embedded') await t.db.close();
      http = await startHttpServer(t.flags, { ZAVA_STATEMENT_TIMEOUT_MS: String(TIMEOUT_MS) });
      seattle = await connectHttp(http.url, SEATTLE.managerId, 'v2');
      headOffice = await connectHttp(http.url, HEAD_OFFICE_USER_ID, 'v1');
    });
    after(async () => {
      await seattle?.close().catch(() => undefined);
      await headOffice?.close().catch(() => undefined);
      await http?.stop('SIGKILL');
      await t?.cleanup();
    });

    async function seattleStillSeesOnlyItsOwn(): Promise<void> {
      const answer = await query(seattle, SEATTLE_ORDERS);
      assert.equal(answer.isError, false, answer.result.err);
      assert.deepEqual(answer.result.r, [[seattleOrders, SEATTLE.storeId, SEATTLE.storeId]]);
    }

    test('malformed JSON-RPC and wrong HTTP usage get clear protocol errors', async () => {
      const parse = await post(http.url, '{"jsonrpc": "2.0", "id": 1, "method": ');
      assert.equal(parse.status, 400);
      assert.equal(JSON.parse(parse.body).error.code, -32700);
      const notRpc = await post(http.url, '{"hello": "world"}');
      assert.equal(notRpc.status, 400);
      assert.ok(JSON.parse(notRpc.body).error);
      const batchOfJunk = await post(http.url, '[1, 2, 3]');
      assert.equal(batchOfJunk.status, 400);
      const unknownMethod = await post(http.url, '{"jsonrpc":"2.0","id":7,"method":"tools/destroy","params":{}}');
      assert.equal(JSON.parse(unknownMethod.body).error.code, -32601);
      const wrongParams = await post(http.url, '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":42}}');
      assert.ok(JSON.parse(wrongParams.body).error);
      const noAccept = await fetch(http.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      assert.equal(noAccept.status, 406);
      const wrongType = await post(http.url, 'SELECT 1', { 'content-type': 'text/plain' });
      assert.equal(wrongType.status, 415);
      const tooBig = await post(http.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(5 * 1024 * 1024) } }));
      assert.equal(tooBig.status, 413);
      assert.equal((await fetch(http.url)).status, 405);
      assert.equal((await fetch(http.url, { method: 'DELETE' })).status, 405);
      assert.equal((await fetch(new URL('/nope', http.url))).status, 404);
      const foreign = await post(http.url, '{"jsonrpc":"2.0","id":1,"method":"ping"}', { origin: 'https://evil.example' });
      assert.equal(foreign.status, 403, 'DNS-rebinding protection refuses foreign origins');
      const ping = await post(http.url, '{"jsonrpc":"2.0","id":9,"method":"ping"}');
      assert.equal(ping.status, 200);
      assert.deepEqual(JSON.parse(ping.body).result, {});
      for (const body of [parse.body, notRpc.body, wrongParams.body]) assert.doesNotMatch(body, /\.js:\d+/, 'no stack traces');
    });

    test('a 1 MB query is refused before it is parsed, and the echo is short', async () => {
      const huge = `SELECT 1 -- ${'x'.repeat(1024 * 1024)}`;
      const answer = await query(seattle, huge);
      assert.equal(answer.isError, true);
      assert.match(answer.result.err!, /characters long; the limit is/);
      assert.ok(answer.result.q!.length < 3000);
    });

    test('deeply nested expressions are answered or refused, never crash the server', async () => {
      for (const sql of [
        `SELECT ${'('.repeat(3000)}1${')'.repeat(3000)}`,
        `SELECT ${'NOT '.repeat(3000)}true`,
        `SELECT ${Array.from({ length: 2000 }, (_, i) => `${i}`).join(' + ')}`,
        `SELECT 1 FROM ${'(SELECT 1 FROM '.repeat(300)}retail.stores${') s'.repeat(300)}`,
      ]) {
        const answer = await query(seattle, sql);
        if (answer.isError) assert.ok(answer.result.err!.length > 0);
        assert.doesNotMatch(answer.result.err ?? '', /\.js:\d+/);
      }
      assert.equal(textOf(await call(seattle, 'get_current_utc_date', {})).length, 24);
    });

    test('every refused statement kind is refused with a clear error and no rows', async () => {
      for (const sql of REFUSED) {
        const answer = await query(headOffice, sql);
        assert.equal(answer.isError, true, `must be refused: ${sql}\n→ ${JSON.stringify(answer.result)}`);
        assert.equal(answer.result.n, 0);
        assert.deepEqual(answer.result.r, []);
        assert.ok(answer.result.err && answer.result.err.length > 10, sql);
        assert.doesNotMatch(answer.result.err!, /\.js:\d+/);
      }
    });

    test('queries that try to change identity change nothing: the next call sees only its own store', async () => {
      for (const sql of IDENTITY_CHANGES) {
        await query(seattle, sql);
        await seattleStillSeesOnlyItsOwn();
      }
      // Forged identity inside the SQL text, or a second header, does not widen anything either.
      const spoof = await query(seattle, `SELECT count(*) FROM retail.orders /* x-rls-user-id: ${HEAD_OFFICE_USER_ID} */`);
      assert.deepEqual(spoof.result.r, [[seattleOrders]]);
    });

    test('unknown tables and columns: PostgreSQL\'s message, usable by a model', async () => {
      for (const sql of ['SELECT * FROM retail.employees', 'SELECT * FROM employees', 'SELECT salary FROM retail.stores']) {
        const answer = await query(seattle, sql);
        assert.equal(answer.isError, true);
        assert.match(answer.result.err!, /does not exist/);
        assert.equal(answer.result.q, sql);
      }
    });

    test('pg_sleep(60) and a runaway join are cancelled at the timeout while other calls keep answering', async () => {
      const started = Date.now();
      const sleeper = query(headOffice, 'SELECT count(*) FROM pg_sleep(60)').then((answer) => ({ answer, ms: Date.now() - started }));
      const runaway = query(headOffice, 'SELECT count(*) FROM retail.order_items a, retail.order_items b, retail.order_items c, retail.order_items d').then(
        (answer) => ({ answer, ms: Date.now() - started }),
      );
      // Calls that need no query answer at once; schema answers come from the cache.
      await call(seattle, 'get_multiple_table_schemas', { table_names: ['retail.orders'] });
      const quick = Date.now();
      const date = await call(seattle, 'get_current_utc_date', {});
      const schema = await call(seattle, 'get_multiple_table_schemas', { table_names: ['retail.stores', 'retail.orders'] });
      assert.equal(date.isError, undefined);
      assert.equal(schema.isError, undefined);
      assert.ok(Date.now() - quick < 1000, 'cached and clock answers do not wait for the slow queries');
      // Other identities' queries still get their own answers (on PGlite, after the cancelled one).
      await seattleStillSeesOnlyItsOwn();
      const [slept, ran] = await Promise.all([sleeper, runaway]);
      for (const { answer, ms } of [slept, ran]) {
        assert.equal(answer.isError, true);
        assert.ok(ms < 60_000 / 2, `cancelled long before it would finish (${ms} ms)`);
      }
      // The runaway join is plain SELECT: the guard lets it through, and the timeout must stop it.
      assert.match(ran.answer.result.err!, /statement timeout/);
      assert.ok(ran.ms < TIMEOUT_MS * 4 + 5000, `runaway join answered after ${ran.ms} ms`);
      await seattleStillSeesOnlyItsOwn();
    });

    test('SIGTERM drains a call in progress, refuses new work, exits 0; every table is unchanged', async () => {
      const inFlight = query(headOffice, 'SELECT count(*) FROM retail.order_items a, retail.order_items b, retail.order_items c, retail.order_items d');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const exit = http.stop('SIGTERM');
      const answer = await inFlight;
      assert.ok(answer.result.err !== undefined || answer.result.n === 1, 'the call in progress got its answer');
      assert.equal(await exit, 0);
      await assert.rejects(fetch(http.url, { method: 'POST' }), 'no longer accepting');
      if (kind === 'embedded') {
        const db = await openDatabase(t.config);
        try {
          assert.deepEqual(await databaseChecksum(db), before_);
        } finally {
          await db.close();
        }
      } else {
        assert.deepEqual(await databaseChecksum(t.db), before_);
      }
    });
  });
}
