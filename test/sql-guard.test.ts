// The SQL guard (first line of defence): what an analyst needs is accepted, everything else is refused with a
// reason that names the offending statement, function, table, type or operator.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { checkReadOnlySql, createCachedSqlGuard, statementName, warmUpSqlGuard, type GuardVerdict } from '../src/security/sql-guard.js';
import { PG_ADMIN_URL, serverUnavailableReason } from './support/databases.js';

before(async () => {
  await warmUpSqlGuard();
});

async function assertAccepted(sql: string): Promise<void> {
  const verdict = await checkReadOnlySql(sql);
  assert.deepEqual(verdict, { ok: true, statementKind: 'SELECT' }, `expected acceptance of:\n${sql}\ngot: ${verdict.reason}`);
}

async function assertRefused(sql: string, mentions: string, options?: Parameters<typeof checkReadOnlySql>[1]): Promise<GuardVerdict> {
  const verdict = await checkReadOnlySql(sql, options);
  assert.equal(verdict.ok, false, `expected refusal of:\n${sql.slice(0, 300)}`);
  assert.equal(verdict.statementKind, undefined);
  assert.ok(typeof verdict.reason === 'string' && verdict.reason.length > 0, 'a refusal has a reason');
  assert.ok(
    verdict.reason.toLowerCase().includes(mentions.toLowerCase()),
    `reason should mention "${mentions}"\nquery: ${sql.slice(0, 300)}\nreason: ${verdict.reason}`,
  );
  return verdict;
}

// ---------------------------------------------------------------------------------------------------------------
// Accepted: the reference questions and the SQL features analysts use.
// ---------------------------------------------------------------------------------------------------------------

const TOP_PRODUCTS = `
  SELECT p.product_id, p.product_name, c.category_name,
         SUM(oi.total_amount) AS revenue, SUM(oi.quantity) AS units
  FROM retail.order_items oi
  JOIN retail.products p ON p.product_id = oi.product_id
  JOIN retail.categories c ON c.category_id = p.category_id
  GROUP BY p.product_id, p.product_name, c.category_name
  ORDER BY revenue DESC
  LIMIT 20`;

const ACCEPTED: ReadonlyArray<readonly [string, string]> = [
  ['top 20 products by revenue', TOP_PRODUCTS],
  ['sales by store', `
    SELECT s.store_name, s.region, COUNT(DISTINCT o.order_id) AS orders, ROUND(SUM(oi.total_amount), 2) AS revenue
    FROM retail.stores s
    JOIN retail.orders o ON o.store_id = s.store_id
    JOIN retail.order_items oi ON oi.order_id = o.order_id
    GROUP BY s.store_name, s.region
    ORDER BY revenue DESC`],
  ["last quarter's sales by category", `
    SELECT c.category_name, SUM(oi.total_amount) AS revenue
    FROM retail.orders o
    JOIN retail.order_items oi USING (order_id)
    JOIN retail.products p USING (product_id)
    JOIN retail.categories c ON c.category_id = p.category_id
    WHERE o.order_date >= date_trunc('quarter', current_date) - interval '3 months'
      AND o.order_date < date_trunc('quarter', current_date)
    GROUP BY c.category_name
    ORDER BY revenue DESC`],
  ['CTE with LAG and NULLIF', `
    WITH monthly AS (
      SELECT date_trunc('month', o.order_date)::date AS month, SUM(oi.total_amount) AS revenue
      FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
      GROUP BY 1
    )
    SELECT month, revenue, revenue - LAG(revenue) OVER (ORDER BY month) AS change,
           ROUND(100.0 * (revenue / NULLIF(LAG(revenue) OVER (ORDER BY month), 0) - 1), 1) AS pct_change
    FROM monthly ORDER BY month`],
  ['UNION ALL', `
    SELECT 'online' AS channel, COUNT(*) FROM retail.stores WHERE is_online
    UNION ALL
    SELECT 'physical', COUNT(*) FROM retail.stores WHERE NOT is_online`],
  ['INTERSECT and EXCEPT', `
    SELECT customer_id FROM retail.orders WHERE order_date >= DATE '2024-01-01'
    INTERSECT
    SELECT customer_id FROM retail.orders WHERE order_date < '2024-01-01'
    EXCEPT
    SELECT customer_id FROM retail.customers WHERE email LIKE '%@example.com'`],
  ['window functions', `
    SELECT * FROM (
      SELECT p.category_id, p.product_name, SUM(oi.total_amount) AS revenue,
             RANK() OVER (PARTITION BY p.category_id ORDER BY SUM(oi.total_amount) DESC) AS rnk,
             ROW_NUMBER() OVER w, DENSE_RANK() OVER w, NTILE(4) OVER w, PERCENT_RANK() OVER w, CUME_DIST() OVER w,
             FIRST_VALUE(p.product_name) OVER w, LEAD(p.product_name, 1) OVER w,
             SUM(SUM(oi.total_amount)) OVER (ORDER BY p.category_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
      FROM retail.products p JOIN retail.order_items oi USING (product_id)
      GROUP BY p.category_id, p.product_name
      WINDOW w AS (PARTITION BY p.category_id ORDER BY SUM(oi.total_amount) DESC)
    ) ranked
    WHERE rnk <= 3`],
  ['generate_series for days without sales', `
    SELECT d::date AS day, COALESCE(SUM(oi.total_amount), 0) AS revenue
    FROM generate_series(current_date - 30, current_date, interval '1 day') AS d
    LEFT JOIN retail.orders o ON o.order_date = d::date
    LEFT JOIN retail.order_items oi ON oi.order_id = o.order_id
    GROUP BY d ORDER BY d`],
  ['to_char and EXTRACT', `
    SELECT to_char(order_date, 'YYYY-MM') AS month, EXTRACT(YEAR FROM order_date) AS yr,
           EXTRACT(dow FROM order_date) AS dow, date_part('week', order_date) AS wk, count(*)
    FROM retail.orders GROUP BY 1, 2, 3, 4 ORDER BY 1`],
  ['CASE', `
    SELECT CASE WHEN base_price < 20 THEN 'budget' WHEN base_price < 100 THEN 'mid' ELSE 'premium' END AS tier,
           CASE category_id WHEN 1 THEN 'one' ELSE 'other' END,
           COUNT(*), AVG(gross_margin_percent)
    FROM retail.products GROUP BY 1, 2`],
  ['LATERAL join', `
    SELECT s.store_name, top.product_name, top.revenue
    FROM retail.stores s
    CROSS JOIN LATERAL (
      SELECT p.product_name, SUM(oi.total_amount) AS revenue
      FROM retail.order_items oi JOIN retail.products p USING (product_id)
      WHERE oi.store_id = s.store_id
      GROUP BY p.product_name ORDER BY revenue DESC LIMIT 3
    ) AS top`],
  ['FILTER clause', `
    SELECT s.store_name,
           COUNT(*) FILTER (WHERE o.order_date >= current_date - 30) AS last_30_days,
           SUM(oi.total_amount) FILTER (WHERE oi.discount_percent > 0) AS discounted_revenue
    FROM retail.stores s JOIN retail.orders o USING (store_id) JOIN retail.order_items oi USING (order_id)
    GROUP BY s.store_name`],
  ['full-text search', `
    SELECT p.product_name,
           ts_rank(e.search_document, websearch_to_tsquery('english', 'waterproof jacket')) AS rank,
           ts_rank_cd(to_tsvector('english'::regconfig, p.product_description), plainto_tsquery('english', 'jacket')),
           ts_headline('english', p.product_description, to_tsquery('english', 'drill & cordless'))
    FROM retail.products p JOIN retail.product_description_embeddings e USING (product_id)
    WHERE e.search_document @@ websearch_to_tsquery('english', 'waterproof jacket')
    ORDER BY rank DESC LIMIT 10`],
  ['GROUPING SETS, ROLLUP, CUBE and GROUPING()', `
    SELECT s.region, s.store_name, SUM(oi.total_amount), GROUPING(s.region, s.store_name)
    FROM retail.stores s JOIN retail.order_items oi USING (store_id)
    GROUP BY GROUPING SETS ((s.region), (s.region, s.store_name), ()), ROLLUP (s.region), CUBE (s.store_name)`],
  ['recursive CTE', 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12) SELECT i FROM n'],
  ['VALUES', "VALUES (1, 'a'), (2, 'b')"],
  ['VALUES in FROM', 'SELECT v.x, v.y FROM (VALUES (1, 2), (3, 4)) AS v(x, y) ORDER BY v.x'],
  ['ordered-set and other aggregates', `
    SELECT c.category_name,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.base_price) AS median_price,
           percentile_disc(0.9) WITHIN GROUP (ORDER BY p.base_price),
           mode() WITHIN GROUP (ORDER BY p.type_id),
           string_agg(p.product_name, ', ' ORDER BY p.product_name) AS names,
           array_agg(DISTINCT p.type_id), bool_and(p.cost > 0), every(p.base_price > 0),
           jsonb_agg(jsonb_build_object('sku', p.sku, 'price', p.base_price)),
           stddev(p.cost), variance(p.cost), corr(p.cost, p.base_price), regr_slope(p.base_price, p.cost)
    FROM retail.products p JOIN retail.categories c USING (category_id)
    GROUP BY c.category_name HAVING COUNT(*) > 1`],
  ['subqueries: scalar, EXISTS, IN, ALL', `
    SELECT c.first_name || ' ' || c.last_name AS name,
           (SELECT MAX(o.order_date) FROM retail.orders o WHERE o.customer_id = c.customer_id) AS last_order
    FROM retail.customers c
    WHERE EXISTS (SELECT 1 FROM retail.orders o WHERE o.customer_id = c.customer_id)
      AND c.primary_store_id IN (SELECT store_id FROM retail.stores WHERE region = 'West')
      AND c.customer_id <> ALL (ARRAY[1, 2, 3])
      AND c.phone IS NOT NULL AND c.email ILIKE '%@%' AND c.customer_id BETWEEN 1 AND 1000`],
  ['string functions and casts', String.raw`
    SELECT upper(left(p.sku, 3)), lower(p.product_name), initcap(p.product_name), length(p.product_name),
           substring(p.product_name FROM 1 FOR 10), substr(p.sku, 2), position('a' IN p.product_name),
           trim(both ' ' FROM p.product_name), btrim(p.sku), split_part(p.sku, '-', 1),
           regexp_replace(p.product_name, '\s+', ' ', 'g'), (regexp_match(p.sku, '^([A-Z]+)'))[1],
           concat_ws('/', p.category_id, p.type_id), p.base_price::int, CAST(p.cost AS text),
           format('%s (%s)', p.product_name, p.sku), coalesce(NULL, 1), greatest(p.cost, 1), least(1, 2),
           md5(p.sku), lpad(p.sku, 12, '0'), replace(p.sku, '-', ''), starts_with(p.sku, 'A'), reverse(p.sku),
           p.product_name LIKE 'A!%%' ESCAPE '!', p.product_name SIMILAR TO '%(a|b)%'
    FROM retail.products p`],
  ['date and time functions', `
    SELECT age(current_date, c.created_at::date), make_date(2024, 1, 1), date_part('year', c.created_at),
           to_date('2024-01-01', 'YYYY-MM-DD'), c.created_at AT TIME ZONE 'UTC',
           date_bin('15 minutes', c.created_at, timestamptz '2001-01-01'), justify_interval(interval '40 days'),
           now() - interval '1 year', localtimestamp, current_timestamp(0), clock_timestamp(), date(c.created_at)
    FROM retail.customers c`],
  ['math functions', `
    SELECT abs(-1), ceil(1.2), ceiling(1.2), floor(1.8), trunc(1.55, 1), power(2, 3), sqrt(16), exp(1), ln(2),
           log(100), mod(7, 3), sign(-3), div(7, 2), width_bucket(p.base_price, 0, 500, 10), round(random()::numeric, 2)
    FROM retail.products p`],
  ['array and JSON functions', `
    SELECT array_length(ARRAY[1, 2], 1), cardinality(ARRAY[1]), array_position(ARRAY['a'], 'a'),
           array_to_string(ARRAY[1, 2], ','), string_to_array('a,b', ','), json_build_object('store', s.store_name),
           row_to_json(s), to_jsonb(s.store_id), JSON_OBJECT('id': s.store_id), (ARRAY[1, 2, 3])[1:2]
    FROM retail.stores s, unnest(ARRAY[1, 2]) AS u(n)`],
  ['SQL/JSON aggregate', 'SELECT JSON_ARRAYAGG(store_id ORDER BY store_id) FROM retail.stores'],
  ['leading comments, odd casing and whitespace', '-- revenue by order\n/* block /* nested */ comment */\n  SeLeCt   COUNT(*)\n\tFROM   RETAIL.ORDERS  ;  '],
  ['dollar-quoted string containing delete', 'SELECT $$delete from retail.orders$$ AS s'],
  ['dollar-quoted string containing a semicolon', 'select $x$; delete$x$'],
  ['string literal containing SQL', "SELECT 'drop table retail.orders; -- not really' AS note, E'it\\'s fine' AS e"],
  ['pg_catalog-qualified allowed functions', 'SELECT pg_catalog.count(*), pg_catalog.now(), PG_CATALOG.LOWER(store_name) FROM retail.stores GROUP BY store_name'],
  ['unqualified retail tables', 'SELECT count(*) FROM orders JOIN order_items USING (order_id)'],
  ['parameters', 'SELECT * FROM retail.orders WHERE store_id = $1::int AND order_date >= $2::date'],
  ['TABLE', 'TABLE retail.stores'],
  ['DISTINCT ON, NULLS LAST, OFFSET/FETCH', `
    SELECT DISTINCT ON (o.store_id) o.store_id, o.order_date
    FROM retail.orders o ORDER BY o.store_id, o.order_date DESC NULLS LAST OFFSET 5 FETCH FIRST 10 ROWS ONLY`],
  ['schema-qualified column reference', 'SELECT retail.orders.order_id, retail.orders.* FROM retail.orders'],
  ['alias.* and whole-row reference', 'SELECT s.*, s FROM retail.stores s'],
  ['TABLESAMPLE BERNOULLI', 'SELECT count(*) FROM retail.orders TABLESAMPLE BERNOULLI (10) REPEATABLE (42)'],
  ['pgvector distance via OPERATOR(public.<=>) and public.vector', `
    SELECT e.product_id, e.description_embedding OPERATOR(public.<=>) $1::public.vector AS distance,
           cosine_distance(e.description_embedding, $1::vector), public.l2_distance(e.description_embedding, $1::vector)
    FROM retail.product_description_embeddings e ORDER BY distance LIMIT 5`],
  ['IS DISTINCT FROM, IS TRUE, row comparison', 'SELECT (1, 2) < (2, 3), NULL IS DISTINCT FROM 1, true IS TRUE'],
  ['emoji and accents', "SELECT '😀 café' AS s, 'naïve' ILIKE '%ï%'"],
  ['standard string with backslashes (regex)', String.raw`SELECT regexp_matches(sku, '\d+\-\w') FROM retail.products`],
];

describe('accepted queries', () => {
  for (const [label, sql] of ACCEPTED) {
    test(label, () => assertAccepted(sql));
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Refused: each with what the reason must name.
// ---------------------------------------------------------------------------------------------------------------

const REFUSED: ReadonlyArray<readonly [string, string]> = [
  // more than one statement
  ['select * from retail.orders; delete from retail.orders', 'only one statement is allowed (found 2)'],
  ['select 1; select 2; select 3', 'only one statement is allowed (found 3)'],
  ['/* hi */ -- there\nselect 1;\n-- sneaky\nselect pg_sleep(10)', 'only one statement is allowed (found 2)'],
  // DML and data-modifying CTEs
  ['insert into retail.orders values (1, 1, 1, now())', 'INSERT is not allowed: only SELECT queries can run'],
  ['update retail.orders set store_id = 1', 'UPDATE is not allowed'],
  ['delete from retail.orders', 'DELETE is not allowed'],
  ['merge into retail.orders o using retail.stores s on true when matched then delete', 'MERGE is not allowed'],
  ['with d as (delete from retail.orders returning *) select * from d', 'DELETE'],
  ['with i as (insert into retail.orders default values returning *) select 1', 'INSERT'],
  ['with u as (update retail.orders set store_id = 1 returning *) select count(*) from u', 'UPDATE'],
  ['with a as (select 1), b as (with c as (delete from retail.orders returning 1) select * from c) select * from b', 'DELETE'],
  // DDL and privileges
  ['create table retail.x (a int)', 'CREATE TABLE is not allowed'],
  ['create table x as select * from retail.orders', 'CREATE TABLE AS is not allowed'],
  ['create view v as select 1', 'CREATE VIEW is not allowed'],
  ['create function f() returns int language sql as $$select 1$$', 'CREATE FUNCTION is not allowed'],
  ['create index on retail.orders (store_id)', 'CREATE INDEX is not allowed'],
  ['create extension dblink', 'CREATE EXTENSION is not allowed'],
  ['alter table retail.orders add column x int', 'ALTER TABLE is not allowed'],
  ['alter role current_user set search_path = public', 'ALTER ROLE'],
  ['drop table retail.orders', 'DROP TABLE is not allowed'],
  ['truncate retail.orders', 'TRUNCATE is not allowed'],
  ['grant select on retail.orders to public', 'GRANT is not allowed'],
  ['revoke select on retail.orders from public', 'REVOKE is not allowed'],
  ["comment on table retail.orders is 'x'", 'COMMENT is not allowed'],
  ['refresh materialized view retail.mv', 'REFRESH MATERIALIZED VIEW is not allowed'],
  // SELECT INTO and row locks
  ['select 1 into t', 'SELECT INTO is not allowed'],
  ['select * into temp t from retail.orders', 'SELECT INTO'],
  ['select * from retail.orders for update', 'FOR UPDATE is not allowed'],
  ['select * from retail.orders for share', 'FOR SHARE is not allowed'],
  ['select * from retail.orders for no key update skip locked', 'FOR NO KEY UPDATE is not allowed'],
  ['select * from retail.orders for key share nowait', 'FOR KEY SHARE is not allowed'],
  ['select * from (select * from retail.orders for update) x', 'FOR UPDATE is not allowed'],
  ['select * from retail.stores where store_id in (select store_id from retail.orders for update)', 'FOR UPDATE'],
  // transaction control and settings
  ['begin', 'BEGIN is not allowed'],
  ['start transaction read write', 'START is not allowed'],
  ['commit', 'COMMIT is not allowed'],
  ['rollback', 'ROLLBACK is not allowed'],
  ['savepoint s1', 'SAVEPOINT is not allowed'],
  ['release savepoint s1', 'RELEASE is not allowed'],
  ['rollback to savepoint s1', 'ROLLBACK TO is not allowed'],
  ["prepare transaction 'x'", 'PREPARE is not allowed'],
  ['set search_path = public', 'SET is not allowed'],
  ['set local statement_timeout = 0', 'SET is not allowed'],
  ['set role postgres', 'SET is not allowed'],
  ['reset all', 'RESET is not allowed'],
  ['show search_path', 'SHOW is not allowed'],
  // other utility statements
  ['copy retail.orders to stdout', 'COPY is not allowed'],
  ["copy retail.orders from program 'id'", 'COPY is not allowed'],
  ['call retail.proc()', 'CALL is not allowed'],
  ["do $$ begin perform pg_sleep(1); end $$", 'DO is not allowed'],
  ['listen orders', 'LISTEN is not allowed'],
  ["notify orders, 'x'", 'NOTIFY is not allowed'],
  ['unlisten *', 'UNLISTEN is not allowed'],
  ['prepare p as select 1', 'PREPARE is not allowed'],
  ['execute p', 'EXECUTE is not allowed'],
  ['deallocate all', 'DEALLOCATE is not allowed'],
  ['declare c cursor for select 1', 'DECLARE CURSOR is not allowed'],
  ['fetch next from c', 'FETCH is not allowed'],
  ['move next in c', 'MOVE is not allowed'],
  ['close c', 'CLOSE is not allowed'],
  ['explain analyze select 1', 'EXPLAIN ANALYZE is not allowed'],
  ['explain (analyze, buffers) delete from retail.orders', 'EXPLAIN ANALYZE is not allowed'],
  ['explain select * from retail.orders', 'EXPLAIN is not allowed'],
  ['vacuum retail.orders', 'VACUUM is not allowed'],
  ['analyze retail.orders', 'ANALYZE is not allowed'],
  ['lock table retail.orders in access exclusive mode', 'LOCK is not allowed'],
  ['discard all', 'DISCARD is not allowed'],
  ["load 'auto_explain'", 'LOAD is not allowed'],
  ['checkpoint', 'CHECKPOINT is not allowed'],
  ['cluster retail.orders', 'CLUSTER is not allowed'],
  ['reindex table retail.orders', 'REINDEX is not allowed'],
  // functions outside the allowlist, in every spelling
  ['select pg_sleep(1)', 'function pg_sleep is not allowed'],
  ['SeLeCt PG_SLEEP(1)', 'function pg_sleep is not allowed'],
  ['/* just a comment */ -- and another\n select pg_sleep(1)', 'function pg_sleep is not allowed'],
  ["select pg_sleep_for('1 minute')", 'function pg_sleep_for'],
  ["select pg_sleep_until(now() + interval '1 minute')", 'function pg_sleep_until'],
  ["select set_config('search_path', 'public', false)", 'function set_config is not allowed'],
  [`select "set_config"('a', 'b', false)`, 'function set_config is not allowed'],
  ["select pg_catalog.set_config('a', 'b', false)", 'function pg_catalog.set_config is not allowed'],
  ["select current_setting('zava.context')", 'function current_setting is not allowed'],
  ["select pg_read_file('/etc/passwd')", 'function pg_read_file'],
  ["select pg_read_binary_file('/etc/passwd')", 'function pg_read_binary_file'],
  ["select * from pg_ls_dir('.')", 'function pg_ls_dir'],
  ["select pg_stat_file('postgresql.conf')", 'function pg_stat_file'],
  ["select lo_import('/etc/passwd')", 'function lo_import'],
  ["select lo_export(1, '/tmp/x')", 'function lo_export'],
  ['select pg_advisory_lock(1)', 'function pg_advisory_lock'],
  ['select pg_try_advisory_xact_lock(1)', 'function pg_try_advisory_xact_lock'],
  ["select * from dblink('host=x', 'select 1') as t(a int)", 'function dblink'],
  ["select dblink_exec('delete from retail.orders')", 'function dblink_exec'],
  ['select pg_terminate_backend(1)', 'function pg_terminate_backend'],
  ['select pg_cancel_backend(1)', 'function pg_cancel_backend'],
  ['select pg_reload_conf()', 'function pg_reload_conf'],
  ['select pg_rotate_logfile()', 'function pg_rotate_logfile'],
  ["select nextval('retail.orders_order_id_seq')", 'function nextval'],
  ["select setval('retail.orders_order_id_seq', 1)", 'function setval'],
  ["select currval('retail.orders_order_id_seq')", 'function currval'],
  ["select query_to_xml('select 1', true, true, '')", 'function query_to_xml is not allowed'],
  ["select query_to_xml_and_xmlschema('delete from retail.orders', true, true, '')", 'function query_to_xml_and_xmlschema'],
  ["select table_to_xml('retail.orders', true, true, '')", 'function table_to_xml'],
  ["select cursor_to_xml('c', 1, true, true, '')", 'function cursor_to_xml'],
  ["select database_to_xml(true, true, '')", 'function database_to_xml'],
  ["select * from ts_stat('select search_document from retail.product_description_embeddings')", 'function ts_stat'],
  ["select ts_rewrite('a'::tsquery, 'select 1')", 'function ts_rewrite'],
  ['select txid_current()', 'function txid_current'],
  ['select pg_current_xact_id()', 'function pg_current_xact_id'],
  ["select pg_notify('c', 'x')", 'function pg_notify'],
  ["select pg_logical_emit_message(true, 'x', 'y')", 'function pg_logical_emit_message'],
  ["select pg_create_restore_point('x')", 'function pg_create_restore_point'],
  ['select pg_switch_wal()', 'function pg_switch_wal'],
  ['select setseed(0.5)', 'function setseed'],
  ['select version()', 'function version'],
  ["select to_regclass('pg_authid')", 'function to_regclass'],
  ['select public.anything()', 'function public.anything is not allowed'],
  ['select public.lower(store_name) from retail.stores', 'function public.lower'],
  ['select retail.my_function()', 'function retail.my_function'],
  ['select zava_ctx.current_identity()', 'function zava_ctx.current_identity'],
  ['select mydb.pg_catalog.now()', 'function mydb.pg_catalog.now'],
  // ... wherever they appear
  ['select (select set_config(\'x\', \'y\', true))', 'function set_config'],
  ['select * from pg_sleep(60)', 'function pg_sleep'],
  ['select * from rows from (generate_series(1, 2), pg_sleep(1))', 'function pg_sleep'],
  ['select * from retail.orders where pg_sleep(1) is not null', 'function pg_sleep'],
  ['select * from retail.orders o join retail.stores s on s.store_id = o.store_id and pg_sleep(1) is null', 'function pg_sleep'],
  ['select * from retail.orders order by pg_sleep(1)', 'function pg_sleep'],
  ['select count(*) from retail.orders group by pg_sleep(1)', 'function pg_sleep'],
  ['select count(*) from retail.orders having pg_sleep(1) is null', 'function pg_sleep'],
  ['select count(*) over (partition by pg_sleep(1)) from retail.orders', 'function pg_sleep'],
  ['select count(*) over w from retail.orders window w as (order by pg_sleep(1))', 'function pg_sleep'],
  ['select count(*) filter (where pg_sleep(1) is null) from retail.orders', 'function pg_sleep'],
  ['select string_agg(sku, \',\' order by pg_sleep(1)::text) from retail.products', 'function pg_sleep'],
  ['with x as (select pg_sleep(1)) select * from x', 'function pg_sleep'],
  ['with recursive x(n) as (select 1 union all select n + 1 from x where pg_sleep(0) is null) select * from x', 'function pg_sleep'],
  ['select * from retail.stores s, lateral (select pg_sleep(1)) z', 'function pg_sleep'],
  ['values (1), (pg_sleep(1))', 'function pg_sleep'],
  ['select abs(length(pg_read_file(\'x\')))', 'function pg_read_file'],
  ['select case when true then pg_sleep(1) end', 'function pg_sleep'],
  ['select coalesce(null, pg_sleep(1))', 'function pg_sleep'],
  ['select 1 limit (select pg_sleep(1))::int', 'function pg_sleep'],
  ['select 1 union select pg_sleep(1)::int', 'function pg_sleep'],
  ['select exists (select 1 where pg_sleep(1) is null)', 'function pg_sleep'],
  ["select json_build_object('a', pg_sleep(1))", 'function pg_sleep'],
  ['select array[pg_sleep(1)]', 'function pg_sleep'],
  ['select (pg_sleep(1), 2)', 'function pg_sleep'],
  ['select lower(sku collate "C") from retail.products where sku in (select pg_sleep(1)::text)', 'function pg_sleep'],
  // attribute notation that PostgreSQL may resolve as a function call
  ['select (t).set_config from retail.orders t', 'set_config'],
  ['select (s.store_name).pg_sleep from retail.stores s', 'pg_sleep'],
  ['select (row(1, 2)).f1', 'field selection'],
  ['select o.pg_sleep from retail.orders o', 'pg_sleep'],
  ['select o.set_config from retail.orders o', 'set_config'],
  ['select pg_catalog.pg_authid.rolpassword from retail.orders', 'pg_catalog.pg_authid.rolpassword'],
  ['select a.b.c.d from retail.orders a', 'a.b.c.d'],
  // tables outside schema retail
  ['select * from pg_catalog.pg_authid', 'table pg_catalog.pg_authid is not allowed; allowed schemas: retail'],
  ['select * from pg_authid', 'table pg_authid is not allowed'],
  ['select * from PG_SHADOW', 'table pg_shadow'],
  ['select * from pg_stat_activity', 'table pg_stat_activity'],
  ['select * from pg_catalog.pg_settings', 'table pg_catalog.pg_settings'],
  ['select rolname from pg_roles', 'table pg_roles'],
  ['select * from pg_user', 'table pg_user'],
  ['select * from pg_file_settings', 'table pg_file_settings'],
  ['select * from pg_hba_file_rules', 'table pg_hba_file_rules'],
  ['select * from "pg_authid"', 'table pg_authid'],
  ['select * from information_schema.columns', 'table information_schema.columns'],
  ['select * from information_schema.tables', 'table information_schema.tables'],
  ['select * from public.secrets', 'table public.secrets'],
  ['select * from zava_private.context_key', 'table zava_private.context_key'],
  ['select * from zava_meta.schema_migrations', 'table zava_meta.schema_migrations'],
  ['select * from pg_temp.t', 'table pg_temp.t'],
  ['select * from otherdb.retail.orders', 'cross-database'],
  ['select * from retail.orders where store_id in (select oid::int from pg_class)', 'table pg_class'],
  ['select * from retail.orders o join pg_catalog.pg_user u on true', 'table pg_catalog.pg_user'],
  ['with pg_authid as (select 1) select * from pg_authid', 'table pg_authid'],
  ['with x as (select * from pg_shadow) select * from x', 'table pg_shadow'],
  ['select * from retail.stores s, lateral (select * from pg_stat_activity) a', 'table pg_stat_activity'],
  // object-identifier and other refused types
  ["select 'pg_authid'::regclass", 'type regclass is not allowed'],
  ["select 'pg_catalog.pg_authid'::pg_catalog.regclass::oid", 'type pg_catalog.regclass'],
  ["select 'set_config'::regproc", 'type regproc'],
  ["select 'pg_sleep(float8)'::regprocedure", 'type regprocedure'],
  ["select '+'::regoper", 'type regoper'],
  ["select 'public'::regnamespace", 'type regnamespace'],
  ["select 'postgres'::regrole", 'type regrole'],
  ["select cast('{pg_authid}' as regclass[])", 'type regclass'],
  ["select '<a/>'::xml", 'type xml'],
  ["select 'x'::public.mytype", 'type public.mytype'],
  ['select * from unnest(array[1]) as t(a regclass)', 'type regclass'],
  // operators and collations from other schemas
  ['select 1 operator(public.+) 2', 'OPERATOR(public.+)'],
  ['select store_id from retail.orders order by store_id using operator(public.<)', 'OPERATOR(public.<)'],
  ['select 1 where 1 operator(evil.=) any (select 1)', 'OPERATOR(evil.=)'],
  ['select store_name collate public."x" from retail.stores', 'collation public.x'],
  // other refused constructs
  ['select current_user', 'CURRENT_USER is not allowed'],
  ['select session_user', 'SESSION_USER is not allowed'],
  ['select current_schema', 'CURRENT_SCHEMA is not allowed'],
  ['select xmlelement(name a)', 'XML functions are not allowed'],
  ["select xmlparse(document '<a/>')", 'XML functions are not allowed'],
  ["select * from xmltable('/a' passing '<a/>' columns x int path '.')", 'XMLTABLE is not allowed'],
  ['select count(*) from retail.orders tablesample system_rows(10)', 'TABLESAMPLE method system_rows'],
  ['select merge_action()', 'MERGE_ACTION() is not allowed'],
  // parse errors, empty input
  ['selec 1', 'syntax error at or near "selec"'],
  ["select 'unterminated", 'unterminated quoted string'],
  ['', 'empty'],
  ['   \n\t ', 'empty'],
  ['-- only a comment', 'no SQL statement found'],
  [';;', 'no SQL statement found'],
  // parser-differential tricks
  ['select 1\u0000; delete from retail.orders', 'control character (U+0000)'],
  ['select 1\u0001', 'control character (U+0001)'],
  ['select \'\ud800\'', 'lone surrogate'],
  ['select * from unnest(array[1]) as t(a text collate public."x")', 'collation public.x'],
  ["select 'x\\''; delete from retail.orders; --'", 'standard_conforming_strings'],
];

describe('refused queries', () => {
  for (const [sql, mentions] of REFUSED) {
    test(`${JSON.stringify(sql.slice(0, 70))} → ${mentions}`, () => assertRefused(sql, mentions).then(() => undefined));
  }

  test('a non-string query is refused, not thrown', async () => {
    const verdict = await checkReadOnlySql(42 as unknown as string);
    assert.equal(verdict.ok, false);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Size and depth limits: a clear refusal, never a crash, and the parser keeps working afterwards.
// ---------------------------------------------------------------------------------------------------------------

describe('size and depth limits', () => {
  test('a 1 MB query is refused before parsing', async () => {
    const sql = `SELECT '${'x'.repeat(1_000_000)}'`;
    await assertRefused(sql, 'too long (1000009 characters; the limit is 100000)');
  });

  test('maxLength is configurable', async () => {
    await assertRefused('select 1 + 1', 'the limit is 5', { maxLength: 5 });
    await assertAccepted('select 1');
  });

  test('5,000 nested parentheses are refused', async () => {
    await assertRefused(`SELECT ${'('.repeat(5000)}1${')'.repeat(5000)}`, 'nested too deeply (5000 levels of parentheses');
  });

  test('5,000 nested subqueries are refused', async () => {
    await assertRefused(`SELECT ${'(SELECT '.repeat(5000)}1${')'.repeat(5000)}`, 'nested too deeply');
  });

  test('49,000 nested parentheses (beyond the parser stack) are refused', async () => {
    await assertRefused(`SELECT ${'('.repeat(49_000)}1${')'.repeat(49_000)}`, 'nested too deeply');
  });

  test('a 30,000-term operator chain (deep tree, no parentheses) is refused before the parser sees it', async () => {
    await assertRefused(`SELECT ${Array(30_000).fill('1').join('+')}`, 'too complex');
    await assertRefused(`SELECT 1${'::int'.repeat(10_000)}`, 'too complex');
  });

  test('a tree deeper than maxDepth is refused', async () => {
    await assertRefused(`SELECT ${Array(150).fill('1').join('+')}`, 'the limit is 200 levels of the parse tree');
    await assertRefused('SELECT (((1)))', 'nested too deeply', { maxDepth: 2 });
  });

  test('the parser still works after refusing hostile input', async () => {
    await assertAccepted(TOP_PRODUCTS);
  });

  test('long but flat queries are fine', async () => {
    const list = Array.from({ length: 5000 }, (_, i) => i).join(', ');
    await assertAccepted(`SELECT count(*) FROM retail.orders WHERE order_id IN (${list})`);
    await assertAccepted(`SELECT count(*) FROM retail.orders WHERE ${Array.from({ length: 400 }, (_, i) => `store_id = ${i}`).join(' OR ')}`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Types whose input looks names up in the catalogs: a literal of one tells whether a role (or table, function,
// schema) exists, so every spelling of them is refused; regconfig only as an unqualified configuration name.
// ---------------------------------------------------------------------------------------------------------------

const CATALOG_LOOKUP_CASTS: ReadonlyArray<readonly [string, string]> = [
  // aclitem: 'role "x" does not exist' for any role name of the cluster
  ["select 'admin=r/postgres'::aclitem", 'type aclitem is not allowed'],
  ["select cast('admin=r/postgres' as aclitem)", 'type aclitem'],
  ["select aclitem 'admin=r/postgres'", 'type aclitem'],
  ["select 'admin=r/postgres'::pg_catalog.aclitem", 'type pg_catalog.aclitem'],
  [`select 'admin=r/postgres'::"aclitem"`, 'type aclitem'],
  [`select 'admin=r/postgres'::"pg_catalog"."aclitem"`, 'type pg_catalog.aclitem'],
  ["select 'admin=r/postgres'::ACLITEM", 'type aclitem'],
  ["select '{admin=r/postgres}'::aclitem[]", 'type aclitem'],
  ["select '{admin=r/postgres}'::aclitem[1]", 'type aclitem'],
  ["select '{admin=r/postgres}'::aclitem array", 'type aclitem'],
  ["select '{admin=r/postgres}'::_aclitem", 'type _aclitem'],
  [`select '{admin=r/postgres}'::"_aclitem"`, 'type _aclitem'],
  ["select '{admin=r/postgres}'::pg_catalog._aclitem", 'type pg_catalog._aclitem'],
  ["select store_name::aclitem from retail.stores", 'type aclitem'],
  ["select * from retail.stores where ('admin=r/postgres' || '')::text::aclitem is null", 'type aclitem'],
  ["select * from unnest(array['x']) as t(a aclitem)", 'type aclitem'],
  ["select * from rows from (unnest(array['x'])) as t(a aclitem[])", 'type aclitem'],
  [`select * from json_table('[{"a":"x"}]', '$[*]' columns (a aclitem path '$.a')) j`, 'type aclitem'],
  [`select json_value('"x=r/postgres"', '$' returning aclitem)`, 'type aclitem'],
  ["select treat('x' as aclitem)", 'function pg_catalog.aclitem is not allowed'],
  ["select aclitem('x')", 'function aclitem'],
  ["select aclitemin('x')", 'function aclitemin'],
  ["select makeaclitem(10, 10, 'SELECT', false)", 'function makeaclitem'],
  ["select acldefault('r', 10)", 'function acldefault'],
  ["select * from aclexplode(acldefault('r', 10))", 'function aclexplode'],
  ["select has_table_privilege('admin', 'retail.orders', 'select')", 'function has_table_privilege'],
  ["select pg_has_role('admin', 'member')", 'function pg_has_role'],
  ["select to_regrole('admin')", 'function to_regrole'],
  ["select to_regnamespace('zava_private')", 'function to_regnamespace'],
  ["select to_regproc('set_config')", 'function to_regproc'],
  ["select to_regtype('aclitem')", 'function to_regtype'],
  ["select to_regcollation('C')", 'function to_regcollation'],
  ["select format_type(1033, null)", 'function format_type'],
  // the other object-identifier types
  ["select 'admin'::regrole", 'type regrole'],
  ["select regrole 'admin'", 'type regrole'],
  ["select '{admin}'::regrole[]", 'type regrole'],
  ["select 'zava_private'::regnamespace", 'type regnamespace'],
  ["select 'pg_catalog.pg_authid'::regclass", 'type regclass'],
  ["select 'C'::regcollation", 'type regcollation'],
  ["select 'simple'::regdictionary", 'type regdictionary'],
  ["select 'int4'::regtype", 'type regtype'],
  ["select '+'::regoper", 'type regoper'],
  ["select '+(int4,int4)'::regoperator", 'type regoperator'],
  ["select 'now'::regproc", 'type regproc'],
  ["select 'now()'::regprocedure", 'type regprocedure'],
  // catalog row types: their aclitem[] and reg* columns run the same lookups ('(1,x,10,"{admin=r/x}")'::pg_namespace)
  [`select '(1,x,10,"{admin=r/postgres}")'::pg_namespace`, 'type pg_namespace is not allowed'],
  [`select '(1,x,10,"{admin=r/postgres}")'::pg_catalog.pg_namespace`, 'type pg_catalog.pg_namespace'],
  [`select cast('(1,x,10,"{admin=r/postgres}")' as "pg_namespace")`, 'type pg_namespace'],
  [`select '{}'::pg_class[]`, 'type pg_class'],
  [`select '{}'::_pg_proc`, 'type _pg_proc'],
  [`select * from unnest(array[1]) as t(a pg_roles)`, 'type pg_roles'],
  ["select '0/0'::pg_lsn", 'type pg_lsn'],
  // regconfig: a schema-qualified name probes for schemas; expressions and arrays cannot be checked
  ["select to_tsvector('zava_private.english', product_name) from retail.products", "text search configuration 'zava_private.english'"],
  ["select to_tsvector('pg_catalog.english'::regconfig, product_name) from retail.products", "text search configuration 'pg_catalog.english'"],
  ["select websearch_to_tsquery('zava_private.x', 'drill')", 'text search configuration'],
  ["select plainto_tsquery(E'zava_private\\x2ex', 'drill')", 'text search configuration'],
  ["select phraseto_tsquery(U&'zava_private\\002ex', 'drill')", 'text search configuration'],
  ["select to_tsquery($$zava_private.x$$, 'drill')", 'text search configuration'],
  ["select ts_headline('zava_private.x', product_description, to_tsquery('drill')) from retail.products", 'text search configuration'],
  ["select to_tsvector(product_name::regconfig, product_name) from retail.products", 'type regconfig is allowed only as a cast of an unqualified configuration name'],
  ["select to_tsvector((select 'english')::regconfig, 'x')", 'type regconfig'],
  ["select '{english}'::regconfig[]", 'type regconfig'],
  ["select * from unnest(array[1]) as t(a regconfig)", 'type regconfig'],
];

describe('types whose input looks names up in the catalogs', () => {
  for (const [sql, mentions] of CATALOG_LOOKUP_CASTS) {
    test(`${JSON.stringify(sql.slice(0, 80))} → ${mentions}`, () => assertRefused(sql, mentions).then(() => undefined));
  }

  test('the refusal says why, so a model does not retry another spelling', async () => {
    const verdict = await assertRefused("select 'admin=r/postgres'::aclitem", 'looks names up in the system catalog');
    assert.match(verdict.reason ?? '', /roles/);
  });

  test('full-text search with an unqualified configuration still passes', async () => {
    await assertAccepted(`
      SELECT product_name, ts_rank(to_tsvector('english', product_description), websearch_to_tsquery('english', 'cordless drill')),
             to_tsvector('english'::regconfig, product_name), to_tsvector(CAST('simple' AS regconfig), sku),
             ts_headline('english', product_description, plainto_tsquery('english', 'drill'), 'MaxWords=10'),
             to_tsvector(product_description), to_tsquery('drill & cordless')
      FROM retail.products`);
  });
});

/**
 * Every type of the PostgreSQL service's pg_catalog, checked against the guard: a type the guard lets a query cast
 * to must have an input function reviewed as looking nothing up by name. A type added by a new PostgreSQL version
 * fails here until it is reviewed (PGlite's PostgreSQL 18 adds only pg_* row types, refused by name).
 */
const INPUTS_WITHOUT_CATALOG_LOOKUP: ReadonlySet<string> = new Set([
  // ordinary values
  'bit_in', 'boolin', 'box_in', 'bpcharin', 'byteain', 'cash_in', 'charin', 'cidin', 'cidr_in', 'circle_in',
  'date_in', 'float4in', 'float8in', 'inet_in', 'int2in', 'int2vectorin', 'int4in', 'int8in', 'interval_in',
  'json_in', 'jsonb_in', 'jsonpath_in', 'line_in', 'lseg_in', 'macaddr8_in', 'macaddr_in', 'namein', 'numeric_in',
  'oidin', 'oidvectorin', 'path_in', 'point_in', 'poly_in', 'textin', 'tidin', 'time_in', 'timestamp_in',
  'timestamptz_in', 'timetz_in', 'tsqueryin', 'tsvectorin', 'txid_snapshot_in', 'uuid_in', 'varbit_in', 'varcharin',
  'xid8in', 'xidin', 'gtsvectorin',
  // ranges and multiranges: the subtype's own input, found by type OID
  'range_in', 'multirange_in',
  // pseudo-types: their input always fails ("cannot accept a value of type ..."); record_in of an anonymous record too
  'any_in', 'anyarray_in', 'anycompatible_in', 'anycompatiblearray_in', 'anycompatiblemultirange_in',
  'anycompatiblenonarray_in', 'anycompatiblerange_in', 'anyelement_in', 'anyenum_in', 'anymultirange_in',
  'anynonarray_in', 'anyrange_in', 'cstring_in', 'event_trigger_in', 'fdw_handler_in', 'index_am_handler_in',
  'internal_in', 'language_handler_in', 'table_am_handler_in', 'trigger_in', 'tsm_handler_in', 'unknownin',
  'void_in', 'record_in',
]);

describe('every catalog type of the PostgreSQL service', () => {
  test('a type the guard accepts has an input function that looks nothing up by name', async (t) => {
    const unavailable = await serverUnavailableReason();
    if (unavailable !== undefined) return t.skip(unavailable);
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    let types: Array<{ typname: string; input: string }>;
    try {
      // An array's values go through its element type's input function.
      types = (await client.query(`
        SELECT t.typname, coalesce(e.typinput, t.typinput)::text AS input
        FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typinput = 'array_in'::regproc
        WHERE t.typnamespace = 'pg_catalog'::regnamespace`)).rows;
    } finally {
      await client.end();
    }
    assert.ok(types.length > 400, `found only ${types.length} types`);
    const unreviewed: string[] = [];
    for (const { typname, input } of types) {
      const verdict = await checkReadOnlySql(`SELECT NULL::"${typname}"`);
      if (verdict.ok && !INPUTS_WITHOUT_CATALOG_LOOKUP.has(input)) unreviewed.push(`${typname} (${input})`);
    }
    assert.deepEqual(unreviewed, [], 'accepted types whose input function has not been reviewed');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Generators of unbounded size: refused unless the guard can prove a small result; the analytics uses stay.
// ---------------------------------------------------------------------------------------------------------------

const BOUNDED_GENERATORS: ReadonlyArray<readonly [string, string]> = [
  ['daily calendar for a year', `
    SELECT d::date AS day, COALESCE(SUM(oi.total_amount), 0) AS revenue
    FROM generate_series(date '2024-01-01', date '2024-12-31', interval '1 day') AS d
    LEFT JOIN retail.orders o ON o.order_date = d::date LEFT JOIN retail.order_items oi ON oi.order_id = o.order_id
    GROUP BY d ORDER BY d`],
  ['calendar spelled with casts and untyped literals', `
    SELECT * FROM generate_series('2024-01-01'::date, '2024-12-31'::date, '1 day'::interval) d,
                  generate_series(CAST('2024-01-01' AS timestamp), '2024-03-31 23:00', '1 hour') h,
                  generate_series(timestamptz '2024-01-01T00:00:00Z', timestamptz '2024-01-02T00:00:00+02', '15 minutes') q`],
  ['last twelve months from the current date', `
    SELECT m::date FROM generate_series(date_trunc('month', current_date) - interval '12 months',
                                        date_trunc('month', now()), interval '1 month') AS m`],
  ['every day of the last 30, counting down', 'SELECT generate_series(current_date, current_date - 30, interval \'-1 day\')'],
  ['hourly over six years', "SELECT count(*) FROM generate_series(timestamp '2020-01-01', timestamp '2026-01-01', interval '1 hour')"],
  ['order span clamped to known dates', `
    SELECT d::date FROM generate_series(GREATEST((SELECT min(order_date) FROM retail.orders), date '2020-01-01'),
                                        LEAST((SELECT max(order_date) FROM retail.orders), current_date), interval '1 day') d`],
  ['number series: months, hours, buckets, countdown', `
    SELECT m, h, b FROM generate_series(1, 12) m, generate_series(0, 23) h, generate_series(0, 100000 - 1, 1000) b,
                        generate_series(10, 1, -1) c, generate_series(1, 10, 1::int) e, generate_series(-5, 5) f`],
  ['number series clamped by LEAST', 'SELECT generate_series(1, LEAST(oi.quantity, 100)) FROM retail.order_items oi'],
  ['string_agg of product names', `
    SELECT c.category_name, string_agg(p.product_name, ', ' ORDER BY p.product_name) AS products,
           array_agg(p.sku), json_agg(p.product_name)
    FROM retail.products p JOIN retail.categories c USING (category_id) GROUP BY c.category_name`],
  ['lpad and rpad for formatting', `
    SELECT lpad(p.product_id::text, 6, '0'), rpad(p.sku, 20, '.'), lpad(to_char(p.base_price, 'FM999990.00'), 10),
           lpad(p.sku, LEAST(length(p.product_name), 40), '*')
    FROM retail.products p`],
  ['a text bar chart', `
    SELECT s.store_name, repeat('#', LEAST((SUM(oi.total_amount) / 10000)::int, 50)) AS bar, repeat('-', 40), repeat('ab', 5000)
    FROM retail.stores s JOIN retail.order_items oi USING (store_id) GROUP BY s.store_name`],
  ['format with small widths', "SELECT format('%-20s|%10s|%3$s', store_name, store_id, 'x') FROM retail.stores"],
  ['array_fill for a zeroed year', 'SELECT array_fill(0, ARRAY[12]), array_fill(0::numeric, ARRAY[4, 3])'],
];

describe('generators of unbounded size: analytics uses still pass', () => {
  for (const [label, sql] of BOUNDED_GENERATORS) {
    test(label, () => assertAccepted(sql));
  }
});

const UNBOUNDED_GENERATORS: ReadonlyArray<readonly [string, string]> = [
  // repeat: a 1e9-character value is 1.9 GB of backend memory
  ["SELECT length(repeat('x', 500000000))", "repeat() count must be a constant of at most 10000, or LEAST(expression, constant)"],
  ["SELECT repeat('x', 10001)", 'repeat() count must be a constant of at most 10000'],
  ["SELECT repeat('ab', 10000)", 'repeat() would build up to 20000 characters; the limit is 10000'],
  ["SELECT pg_catalog.repeat('x', 1e9::int)", 'repeat() count'],
  ["SELECT repeat('x', '500000000')", 'repeat() count'],
  ["SELECT repeat('#', SUM(oi.total_amount)::int) FROM retail.order_items oi", 'repeat() count'],
  ["SELECT repeat('#', GREATEST(n, 50)) FROM (VALUES (1)) v(n)", 'repeat() count'],
  ["SELECT repeat('#', 5000 * 5000)", 'repeat() count'],
  ["SELECT repeat(repeat('x', 10000), 10000)", 'repeat() may only repeat a string literal'],
  ["SELECT repeat(product_description, 10) FROM retail.products", 'repeat() may only repeat a string literal'],
  ["SELECT length(repeat('x', 100)) FROM retail.stores WHERE repeat('y', 1e9::int) IS NOT NULL", 'repeat() count'],
  // lpad/rpad: the length argument is the size of the value
  ["SELECT length(lpad('x', 200000000))", 'lpad() length must be a constant of at most 10000'],
  ["SELECT rpad('x', 10001, 'y')", 'rpad() length must be a constant of at most 10000'],
  ["SELECT lpad(sku, product_id * 1000000) FROM retail.products", 'lpad() length'],
  // format widths pad like lpad
  ["SELECT format('%300000000s', 'x')", 'format() width 300000000 is too large; the limit is 10000'],
  ["SELECT format('%1$-20000s', 'x')", 'format() width 20000'],
  ["SELECT format('%*s', 300000000, 'x')", 'format() widths must be written in the format string'],
  ["SELECT format(store_name, 1) FROM retail.stores", 'format() needs its format string as a literal'],
  // array_fill
  ['SELECT array_fill(1, ARRAY[100000000])', 'array_fill() needs a constant value and constant dimensions'],
  ['SELECT array_fill(1, ARRAY[1000, 1000])', 'array_fill()'],
  ['SELECT array_fill(store_name, ARRAY[10]) FROM retail.stores', 'array_fill()'],
  // generate_series: a FROM-clause series is materialized (1e8 values: 1.4 GB of temp files)
  ['SELECT count(*) FROM generate_series(1, 1e9)', 'generate_series() would produce up to 1000000000 values; the limit is 100000'],
  ['SELECT count(*) FROM generate_series(1, 100001)', 'the limit is 100000'],
  ['SELECT generate_series(0, 1000000, 2)', 'generate_series() would produce up to 500001 values'],
  ['SELECT count(*) FROM generate_series(1, (SELECT max(order_id) FROM retail.orders))', 'generate_series() bounds and step must be constants'],
  ['SELECT generate_series(1, 10, 0)', 'generate_series() bounds and step must be constants'],
  ['SELECT generate_series(1, 100, product_id) FROM retail.products', 'generate_series() bounds and step'],
  ['SELECT generate_series(1, GREATEST(product_id, 10)) FROM retail.products', 'generate_series() bounds and step'],
  ["SELECT count(*) FROM generate_series(timestamp '2020-01-01', now(), interval '1 second')", 'generate_series() would produce up to'],
  ["SELECT count(*) FROM generate_series(date '2020-01-01', date '2026-12-31', '1 minute')", 'generate_series() would produce up to'],
  ["SELECT count(*) FROM generate_series(date '2020-01-01', 'infinity', '1 day')", 'generate_series() over dates needs bounds the guard can check'],
  ["SELECT count(*) FROM generate_series(date '2020-01-01', 'tomorrow', '1 day')", 'generate_series() over dates needs bounds'],
  ["SELECT count(*) FROM generate_series(timestamp '4713-01-01 BC', now(), interval '1 day')", 'generate_series() over dates needs bounds'],
  ["SELECT generate_series((SELECT min(order_date) FROM retail.orders), current_date, interval '1 day')", 'GREATEST(expression'],
  ["SELECT generate_series(current_date - 30, current_date, interval '1' day)", 'generate_series() over dates needs'],
  ["SELECT generate_series(current_date - 30, current_date, make_interval(days => 1))", 'generate_series()'],
  ["SELECT generate_series(current_date, current_date + 30, interval '1 day' - interval '1 day')", 'generate_series() over dates'],
  ["SELECT generate_series(current_date - 100000, current_date, interval '1 day')", 'generate_series() would produce up to'],
  ["SELECT * FROM retail.stores s, LATERAL generate_series(1, s.store_id * 1000000) g", 'generate_series() bounds'],
  ["SELECT * FROM ROWS FROM (generate_series(1, 1e9), generate_series(1, 2)) g", 'generate_series() would produce up to 1000000000'],
];

describe('generators of unbounded size: refused with the fix in the reason', () => {
  for (const [sql, mentions] of UNBOUNDED_GENERATORS) {
    test(`${JSON.stringify(sql.slice(0, 80))} → ${mentions}`, () => assertRefused(sql, mentions).then(() => undefined));
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The verdict cache: the same answer as the full check, bounded whatever texts arrive.
// ---------------------------------------------------------------------------------------------------------------

describe('verdict cache', () => {
  test('answers exactly as the full check, for accepted and refused texts, first and second time', async () => {
    const guard = createCachedSqlGuard();
    const texts = [TOP_PRODUCTS, 'select pg_sleep(1)', "select 'x=r/postgres'::aclitem", "SELECT repeat('x', 1e9::int)", 'selec 1', ''];
    for (const sql of [...texts, ...texts]) assert.deepEqual(await guard.check(sql), await checkReadOnlySql(sql));
    const { hits, misses } = guard.stats();
    assert.deepEqual({ hits, misses }, { hits: texts.length, misses: texts.length });
  });

  test('a second check of the same text is a lookup, far cheaper than the first', async () => {
    const guard = createCachedSqlGuard();
    const started = performance.now();
    for (let i = 0; i < 200; i++) await checkReadOnlySql(`${TOP_PRODUCTS} -- ${i}`);
    const full = (performance.now() - started) / 200;
    await guard.check(TOP_PRODUCTS);
    const cachedStart = performance.now();
    for (let i = 0; i < 2000; i++) await guard.check(TOP_PRODUCTS);
    const cached = (performance.now() - cachedStart) / 2000;
    assert.ok(cached * 10 < full, `cached ${(cached * 1000).toFixed(1)} µs vs full ${(full * 1000).toFixed(1)} µs a call`);
  });

  test('the option limits apply to cached verdicts too', async () => {
    const guard = createCachedSqlGuard({ maxLength: 10 });
    await guard.check('select 1');
    const verdict = await guard.check('select 1 + 1 + 1');
    assert.equal(verdict.ok, false);
    assert.match(verdict.reason ?? '', /the limit is 10/);
  });

  test('unique texts never hold more than the entry limit', async () => {
    const guard = createCachedSqlGuard({ cacheEntries: 50 });
    for (let i = 0; i < 500; i++) await guard.check(`SELECT ${i} FROM retail.stores`);
    assert.equal(guard.stats().entries, 50);
    // The most recent are the ones kept.
    await guard.check('SELECT 499 FROM retail.stores');
    assert.equal(guard.stats().hits, 1);
  });

  test('unique long texts never hold more than the byte budget, and one huge text is not kept at all', async () => {
    const budget = 256 * 1024;
    const guard = createCachedSqlGuard({ cacheBytes: budget });
    const padding = 'x'.repeat(4_000);
    for (let i = 0; i < 300; i++) await guard.check(`SELECT '${padding}' AS v${i}, pg_sleep(${i})`);
    const { entries, bytes } = guard.stats();
    assert.ok(bytes <= budget, `${bytes} bytes cached`);
    assert.ok(entries > 10 && entries < 40, `${entries} entries of about 8 KB in 256 KB`);
    const huge = `SELECT '${'y'.repeat(20_000)}'`; // 40 KB: over a sixteenth of the budget
    await guard.check(huge);
    await guard.check(huge);
    assert.equal(guard.stats().hits, 0);
  });

  test('a text over the length limit is refused without being kept', async () => {
    const guard = createCachedSqlGuard();
    const verdict = await guard.check(`SELECT '${'x'.repeat(200_000)}'`);
    assert.match(verdict.reason ?? '', /too long/);
    assert.equal(guard.stats().entries, 0);
  });

  test('a cached verdict cannot be changed by the caller that received it', async () => {
    const guard = createCachedSqlGuard();
    const first = await guard.check('select pg_sleep(1)');
    assert.throws(() => {
      (first as { ok: boolean }).ok = true;
    }, TypeError);
    assert.equal((await guard.check('select pg_sleep(1)')).ok, false);
  });
});

describe('helpers and performance', () => {
  test('statementName names statements the way SQL spells them', () => {
    assert.equal(statementName('DeleteStmt', {}), 'DELETE');
    assert.equal(statementName('VariableSetStmt', { kind: 'VAR_RESET_ALL' }), 'RESET');
    assert.equal(statementName('TransactionStmt', { kind: 'TRANS_STMT_ROLLBACK_TO' }), 'ROLLBACK TO');
    assert.equal(statementName('CreateForeignTableStmt', {}), 'CREATE FOREIGN TABLE');
  });

  test('a typical query checks in well under 2 ms after warm-up', async () => {
    for (let i = 0; i < 50; i++) await checkReadOnlySql(TOP_PRODUCTS);
    const runs = 500;
    const started = performance.now();
    for (let i = 0; i < runs; i++) await checkReadOnlySql(TOP_PRODUCTS);
    const perQuery = (performance.now() - started) / runs;
    assert.ok(perQuery < 2, `average ${perQuery.toFixed(3)} ms per check`);
  });
});
