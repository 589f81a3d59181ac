// The schema answer follows the data (issue 10's "data that makes sense today", issue 12's data version): the
// values and the order date range get_multiple_table_schemas gives are read once and kept, and read again once
// the data version moves — a category added by an import, orders up to a later date after a seed — on both
// backends, without a restart. Without the data version (the service alone), what was read first is kept.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SchemaService } from '../src/analytics/schema.js';
import { DataVersionWatch, readDataVersion } from '../src/db/data-version.js';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import type { Identity } from '../src/db/types.js';
import { backendsUnderTest, createTestDatabase } from './support/databases.js';

const SEATTLE = STORES[0]!;
const headOffice: Identity = { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all', pii: true };
const seattle: Identity = { userId: SEATTLE.managerId, role: 'store_manager', storeIds: [SEATTLE.storeId] };

for (const { kind: backend, skip } of await backendsUnderTest()) {
  describe(`schema answers after a data change (${backend})`, { skip }, () => {
    test('a new category and a later last order date show in the next answer; a service without the data version keeps the first read', async () => {
      const t = await createTestDatabase(backend, { customers: 40 });
      const watch = new DataVersionWatch(() => readDataVersion(t.db), backend === 'server' ? t.config.databaseUrl : undefined);
      try {
        const fresh = new SchemaService(t.db, () => watch.newest());
        const frozen = new SchemaService(t.db);
        const read = async (service: SchemaService, who = headOffice) => {
          const [categories, orders] = await service.describe(who, ['categories', 'orders']);
          return { names: categories!.values!['category_name'] as string[], range: orders!.values!['order_date_range'] as string[] };
        };
        const before = await read(fresh);
        const seattleBefore = await read(fresh, seattle);
        assert.deepEqual(await read(frozen), before);
        assert.ok(!before.names.includes('Garden Furniture'));

        const versionBefore = await watch.newest();
        const later = '2031-05-17';
        await t.db.withAdminTransaction(async (session) => {
          await session.exec(`INSERT INTO retail.categories (category_name) VALUES ('Garden Furniture')`);
          await session.exec(
            `INSERT INTO retail.orders (customer_id, store_id, order_date)
               SELECT customer_id, store_id, DATE '${later}' FROM retail.orders WHERE store_id = ${SEATTLE.storeId} LIMIT 1`,
          );
        });

        // The server backend learns of the new version by NOTIFY, a moment after the commit.
        for (let waited = 0; (await watch.newest()) === versionBefore && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
        const after = await read(fresh);
        assert.ok(after.names.includes('Garden Furniture'), after.names.join(', '));
        assert.deepEqual(after.range, [before.range[0], later]);
        assert.deepEqual((await read(fresh, seattle)).range, [seattleBefore.range[0], later], "Seattle's own range, read again under its identity");
        assert.deepEqual((await read(frozen)).names, before.names, 'without the data version the first read is kept');
        assert.deepEqual(await fresh.filterValues().then((v) => v['category_name']!.includes('Garden Furniture')), true, 'filter hints too');
      } finally {
        await watch.close();
        await t.cleanup();
      }
    });
  });
}
