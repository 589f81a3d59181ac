// Deterministic sales data for Zava Retail: the same catalog, customer count and seed give byte-identical
// output. Distributions follow SPEC.md: store customer weights, order frequency and value multipliers, year
// growth 2020–2026, Washington State seasonality per category, 1–5 lines an order, prices ±20% around base,
// 15% of lines discounted 5–25%, a 33% gross margin.
import { Faker, en, en_US } from '@faker-js/faker';
import { catalogRows, type Catalog, type CatalogIds } from './catalog.js';
import { Random, WeightedPicker } from './random.js';
import { REGIONAL_MANAGERS, STORES, YEAR_WEIGHTS, type StoreDefinition } from './stores.js';
import { FIRST_DAY, isoDate, parseEndDate, todayUtc } from './dates.js';

export { parseEndDate, todayUtc } from './dates.js';

export const GROSS_MARGIN_PERCENT = 33;

export interface GeneratorOptions {
  readonly catalog: Catalog;
  /**
   * The catalog is already in the database with these ids (an imported one): sales are generated around it and
   * the catalog tables are not part of the dataset.
   */
  readonly catalogIds?: CatalogIds | undefined;
  readonly customers: number;
  readonly seed: number;
  /**
   * The day the data is generated for (YYYY-MM-DD, UTC; default today): no order falls after it, so "this year"
   * and "last quarter" never include sales that have not happened. The same seed and end date give the same data.
   */
  readonly endDate?: string | undefined;
  /** Called now and then with what is done so far. */
  readonly onProgress?: (customersDone: number) => void;
}

/** One table's rows as CSV (no header), ready for COPY. */
export interface TableLoad {
  readonly table: string;
  readonly columns: readonly string[];
  readonly csv: string;
  readonly rows: number;
}

export interface Dataset {
  /** In dependency order. */
  readonly tables: readonly TableLoad[];
  readonly counts: Readonly<Record<string, number>>;
}

// Orders a customer places before the store's frequency multiplier: mean 1.5 (about 2 after the multiplier),
// so the reference 100,000 customers give about 200,000 orders.
const ORDERS_PER_CUSTOMER = new WeightedPicker([0, 1, 2, 3, 4, 5], [28, 31, 19, 11, 7, 4]);
// Lines per order: mean about 2, so about 400,000 lines at reference size.
const LINES_PER_ORDER = new WeightedPicker([1, 2, 3, 4, 5], [45, 28, 14, 9, 4]);
const BASE_QUANTITY = new WeightedPicker([1, 2, 3, 4], [60, 25, 10, 5]);
const DISCOUNTED_SHARE = 0.15;
const LAST_DAY = Date.UTC(2026, 11, 31);

function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) || text === '' ? `"${text.replaceAll('"', '""')}"` : text;
}

class CsvTable {
  private readonly lines: string[] = [];
  constructor(
    readonly table: string,
    readonly columns: readonly string[],
  ) {}
  add(...values: (string | number | boolean | null)[]): void {
    this.lines.push(values.map(csvField).join(','));
  }
  done(): TableLoad {
    return { table: this.table, columns: this.columns, csv: this.lines.length ? `${this.lines.join('\n')}\n` : '', rows: this.lines.length };
  }
}

const money = (cents: number) => (cents / 100).toFixed(2);
const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month + 1, 0)).getUTCDate();

export function generateDataset(options: GeneratorOptions): Dataset {
  const { catalog, seed } = options;
  if (!Number.isInteger(options.customers) || options.customers < 0) throw new Error('customers must be a whole number ≥ 0');
  const endDay = parseEndDate(options.endDate ?? todayUtc());
  const random = new Random(seed);
  const faker = new Faker({ locale: [en_US, en] });
  faker.seed(seed);

  const products = catalogRows(catalog, options.catalogIds);
  const categories = new CsvTable('retail.categories', ['category_id', 'category_name', 'seasonal_multipliers']);
  const types = new CsvTable('retail.product_types', ['type_id', 'category_id', 'type_name']);
  const productTable = new CsvTable('retail.products', [
    'product_id', 'sku', 'product_name', 'category_id', 'type_id', 'cost', 'base_price', 'gross_margin_percent', 'product_description',
  ]);
  let typeId = 0;
  catalog.categories.forEach((category, index) => {
    categories.add(index + 1, category.name, category.seasonality ? `{${category.seasonality.join(',')}}` : null);
    for (const type of category.types) types.add(++typeId, index + 1, type.name);
  });
  for (const p of products) {
    const costCents = Math.round((p.priceCents * (100 - GROSS_MARGIN_PERCENT)) / 100);
    productTable.add(p.productId, p.sku, p.name, p.categoryId, p.typeId, money(costCents), money(p.priceCents), GROSS_MARGIN_PERCENT.toFixed(2), p.description);
  }

  const stores = new CsvTable('zava_data.stores', ['store_id', 'store_name', 'rls_user_id', 'is_online', 'region']);
  for (const s of STORES) stores.add(s.storeId, s.name, s.managerId, s.isOnline, s.region);
  const regional = new CsvTable('zava_private.regional_managers', ['rls_user_id', 'region', 'manager_name']);
  for (const m of REGIONAL_MANAGERS) for (const region of m.regions) regional.add(m.managerId, region, m.name);

  // Seasonality: each category's monthly multiplier, and the month mix of all orders from their average.
  const seasonality = catalog.categories.map((c) => c.seasonality ?? Array<number>(12).fill(1));
  const monthWeights = Array.from({ length: 12 }, (_, m) => seasonality.reduce((sum, s) => sum + s[m]!, 0) / seasonality.length);
  const monthPicker = new WeightedPicker([...monthWeights.keys()], monthWeights);
  const yearPicker = new WeightedPicker(YEAR_WEIGHTS.map(([year]) => year), YEAR_WEIGHTS.map(([, w]) => w));
  // Some products sell better than others, whatever the month.
  const popularity = products.map(() => 0.4 + random.next() * 1.2);
  const productPickers = Array.from(
    { length: 12 },
    (_, m) => new WeightedPicker(products, products.map((p, i) => seasonality[p.categoryIndex]![m]! * popularity[i]!)),
  );
  const storePicker = new WeightedPicker(STORES, STORES.map((s) => s.customerWeight));

  const customers = new CsvTable('zava_data.customers', ['customer_id', 'first_name', 'last_name', 'email', 'phone', 'primary_store_id', 'created_at']);
  const orders = new CsvTable('retail.orders', ['order_id', 'customer_id', 'store_id', 'order_date']);
  const items = new CsvTable('retail.order_items', [
    'order_item_id', 'order_id', 'store_id', 'product_id', 'quantity', 'unit_price', 'discount_percent', 'discount_amount', 'total_amount',
  ]);
  let orderId = 0;
  let itemId = 0;
  const orderDates: number[] = [];
  for (let customerId = 1; customerId <= options.customers; customerId++) {
    const store: StoreDefinition = storePicker.pick(random);
    const first = faker.person.firstName();
    const last = faker.person.lastName();
    const email = `${first}.${last}.${customerId}@example.com`.toLowerCase().replace(/[^a-z0-9.@]/g, '');
    const phone = faker.phone.number({ style: 'national' });

    orderDates.length = 0;
    const orderCount = Math.round(ORDERS_PER_CUSTOMER.pick(random) * store.orderFrequency);
    for (let o = 0; o < orderCount; o++) {
      const year = yearPicker.pick(random);
      const month = monthPicker.pick(random);
      const day = random.int(1, daysInMonth(year, month));
      const date = Math.min(Date.UTC(year, month, day), LAST_DAY);
      // An order after the end date has not happened: its draws are still made, so the data up to any end date
      // is the same for one seed, but it is not recorded.
      const happened = date <= endDay;
      orderDates.push(date); // drawn orders, happened or not: the draws below must not depend on the end date
      if (happened) {
        orders.add(++orderId, customerId, store.storeId, isoDate(date));
      }
      const lines = LINES_PER_ORDER.pick(random);
      const chosen = new Set<number>();
      for (let l = 0; l < lines; l++) {
        const product = productPickers[month]!.pick(random);
        if (chosen.has(product.productId)) continue; // one line per product in an order
        chosen.add(product.productId);
        const quantity = Math.max(1, Math.round(BASE_QUANTITY.pick(random) * store.orderValue));
        const unitCents = Math.round(product.priceCents * random.between(0.8, 1.2));
        const discountPercent = random.chance(DISCOUNTED_SHARE) ? random.int(5, 25) : 0;
        const grossCents = unitCents * quantity;
        const discountCents = Math.round((grossCents * discountPercent) / 100);
        if (happened) {
          items.add(++itemId, orderId, store.storeId, product.productId, quantity, money(unitCents), discountPercent, money(discountCents), money(grossCents - discountCents));
        }
      }
    }
    // A customer joined before their first order (or at some point, if they never ordered).
    const firstOrder = orderDates.length ? Math.min(...orderDates) : FIRST_DAY + random.int(0, 2190) * 86_400_000;
    const createdAt = Math.min(
      endDay,
      Math.max(Date.UTC(2019, 0, 1), firstOrder - random.int(0, 365) * 86_400_000 - random.int(0, 86_399) * 1000),
    );
    customers.add(customerId, first, last, email, phone, store.storeId, new Date(createdAt).toISOString());
    if (options.onProgress && customerId % 5000 === 0) options.onProgress(customerId);
  }
  options.onProgress?.(options.customers);

  const inventory = new CsvTable('retail.inventory', ['store_id', 'product_id', 'stock_level']);
  for (const store of STORES) {
    const ceiling = 40 + store.customerWeight * 8;
    for (const p of products) inventory.add(store.storeId, p.productId, random.int(0, ceiling));
  }

  const catalogTables = options.catalogIds ? [] : [categories, types, productTable];
  const tables = [stores, regional, ...catalogTables, customers, orders, items, inventory].map((t) => t.done());
  return { tables, counts: Object.fromEntries(tables.map((t) => [t.table, t.rows])) };
}
