// The catalog and the deterministic generator: content requirements, same seed → same bytes, and the
// distributions SPEC.md asks for, measured on a generated dataset (no database needed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { catalogRows, loadDefaultCatalog, parseCatalog } from '../src/data/catalog.js';
import { generateDataset, type Dataset } from '../src/data/generator.js';
import { STORES, YEAR_WEIGHTS } from '../src/data/stores.js';
import { DataLoadError } from '../src/infra/errors.js';

const catalog = loadDefaultCatalog();

function table(dataset: Dataset, name: string): string[][] {
  const load = dataset.tables.find((t) => t.table === name);
  assert.ok(load, `table ${name}`);
  // The generated CSV quotes only fields with commas or quotes; split respecting quotes.
  return load.csv
    .trimEnd()
    .split('\n')
    .map((line) => [...line.matchAll(/("([^"]|"")*"|[^,]*)(,|$)/g)].map((m) => m[1]!.replace(/^"|"$/g, '').replaceAll('""', '"')).slice(0, load.columns.length));
}

describe('catalog', () => {
  test('has at least 400 products in at least 10 categories and 40 types, each described and priced', () => {
    const rows = catalogRows(catalog);
    assert.ok(catalog.categories.length >= 10, `${catalog.categories.length} categories`);
    assert.ok(catalog.categories.flatMap((c) => c.types).length >= 40);
    assert.ok(rows.length >= 400, `${rows.length} products`);
    for (const p of rows) {
      assert.match(p.sku, /^[A-Z]{2}-[A-Z]{3}-\d{3}$/);
      assert.ok(p.name.length > 5 && p.description.length > 30, p.name);
      assert.ok(p.priceCents > 0);
      // Unit abbreviations ("1/2 in.", "16 oz.") do not end a sentence.
      const text = p.description.replace(/\b(in|ft|oz|lb|lbs|no|gal|qt|yd|sq|cu)\./gi, '$1');
      const sentences = text.split(/[.!?](?:\s|$)/).filter((s) => s.trim().length > 0).length;
      assert.ok(sentences >= 1 && sentences <= 3, `${p.name}: one or two sentences`);
    }
    assert.equal(new Set(rows.map((p) => p.sku)).size, rows.length);
    assert.equal(new Set(rows.map((p) => p.name)).size, rows.length);
  });

  test('every category carries twelve Washington State monthly multipliers; garden peaks in spring', () => {
    for (const category of catalog.categories) assert.equal(category.seasonality?.length, 12, category.name);
    const garden = catalog.categories.find((c) => /garden/i.test(c.name))!.seasonality!;
    const spring = (garden[3]! + garden[4]!) / 2;
    const winter = (garden[11]! + garden[0]!) / 2;
    assert.ok(spring > winter * 1.3, `garden spring ${spring} vs winter ${winter}`);
  });

  test('invalid catalogs are refused with the field at fault', () => {
    assert.throws(() => parseCatalog('{', 'x.json'), DataLoadError);
    assert.throws(() => parseCatalog('{"categories":[{"name":"A","types":[{"name":"T","products":[{"name":"P","description":"d","price":-1}]}]}]}', 'x.json'), /categories\.0\.types\.0\.products\.0\.price/);
    const duplicate = { categories: [{ name: 'A', types: [{ name: 'T', products: [{ sku: 'S', name: 'P', description: 'd', price: 1 }, { sku: 'S', name: 'Q', description: 'd', price: 1 }] }] }] };
    assert.throws(() => parseCatalog(JSON.stringify(duplicate), 'x.json'), /duplicate SKU S/);
  });
});

describe('generator', () => {
  const big = generateDataset({ catalog, customers: 4000, seed: 11, endDate: '2026-12-31' });

  test('the same seed gives byte-identical data; another seed gives other data', () => {
    const a = generateDataset({ catalog, customers: 500, seed: 3 });
    const b = generateDataset({ catalog, customers: 500, seed: 3 });
    const c = generateDataset({ catalog, customers: 500, seed: 4 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.tables.find((t) => t.table === 'retail.orders'), c.tables.find((t) => t.table === 'retail.orders'));
  });

  test('no order falls after the end date; up to it the data is the same as with a later end date', () => {
    const early = generateDataset({ catalog, customers: 800, seed: 5, endDate: '2026-11-26' });
    const late = generateDataset({ catalog, customers: 800, seed: 5, endDate: '2026-12-31' });
    const earlyOrders = table(early, 'retail.orders');
    const lateOrders = table(late, 'retail.orders');
    assert.ok(earlyOrders.length > 0);
    assert.ok(earlyOrders.every((o) => String(o[3]) <= '2026-11-26'), 'no order after the end date');
    assert.ok(lateOrders.some((o) => String(o[3]) > '2026-11-26'), 'the later end date has December orders');
    // The same orders up to the end date (ids differ once a dropped order is skipped, so compare customer, store, date).
    const key = (o: unknown[]) => `${o[1]}|${o[2]}|${o[3]}`;
    assert.deepEqual(earlyOrders.map(key), lateOrders.filter((o) => String(o[3]) <= '2026-11-26').map(key));
    // Order ids stay dense and every line belongs to a recorded order.
    assert.deepEqual(earlyOrders.map((o) => Number(o[0])), earlyOrders.map((_, i) => i + 1));
    const orderIds = new Set(earlyOrders.map((o) => String(o[0])));
    assert.ok(table(early, 'retail.order_items').every((line) => orderIds.has(String(line[1]))));
    assert.ok(table(early, 'zava_data.customers').every((c) => String(c[6]).slice(0, 10) <= '2026-11-26'), 'no customer joins after the end date');
    assert.deepEqual(generateDataset({ catalog, customers: 300, seed: 9, endDate: '2024-03-01' }), generateDataset({ catalog, customers: 300, seed: 9, endDate: '2024-03-01' }));
    assert.throws(() => generateDataset({ catalog, customers: 10, seed: 1, endDate: '2026-02-30' }), /end date must be a date/);
    assert.throws(() => generateDataset({ catalog, customers: 10, seed: 1, endDate: '2019-12-31' }), /2020-01-01 or later/);
  });

  test('customers follow the store weights', () => {
    const customers = table(big, 'zava_data.customers');
    const totalWeight = STORES.reduce((s, x) => s + x.customerWeight, 0);
    for (const store of STORES) {
      const share = customers.filter((c) => Number(c[5]) === store.storeId).length / customers.length;
      const expected = store.customerWeight / totalWeight;
      assert.ok(Math.abs(share - expected) < 0.03, `${store.name}: ${share.toFixed(3)} vs ${expected.toFixed(3)}`);
    }
  });

  test('orders: about two per customer, 2020–2026 with growing years, each in its customer store', () => {
    const customers = new Map(table(big, 'zava_data.customers').map((c) => [c[0], Number(c[5])]));
    const orders = table(big, 'retail.orders');
    const perCustomer = orders.length / customers.size;
    assert.ok(perCustomer > 1.6 && perCustomer < 2.5, `${perCustomer} orders per customer`);
    const byYear = new Map<number, number>();
    for (const [, customerId, storeId, date] of orders) {
      assert.equal(Number(storeId), customers.get(customerId!));
      const year = Number(date!.slice(0, 4));
      byYear.set(year, (byYear.get(year) ?? 0) + 1);
    }
    assert.deepEqual([...byYear.keys()].sort(), YEAR_WEIGHTS.map(([y]) => y));
    assert.ok(byYear.get(2026)! > byYear.get(2020)! * 1.3, 'volume grows from 2020 to 2026');
    // Online and Seattle customers order more often than Kirkland's (frequency 1.5 vs 0.7).
    const ordersPerStoreCustomer = (storeId: number) =>
      orders.filter((o) => Number(o[2]) === storeId).length / [...customers.values()].filter((s) => s === storeId).length;
    assert.ok(ordersPerStoreCustomer(1) > ordersPerStoreCustomer(7) * 1.5);
  });

  test('order lines: 1–5 per order, prices within ±20% of base, 15% discounted by 5–25%, totals add up', () => {
    const base = new Map(catalogRows(catalog).map((p) => [String(p.productId), p.priceCents]));
    const items = table(big, 'retail.order_items');
    const perOrder = new Map<string, number>();
    let discounted = 0;
    for (const [, orderId, , productId, quantity, unit, percent, discount, total] of items) {
      perOrder.set(orderId!, (perOrder.get(orderId!) ?? 0) + 1);
      const unitCents = Math.round(Number(unit) * 100);
      const baseCents = base.get(productId!)!;
      assert.ok(unitCents >= Math.floor(baseCents * 0.8) - 1 && unitCents <= Math.ceil(baseCents * 1.2) + 1, `price ${unit} vs base ${baseCents}`);
      const pct = Number(percent);
      if (pct > 0) {
        discounted++;
        assert.ok(pct >= 5 && pct <= 25);
      }
      const gross = unitCents * Number(quantity);
      assert.equal(Math.round(Number(discount) * 100), Math.round((gross * pct) / 100));
      assert.equal(Math.round(Number(total) * 100), gross - Math.round((gross * pct) / 100));
    }
    for (const count of perOrder.values()) assert.ok(count >= 1 && count <= 5);
    const share = discounted / items.length;
    assert.ok(share > 0.12 && share < 0.18, `${share} discounted`);
    const linesPerOrder = items.length / perOrder.size;
    assert.ok(linesPerOrder > 1.7 && linesPerOrder < 2.4, `${linesPerOrder} lines per order`);
  });

  test('products keep a 33% gross margin', () => {
    for (const [, , , , , cost, price, margin] of table(big, 'retail.products')) {
      assert.equal(margin, '33.00');
      assert.ok(Math.abs(Number(cost) - Number(price) * 0.67) <= 0.011, `${cost} vs ${price}`);
    }
  });

  test('seasonality shows: garden sells more in May than in December', () => {
    const rows = catalogRows(catalog);
    const gardenCategory = catalog.categories.findIndex((c) => /garden/i.test(c.name)) + 1;
    const garden = new Set(rows.filter((p) => p.categoryId === gardenCategory).map((p) => String(p.productId)));
    const orderMonth = new Map(table(big, 'retail.orders').map((o) => [o[0], Number(o[3]!.slice(5, 7))]));
    const share = (month: number) => {
      const lines = table(big, 'retail.order_items').filter((i) => orderMonth.get(i[1]) === month);
      return lines.filter((i) => garden.has(i[3]!)).length / lines.length;
    };
    assert.ok(share(5) > share(12) * 1.3, `May ${share(5)} vs December ${share(12)}`);
  });

  test('refuses a negative size', () => {
    assert.throws(() => generateDataset({ catalog, customers: -1, seed: 1 }));
  });
});
