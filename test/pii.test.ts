// Personal data (issue 11), on both backends: a matrix of SQL shapes that try to reach a customer's clear e-mail
// or phone, or a store manager's UUID, without the permission. Every shape runs straight through withIdentity
// (PostgreSQL alone must mask, whatever the guard says) and through the SQL guard as a tool call would; no answer
// may contain a clear value, a recognisable part of one, or its md5. Head office with pii sees clear values; the
// owner (seeding, ground truth) still reads everything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { createHash } from 'node:crypto';
import { loadSqlGuard, type SqlGuard } from '../src/analytics/guard.js';
import { SchemaService } from '../src/analytics/schema.js';
import type { Identity } from '../src/db/types.js';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';

const SEATTLE = STORES[0]!;
const STORE_MANAGER: Identity = { userId: SEATTLE.managerId, role: 'store_manager', storeIds: [SEATTLE.storeId] };
const HEAD_OFFICE_NO_PII: Identity = { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all', pii: false };
const HEAD_OFFICE: Identity = { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all', pii: true };
const MANAGER_WITH_PII: Identity = { ...STORE_MANAGER, pii: true };

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** Shapes of SQL a caller might use to get at e-mail, phone or a manager id. `E` is a clear e-mail, `P` a clear phone. */
function piiShapes(E: string, P: string): Array<[name: string, sql: string]> {
  const q = (text: string) => `'${text.replaceAll("'", "''")}'`;
  return [
    ['select *', 'SELECT * FROM retail.customers'],
    ['concatenation', "SELECT email || '', '' || phone, concat(email, phone), email || phone FROM retail.customers"],
    ['lower/upper/initcap', 'SELECT lower(email), upper(email), initcap(phone) FROM retail.customers'],
    ['left/right/substr', 'SELECT left(phone, 3), right(email, 30), substr(email, 1, 8), substring(phone from 1 for 6), split_part(email, \'@\', 1) FROM retail.customers'],
    ['regexp', "SELECT regexp_replace(email, '(.)', '\\1 ', 'g'), regexp_replace(phone, '[^0-9]', '', 'g'), translate(email, 'abc', 'xyz') FROM retail.customers"],
    ['join', 'SELECT o.order_id, c.email, c.phone FROM retail.orders o JOIN retail.customers c USING (customer_id)'],
    ['cte', 'WITH x AS (SELECT email AS e, phone AS p FROM retail.customers) SELECT e, p FROM x'],
    ['recursive cte', 'WITH RECURSIVE r(e, n) AS (SELECT email, 1 FROM retail.customers UNION ALL SELECT e, n + 1 FROM r WHERE n < 2) SELECT * FROM r'],
    ['scalar subquery', 'SELECT (SELECT email FROM retail.customers ORDER BY customer_id LIMIT 1), (SELECT phone FROM retail.customers ORDER BY customer_id LIMIT 1)'],
    ['derived table', 'SELECT * FROM (SELECT customer_id, email, phone FROM retail.customers) AS c'],
    ['lateral', 'SELECT o.order_id, x.email FROM retail.orders o, LATERAL (SELECT email FROM retail.customers c WHERE c.customer_id = o.customer_id) x'],
    ['union', 'SELECT email FROM retail.customers UNION SELECT phone FROM retail.customers'],
    ['equality test', `SELECT count(*) AS n FROM retail.customers WHERE email = ${q(E)} OR phone = ${q(P)}`],
    ['like test', `SELECT count(*) AS n FROM retail.customers WHERE email LIKE ${q(`${E.slice(0, 3)}%`)} OR phone LIKE ${q(`${P.slice(0, 5)}%`)}`],
    ['in test', `SELECT customer_id FROM retail.customers WHERE email IN (${q(E)}) OR lower(email) = lower(${q(E)})`],
    ['order by', 'SELECT customer_id FROM retail.customers ORDER BY email, phone'],
    ['string_agg', "SELECT string_agg(email, ',' ORDER BY email), string_agg(phone, ',') FROM retail.customers"],
    ['array_agg / json_agg', 'SELECT array_agg(email), json_agg(phone), jsonb_agg(c) FROM retail.customers c'],
    ['row_to_json', 'SELECT row_to_json(c), to_jsonb(c), to_json(c.*) FROM retail.customers c'],
    ['whole-row text', 'SELECT c::text, c FROM retail.customers c'],
    ['json_build_object', "SELECT json_build_object('e', email, 'p', phone) FROM retail.customers"],
    ['casts', 'SELECT email::bytea, phone::varchar(40), email::text::bytea, CAST(phone AS char(30)) FROM retail.customers'],
    ['md5 / sha256', "SELECT md5(email), md5(phone), encode(sha256(email::bytea), 'hex') FROM retail.customers"],
    ['window', 'SELECT lag(email) OVER (ORDER BY customer_id), first_value(phone) OVER () FROM retail.customers'],
    ['group by', 'SELECT email, phone, count(*) FROM retail.customers GROUP BY email, phone'],
    ['case on value', `SELECT CASE WHEN email = ${q(E)} THEN 'yes' ELSE 'no' END AS hit FROM retail.customers`],
    ['position probe', `SELECT count(*) FILTER (WHERE strpos(email, ${q(E.slice(1, 6))}) > 0) AS hits FROM retail.customers`],
    ['length leak', 'SELECT length(email), octet_length(phone) FROM retail.customers'],
    ['format', "SELECT format('%s|%s', email, phone) FROM retail.customers"],
    ['to_tsvector', "SELECT to_tsvector('simple', email) FROM retail.customers"],
    ['exists probe', `SELECT EXISTS (SELECT 1 FROM retail.customers WHERE email = ${q(E)}) AS hit`],
    ['base table', 'SELECT email FROM zava_data.customers'],
  ];
}

function storeShapes(U: string): Array<[name: string, sql: string]> {
  return [
    ['stores select *', 'SELECT * FROM retail.stores'],
    ['stores cast and json', 'SELECT rls_user_id::text, row_to_json(s), s::text, upper(rls_user_id) FROM retail.stores s'],
    ['stores equality', `SELECT count(*) AS n FROM retail.stores WHERE rls_user_id = '${U}' OR rls_user_id::text LIKE '${U.slice(0, 8)}%'`],
    ['stores join', 'SELECT o.order_id, s.rls_user_id FROM retail.orders o JOIN retail.stores s USING (store_id)'],
    ['stores agg', "SELECT string_agg(rls_user_id, ',') FROM retail.stores"],
    ['stores base table', 'SELECT rls_user_id FROM zava_data.stores'],
  ];
}

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`personal data masking (${kind})`, { skip }, () => {
    let t: TestDatabase;
    let guard: SqlGuard;
    let customers: Array<{ email: string; phone: string }>;
    let managerIds: string[];
    before(async () => {
      t = await createTestDatabase(kind);
      guard = await loadSqlGuard();
      // Every customer, not only Seattle's: a join must not reach another store's either.
      // customer_id runs 1..n, so customers[id - 1] is customer id.
      customers = (await t.db.ownerQuery('SELECT email, phone FROM zava_data.customers ORDER BY customer_id')).rows.map(([email, phone]) => ({
        email: String(email),
        phone: String(phone),
      }));
      managerIds = (await t.db.ownerQuery('SELECT rls_user_id::text FROM zava_data.stores')).rows.map((r) => String(r[0]));
    });
    after(async () => t?.cleanup());

    /** The clear values (and recognisable parts of them) an answer must not contain. */
    function leaks(text: string, options: { pii: boolean; managerIds: boolean }): string[] {
      const found: string[] = [];
      const haystack = text.toLowerCase();
      if (options.pii) {
        for (const { email, phone } of customers) {
          const local = email.slice(0, email.indexOf('@'));
          for (const needle of [email, local, md5(email), phone, md5(phone), phone.replace(/\D/g, '').slice(0, 6)]) {
            if (needle.length >= 5 && haystack.includes(needle.toLowerCase())) found.push(needle);
          }
        }
      }
      if (options.managerIds) {
        for (const id of managerIds) if (haystack.includes(id.slice(0, 8))) found.push(id);
      }
      return found;
    }

    async function run(identity: Identity, sql: string): Promise<{ text: string; error?: string }> {
      try {
        const rows = await t.db.withIdentity(identity, (session) => session.query(sql, [], { maxRows: 10_000 }));
        return { text: JSON.stringify(rows.rows) };
      } catch (error) {
        return { text: '', error: error instanceof Error ? error.message : String(error) };
      }
    }

    test('the fixtures have clear values to look for', () => {
      assert.ok(customers.length >= 100, 'customers seeded');
      assert.ok(customers.every((c) => c.email.includes('@') && /\d{4}/.test(c.phone)));
      assert.equal(managerIds.length, STORES.length);
    });

    test('no SQL shape reaches a clear e-mail or phone without pii:read (store manager, head office without pii)', async () => {
      const { email: E, phone: P } = customers[0]!;
      let accepted = 0;
      for (const identity of [STORE_MANAGER, HEAD_OFFICE_NO_PII]) {
        for (const [name, sql] of piiShapes(E, P)) {
          const direct = await run(identity, sql);
          assert.deepEqual(leaks(direct.text + (direct.error ?? ''), { pii: true, managerIds: false }), [], `${name} (${identity.role}) leaked`);
          const verdict = await guard(sql);
          if (verdict.ok) accepted++;
          if (/test|probe/.test(name) && !direct.error) {
            // The tests for a clear value find nothing.
            assert.match(direct.text, /^\[\[(0|false|"no")\]|^\[\]$|^\[\["no"\]/, `${name}: ${direct.text.slice(0, 80)}`);
          }
          if (name.startsWith('base table')) {
            assert.ok(direct.error, 'the base table is not readable by the query role');
            assert.equal(verdict.ok, false, 'the guard refuses the base schema');
          }
        }
      }
      assert.ok(accepted >= 50, `the guard accepts the ordinary shapes (${accepted})`);
      const masked = await run(STORE_MANAGER, 'SELECT customer_id, email, phone FROM retail.customers ORDER BY customer_id LIMIT 1');
      const [[id, email, phone]] = JSON.parse(masked.text) as [[number, string, string]];
      const clear = customers[id - 1]!;
      assert.equal(email, `${clear.email[0]}***${clear.email.slice(clear.email.indexOf('@'))}`);
      assert.match(phone, /^\*\*\*-\*\*\*-\d{4}$/);
      assert.equal(phone.slice(-4), clear.phone.replace(/\D/g, '').slice(-4));
    });

    test('no SQL shape reaches a manager UUID but head office', async () => {
      const U = managerIds[0]!;
      for (const identity of [STORE_MANAGER, MANAGER_WITH_PII]) {
        for (const [name, sql] of storeShapes(U)) {
          const direct = await run(identity, sql);
          assert.deepEqual(leaks(direct.text + (direct.error ?? ''), { pii: false, managerIds: true }), [], `${name} (${identity.role}) leaked`);
        }
      }
      const all = await run(STORE_MANAGER, 'SELECT * FROM retail.stores ORDER BY store_id');
      assert.equal(JSON.parse(all.text).length, STORES.length, 'SELECT * FROM retail.stores keeps working');
      const head = await run(HEAD_OFFICE_NO_PII, 'SELECT rls_user_id FROM retail.stores ORDER BY store_id');
      assert.deepEqual(JSON.parse(head.text).map((r: string[]) => r[0]), STORES.map((s) => s.managerId), 'head office sees manager ids');
    });

    test('head office with pii:read (and a manager granted it) sees clear values; the owner reads everything', async () => {
      const head = await run(HEAD_OFFICE, 'SELECT email, phone FROM retail.customers ORDER BY customer_id');
      assert.deepEqual(JSON.parse(head.text), customers.map((c) => [c.email, c.phone]));
      const eq = await run(HEAD_OFFICE, `SELECT count(*) FROM retail.customers WHERE email = '${customers[0]!.email}'`);
      assert.equal(JSON.parse(eq.text)[0][0], 1);
      const seattle = await run(MANAGER_WITH_PII, 'SELECT count(*) FILTER (WHERE email LIKE \'%***%\'), count(*) FROM retail.customers');
      const [[maskedCount, total]] = JSON.parse(seattle.text) as [[number, number]];
      assert.equal(maskedCount, 0);
      assert.ok(total > 0 && total < customers.length, 'still only its own store');
      const owner = await t.db.ownerQuery('SELECT count(*), count(*) FILTER (WHERE email LIKE \'%***%\') FROM retail.customers');
      assert.deepEqual(owner.rows[0]!.map(Number), [customers.length, 0]);
      const ownerStores = await t.db.ownerQuery('SELECT rls_user_id FROM retail.stores ORDER BY store_id');
      assert.deepEqual(ownerStores.rows.map((r) => r[0]), STORES.map((s) => s.managerId));
    });

    test('a forged v2 (pii) context is refused like any forged context', async () => {
      // A store manager signs nothing itself; setting zava.ctx by hand to a pii payload verifies as nothing.
      const forged = await run(STORE_MANAGER, "SELECT set_config('zava.ctx', 'v2.1.99999999999999.*.x.pii.00', true), (SELECT count(*) FROM retail.customers WHERE email NOT LIKE '%***%')");
      assert.ok(forged.error || JSON.parse(forged.text)[0][1] === 0, forged.text);
    });

    test('the schema tool says which columns are masked', async () => {
      const schemas = new SchemaService(t.db);
      const [manager] = await schemas.describe(STORE_MANAGER, ['retail.customers']);
      assert.deepEqual(Object.keys(manager!.masked_columns ?? {}), ['email', 'phone']);
      assert.deepEqual(manager!.primary_key, ['customer_id'], 'keys come from the base table');
      assert.ok(manager!.columns.some((c) => c.name === 'email' && !c.nullable));
      const [head] = await schemas.describe(HEAD_OFFICE, ['retail.customers', 'retail.stores']);
      assert.equal(head!.masked_columns, undefined);
      const [stores] = await schemas.describe(STORE_MANAGER, ['retail.stores']);
      assert.deepEqual(Object.keys(stores!.masked_columns ?? {}), ['rls_user_id']);
    });
  });
}
