// A realistic session against a spawned server (PostgreSQL service backend, a password in its connection URL and
// for its query role, a bearer token sent along): answered, failing and refused calls, some quoting a customer's
// e-mail. Afterwards the audit trail holds exactly those calls (count and content, read back with
// `zava-mcp audit tail`), a store manager saw masked personal data through the tool, and the server's log holds no
// password, token, e-mail or phone of any customer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { runCli } from './support/cli.js';
import { connectHttp, query, startHttpServer, textOf, type Client, type HttpServerProcess } from './mcp-harness.js';

const DB_PASSWORD = 'Db-Secret-7731xq';
const QUERY_ROLE_PASSWORD = 'Qr-Secret-5521zw';
// A JWT-shaped token: dev mode ignores it; it must not appear in any log line either way.
const TOKEN = 'eyJhbGciOiJFUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJhbGljZSIsInJvbGVzIjpbInN1cGVyX2FkbWluIl19.c2lnbmF0dXJlLW5vdC12YWxpZA';
const SEATTLE = STORES[0]!;

describe('audit trail and log hygiene over a realistic session (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  let http: HttpServerProcess;
  let url: string;
  let customers: Array<[string, string]>;
  before(async () => {
    t = await createTestDatabase('server'); // with the default provider's embeddings, as a server leaves it
    customers = (await t.db.ownerQuery('SELECT email, phone FROM zava_data.customers ORDER BY customer_id')).rows as Array<[string, string]>;
    const withPassword = new URL(t.flags[1]!);
    withPassword.password = DB_PASSWORD;
    url = withPassword.toString();
    http = await startHttpServer(['--database-url', url], { ZAVA_QUERY_ROLE_PASSWORD: QUERY_ROLE_PASSWORD, ZAVA_AUDIT_QUEUE_LIMIT: '1000' });
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
  });

  test('every call is audited exactly, personal data is masked, and the log leaks nothing', async () => {
    const [email, phone] = customers[0]!;
    assert.ok(email.endsWith('@example.com'));
    const head = await connectHttp(http.url, HEAD_OFFICE_USER_ID, 'v2');
    const seattle = await connectHttp(http.url, SEATTLE.managerId, 'v1');
    const nobody = await connectHttp(http.url, undefined, 'v2');
    const calls: Array<{ client: Client; sub: string | null; tool: string; args: Record<string, unknown>; outcome: string; errorClass: string | null; rows?: number }> = [
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'execute_sales_query', args: { postgresql_query: 'SELECT store_name FROM retail.stores ORDER BY store_id' }, outcome: 'ok', errorClass: null, rows: STORES.length },
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'execute_sales_query', args: { postgresql_query: `SELECT * FROM retail.customers WHERE email = '${email}' AND no_such_column = 1` }, outcome: 'error', errorClass: 'query_error' },
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'execute_sales_query', args: { postgresql_query: `SELECT to_tsvector('${email}', 'paint')` }, outcome: 'refused', errorClass: 'guard' },
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'execute_sales_query', args: { postgresql_query: `SELECT pg_sleep(1) FROM retail.customers WHERE phone = '${phone}'` }, outcome: 'refused', errorClass: 'guard' },
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'semantic_search_products', args: { query_description: 'containers for paint' }, outcome: 'ok', errorClass: null },
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'get_multiple_table_schemas', args: { table_names: ['retail.customers'] }, outcome: 'ok', errorClass: null },
      { client: head, sub: HEAD_OFFICE_USER_ID, tool: 'get_current_utc_date', args: {}, outcome: 'ok', errorClass: null },
      { client: seattle, sub: SEATTLE.managerId, tool: 'execute_sales_query', args: { postgresql_query: 'SELECT email, phone FROM retail.customers ORDER BY customer_id LIMIT 3' }, outcome: 'ok', errorClass: null, rows: 3 },
      { client: seattle, sub: SEATTLE.managerId, tool: 'get_multiple_table_schemas', args: { table_names: ['customers', 'stores'] }, outcome: 'ok', errorClass: null },
      { client: nobody, sub: null, tool: 'execute_sales_query', args: { postgresql_query: 'SELECT count(*) FROM retail.orders' }, outcome: 'refused', errorClass: 'identity' },
    ];
    const answers: string[] = [];
    for (const call of calls) answers.push(textOf(await call.client.callTool({ name: call.tool, arguments: call.args })));
    // The token travels as a client would send it (dev mode does not use it).
    const raw = await fetch(http.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'x-rls-user-id': HEAD_OFFICE_USER_ID, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'nope', arguments: {} } }),
    });
    await raw.text();

    // Masked for the store manager, through the tool as through SQL; the schema answer says so.
    const masked = await query(seattle, 'SELECT email, phone FROM retail.customers ORDER BY customer_id LIMIT 3');
    calls.push({ client: seattle, sub: SEATTLE.managerId, tool: 'execute_sales_query', args: { postgresql_query: 'SELECT email, phone FROM retail.customers ORDER BY customer_id LIMIT 3' }, outcome: 'ok', errorClass: null, rows: 3 });
    for (const [e, p] of masked.result.r as Array<[string, string]>) {
      assert.match(e, /^[a-z]\*\*\*@example\.com$/);
      assert.match(p, /^\*\*\*-\*\*\*-\d{4}$/);
    }
    assert.match(answers[8]!, /masked/);
    assert.match(answers[2]!, /query refused/);

    for (const client of [head, seattle, nobody]) await client.close();
    assert.equal(await http.stop(), 0, 'a clean shutdown flushes the audit queue');

    // The audit trail: exactly these calls, in order, with their content.
    const rows = (await t.db.ownerQuery(
      `SELECT sub, user_id, store_scope, tool, request_text, outcome, error_class, row_count, client_name, request_id, duration_ms, refusal
         FROM zava_audit.tool_calls ORDER BY id`,
    )).rows;
    assert.equal(rows.length, calls.length, `one row per call: ${JSON.stringify(rows.map((r) => r[3]))}`);
    const textOfArgs = (args: Record<string, unknown>) =>
      (args['postgresql_query'] ?? args['query_description'] ?? (Array.isArray(args['table_names']) ? (args['table_names'] as string[]).join(', ') : null)) as string | null;
    calls.forEach((call, i) => {
      const [sub, userId, scope, tool, text, outcome, errorClass, rowCount, clientName, requestId, duration, refusal] = rows[i]!;
      const label = `call ${i} (${call.tool})`;
      assert.equal(tool, call.tool, label);
      assert.equal(sub, call.sub, label);
      assert.equal(userId, call.sub, label);
      assert.equal(scope, call.sub === HEAD_OFFICE_USER_ID ? '*' : call.sub === null ? null : String(SEATTLE.storeId), label);
      assert.equal(text, textOfArgs(call.args), label);
      assert.equal(outcome, call.outcome, label);
      assert.equal(errorClass, call.errorClass, label);
      if (call.rows !== undefined) assert.equal(rowCount, call.rows, label);
      assert.equal(clientName, 'zava-mcp-tests', label);
      assert.ok(requestId !== null && Number(duration) >= 0, label);
      if (call.outcome === 'refused') assert.ok(typeof refusal === 'string' && refusal.length > 0, label);
    });

    // audit tail reads it back, filtered by subject.
    const tail = await runCli(['audit', 'tail', '--database-url', url, '--sub', SEATTLE.managerId, '--json']);
    assert.equal(tail.code, 0, tail.stderr);
    const tailed = tail.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(tailed.map((r) => r['tool']), ['execute_sales_query', 'get_multiple_table_schemas', 'execute_sales_query']);
    const human = await runCli(['audit', 'tail', '--database-url', url, '--since', '1h', '--limit', '2']);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout.trim().split('\n').length, 2);
    assert.match(human.stdout, /execute_sales_query/);

    // The log: it says what happened, and nothing secret or personal.
    const log = http.stderr() + tail.stderr + human.stderr;
    assert.match(log, /query refused by the SQL guard/);
    assert.ok(log.includes(`${email[0]}***@example.com`), 'the refusal quoting the e-mail was logged, scrubbed');
    for (const secret of [DB_PASSWORD, QUERY_ROLE_PASSWORD, TOKEN, TOKEN.split('.')[1]!]) assert.ok(!log.includes(secret), `the log holds ${secret.slice(0, 12)}…`);
    for (const [e, p] of customers) {
      assert.ok(!log.includes(e), `the log holds the e-mail ${e}`);
      assert.ok(!log.includes(p), `the log holds the phone ${p}`);
    }
  });
});
