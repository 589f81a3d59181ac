// Bounded results (src/db/bounded.ts): the wrapper keeps every query shape the guard accepts working, keeps its
// order and columns, and makes PostgreSQL itself refuse oversized rows and stop at the row and byte caps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BOUND_COLUMNS, boundedOutcome, boundedSelect, loadBoundedScanner, statementBody, type ResultBounds } from '../src/db/bounded.js';
import { QueryError } from '../src/infra/errors.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';

const BOUNDS: ResultBounds = { maxRows: 5, maxRowBytes: 1000, maxBytes: 2000 };

test('statementBody drops the semicolons around a statement, and only those', async () => {
  await loadBoundedScanner();
  assert.equal(statementBody('SELECT 1;'), 'SELECT 1');
  assert.equal(statementBody('  SELECT 1 ;; \n'), 'SELECT 1');
  assert.equal(statementBody(';SELECT 1'), 'SELECT 1');
  assert.equal(statementBody("SELECT 'a;b';"), "SELECT 'a;b'");
  assert.equal(statementBody('SELECT 1; -- done;'), 'SELECT 1');
  assert.equal(statementBody("/* é */ SELECT 'é;' AS x; /* c; */"), "SELECT 'é;' AS x");
  assert.equal(statementBody('SELECT $$;$$ -- c'), 'SELECT $$;$$');
  assert.equal(statementBody('SELECT 1 -- trailing comment'), 'SELECT 1 -- trailing comment');
});

describe('bounded results on PostgreSQL', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  before(async () => {
    t = await createTestDatabase('server', { seeded: false });
  });
  after(async () => t?.cleanup());

  async function run(sql: string, bounds: ResultBounds = BOUNDS): Promise<{ names: string[]; rows: unknown[][]; truncatedBy?: string }> {
    const result = await t.db.ownerQuery(boundedSelect(sql, bounds));
    const names = result.columns.slice(0, -BOUND_COLUMNS).map((c) => c.name);
    const outcome = boundedOutcome(result.rows, bounds);
    const rows = result.rows.slice(0, outcome.keep).map((r) => r.slice(0, -BOUND_COLUMNS));
    return { names, rows, ...(outcome.truncatedBy ? { truncatedBy: outcome.truncatedBy } : {}) };
  }

  test('every query shape keeps its columns, values and order', async () => {
    const cases: [string, string[], unknown[][]][] = [
      ['SELECT 1 AS a, 2 AS a;', ['a', 'a'], [[1, 2]]],
      ["SELECT 1 AS zq, 'x' AS \"zava#row_bytes2\" -- a comment", ['zq', 'zava#row_bytes2'], [[1, 'x']]],
      ['VALUES (3), (1), (2) ORDER BY 1 DESC', ['column1'], [[3], [2], [1]]],
      ['WITH t(n) AS (VALUES (2), (1)) SELECT n FROM t ORDER BY n', ['n'], [[1], [2]]],
      ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r ORDER BY n DESC;', ['n'], [[3], [2], [1]]],
      ['SELECT 2 AS n UNION SELECT 1 ORDER BY n', ['n'], [[1], [2]]],
      ['(SELECT 1 AS n) EXCEPT (SELECT 2) ;', ['n'], [[1]]],
      ['SELECT g FROM generate_series(1, 3) g ORDER BY g DESC LIMIT 2 /* trailing; */', ['g'], [[3], [2]]],
      ['SELECT ROW(1, 2) AS r, ARRAY[1, 2] AS a', ['r', 'a'], [['(1,2)', [1, 2]]]],
      ["SELECT 'abc' AS s", ['s'], [['abc']]],
      ['SELECT', [], [[]]],
    ];
    for (const [sql, names, rows] of cases) {
      const result = await run(sql);
      assert.deepEqual(result.names, names, sql);
      assert.deepEqual(result.rows, rows, sql);
      assert.equal(result.truncatedBy, undefined, sql);
    }
  });

  test('the row cap: maxRows + 1 rows are evaluated, the extra one says there were more', async () => {
    const result = await run('SELECT g FROM generate_series(1, 1000000) g');
    assert.equal(result.rows.length, BOUNDS.maxRows);
    assert.equal(result.truncatedBy, 'rows');
    // A query whose 7th row would fail is never evaluated that far.
    const lazy = await run('SELECT 10 / (7 - g) AS x FROM generate_series(1, 10) g');
    assert.equal(lazy.rows.length, BOUNDS.maxRows);
  });

  test('a row larger than maxRowBytes fails in PostgreSQL with SQLSTATE 54000', async () => {
    for (const sql of [
      "SELECT repeat('x', 5000)",
      "SELECT lpad('', 1001, 'y') AS a",
      "SELECT string_agg('z', '') FROM generate_series(1, 2000)",
      'SELECT array_agg(g) FROM generate_series(1, 1000) g',
      "SELECT 1 AS zq, repeat('x', 2000) AS big WHERE true",
    ]) {
      await assert.rejects(run(sql), (error: unknown) => {
        assert.ok(error instanceof QueryError, sql);
        assert.equal(error.sqlState, '54000', sql);
        assert.match(error.message, /a result row is larger than 1000 bytes/);
        return true;
      });
    }
    // No row at all: nothing is measured, nothing fails.
    assert.deepEqual((await run("SELECT repeat('x', 5000) WHERE false")).rows, []);
  });

  test('the byte budget: rows past it are not sent, except the first that crosses it', async () => {
    // Each row's text form is 502 bytes: four fit before the 2000-byte budget is crossed by the fourth.
    const result = await run("SELECT repeat('x', 500) AS v FROM generate_series(1, 5)", { maxRows: 100, maxRowBytes: 1000, maxBytes: 2000 });
    assert.equal(result.rows.length, 4);
    assert.equal(result.truncatedBy, 'bytes');
    const fits = await run("SELECT repeat('x', 500) AS v FROM generate_series(1, 3)", { maxRows: 100, maxRowBytes: 1000, maxBytes: 2000 });
    assert.equal(fits.rows.length, 3);
    assert.equal(fits.truncatedBy, undefined);
  });

  test('anything but a query is a syntax error inside the wrapper', async () => {
    for (const sql of ['SET work_mem = 1', 'SELECT 1; SELECT 2', 'COMMIT', 'SHOW ALL', 'EXPLAIN SELECT 1', 'SELECT 1 INTO x', 'COPY (SELECT 1) TO STDOUT']) {
      await assert.rejects(run(sql), (error: unknown) => error instanceof QueryError && error.sqlState === '42601', sql);
    }
  });
});
