// Hints for empty answers whose filter names a store, category or product type that does not exist, read from
// PostgreSQL's own parse tree.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from 'libpg-query';
import { closestValues, comparisonsIn, filterHint } from '../src/analytics/filter-hints.js';
import { STORES } from '../src/data/stores.js';

const VALUES = {
  store_name: STORES.map((s) => s.name),
  category_name: ['Garden & Outdoor', 'Hand Tools', 'Paint & Supplies', 'Power Tools'],
  type_name: ['Hammers', 'Drills', 'Paint Brushes'],
};

before(async () => loadModule());

test('a store name that does not exist gets the close valid values', () => {
  const hint = filterHint("SELECT count(*) FROM retail.orders o JOIN retail.stores s USING (store_id) WHERE s.store_name = 'Seattle'", VALUES);
  assert.match(hint ?? '', /store_name = 'Seattle' matches no store; close valid values: 'Zava Retail Seattle'/);
  assert.match(hint ?? '', /get_multiple_table_schemas/);
});

test('exact values, matching LIKE patterns and unrelated filters give no hint', () => {
  for (const sql of [
    "SELECT 1 FROM retail.stores WHERE store_name = 'Zava Retail Seattle'",
    "SELECT 1 FROM retail.stores WHERE store_name LIKE '%Seattle%'",
    "SELECT 1 FROM retail.stores WHERE store_name ILIKE '%seattle'",
    "SELECT 1 FROM retail.orders WHERE order_date > '2026-01-01'",
    "SELECT 1 FROM retail.stores WHERE store_name <> 'Nowhere'",
    "SELECT 1 FROM retail.stores WHERE store_name NOT IN ('Nowhere')",
  ]) {
    assert.equal(filterHint(sql, VALUES), undefined, sql);
  }
});

test('every place and form a literal can take is found', () => {
  const forms = [
    "SELECT 1 FROM retail.stores WHERE 'Seatle' = store_name",
    "SELECT 1 FROM retail.stores WHERE store_name = 'Seatle'::text",
    "SELECT 1 FROM retail.stores WHERE store_name IN ('Zava Retail Tacoma', 'Seatle')",
    "WITH s AS (SELECT * FROM retail.stores WHERE store_name = 'Seatle') SELECT * FROM s",
    "SELECT 1 FROM retail.orders o JOIN retail.stores s ON s.store_id = o.store_id AND s.store_name = 'Seatle'",
    "SELECT (SELECT count(*) FROM retail.stores WHERE store_name LIKE 'Seatle%')",
  ];
  for (const sql of forms) {
    const found = comparisonsIn(sql).filter((c) => c.literal.startsWith('Seatle'));
    assert.equal(found.length, 1, sql);
    assert.match(filterHint(sql, VALUES) ?? '', /Zava Retail Seattle/, sql);
  }
});

test('categories and types are hinted too, case and spelling mistakes included', () => {
  assert.match(filterHint("SELECT 1 FROM retail.categories WHERE category_name = 'paint'", VALUES) ?? '', /'Paint & Supplies'/);
  assert.match(filterHint("SELECT 1 FROM retail.product_types WHERE type_name = 'Hamers'", VALUES) ?? '', /'Hammers'/);
  assert.match(filterHint("SELECT 1 FROM retail.categories WHERE category_name LIKE 'garden%'", VALUES) ?? '', /'Garden & Outdoor'/, 'LIKE is case-sensitive');
});

test('nothing close: a short list is shown whole, a long one is not invented', () => {
  assert.match(filterHint("SELECT 1 FROM retail.product_types WHERE type_name = 'Xylophones'", VALUES) ?? '', /'Hammers', 'Drills', 'Paint Brushes'/);
  assert.deepEqual(closestValues('zzzz', VALUES.store_name), []);
  assert.equal(filterHint('SELECT 1 FROM (', VALUES), undefined, 'unparseable SQL gives no hint');
});

test('execute_sales_query adds the hint to an empty answer, and only to an empty one', async () => {
  const { createTestDatabase } = await import('./support/databases.js');
  const { QueryService } = await import('../src/analytics/query.js');
  const { SchemaService } = await import('../src/analytics/schema.js');
  const { loadSqlGuard } = await import('../src/analytics/guard.js');
  const { createLogger } = await import('../src/infra/logger.js');
  const { HEAD_OFFICE_USER_ID } = await import('../src/data/stores.js');
  const t = await createTestDatabase('embedded');
  try {
    const schemas = new SchemaService(t.db);
    const service = new QueryService(t.db, await loadSqlGuard(), t.config, createLogger('silent', 'json'), async (sql) =>
      filterHint(sql, await schemas.filterValues()),
    );
    const empty = await service.execute(HEAD_OFFICE_USER_ID, "SELECT count(*) AS n FROM retail.stores WHERE store_name = 'Seattle' HAVING count(*) > 0");
    assert.equal(empty.result.n, 0);
    assert.match(empty.result.note ?? '', /store_name = 'Seattle' matches no store; close valid values: 'Zava Retail Seattle'/);
    const found = await service.execute(HEAD_OFFICE_USER_ID, "SELECT store_id FROM retail.stores WHERE store_name = 'Zava Retail Seattle'");
    assert.equal(found.result.n, 1);
    assert.equal(found.result.note, undefined);
    const noSales = await service.execute(HEAD_OFFICE_USER_ID, "SELECT 1 FROM retail.orders o JOIN retail.stores s USING (store_id) WHERE s.store_name = 'Zava Retail Seattle' AND o.order_date < '2000-01-01'");
    assert.equal(noSales.result.n, 0);
    assert.equal(noSales.result.note, undefined, 'right names, no data: no hint');
  } finally {
    await t.cleanup();
  }
});
