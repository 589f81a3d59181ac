// `zava-mcp embeddings rebuild` and `zava-mcp catalog import`, run as a user runs them: a spawned process on a
// real test database (embedded and PostgreSQL service), its exit code, its messages and what it left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { backendsUnderTest, createTestDatabase, sampleCatalog, type TestDatabase } from './support/databases.js';
import { runCli as run } from './support/cli.js';
import { writeReferenceCatalog } from './support/reference-catalog.js';



// Every category of the built-in catalog with 2 of its product types and 2 products of each: the commands below
// embed the whole catalog in spawned processes, several times on each backend, and nothing they are checked for
// grows with its size (608 products made this the suite's slowest file).
const CATALOG = sampleCatalog(2, 2);
const PRODUCTS = CATALOG.categories.reduce((n, category) => n + category.types.reduce((m, type) => m + type.products.length, 0), 0);

const PETS = {
  name: 'Pet corner',
  categories: [
    {
      name: 'Pet Supplies',
      types: [
        {
          name: 'Leashes & Collars',
          products: [
            { sku: 'PET-LSH-001', name: 'Zava 6 ft Nylon Dog Leash', description: 'A strong nylon leash with a padded handle for daily walks.', price: 14.99 },
            { name: 'Zava Reflective Dog Collar, Medium', description: 'An adjustable collar with reflective stitching for walks after dark.', price: 11.49 },
          ],
        },
      ],
    },
  ],
};

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`zava-mcp embeddings and catalog commands on the ${kind} backend`, { skip }, () => {
    let t: TestDatabase;
    let dir: string;
    /** Owner-side count on the server backend; the embedded database belongs to the spawned process meanwhile. */
    const count = async (sql: string): Promise<number | undefined> =>
      kind === 'server' ? Number((await t.db.ownerQuery(sql)).rows[0]![0]) : undefined;

    before(async () => {
      // The commands below embed it; PGlite is single-process: on that backend the CLI opens the directory itself.
      t = await createTestDatabase(kind, { customers: 40, embeddings: false, catalog: CATALOG, open: false });
      dir = await mkdtemp(path.join(tmpdir(), 'zava-cli-search-'));
    });
    after(async () => {
      await t?.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('embeddings rebuild: embeds in batches with progress, then has nothing to do; --force and bad flags', async () => {
      const bad = await run(['embeddings', 'rebuild', ...t.flags, '--batch-size', 'lots']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /zava-mcp: --batch-size must be a whole number/);

      const first = await run(['embeddings', 'rebuild', ...t.flags, '--batch-size', String(PRODUCTS / 2)]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /Embedding products with zava-local-\S+ 50%/, 'progress on stderr, batch by batch');
      assert.match(first.stderr, new RegExp(`embedded ${PRODUCTS} of ${PRODUCTS} products with zava-local-\\S+ \\(\\d+ dimensions\\)`));
      assert.match(first.stderr, new RegExp(`Stored: zava-local-\\S+ × ${PRODUCTS}`));
      assert.equal(first.stdout, '');
      assert.equal(await count('SELECT count(*) FROM retail.product_description_embeddings'), kind === 'server' ? PRODUCTS : undefined);

      const again = await run(['embeddings', 'rebuild', ...t.flags]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, new RegExp(`all ${PRODUCTS} products already have zava-local-\\S+ embeddings; nothing to do`));

      if (kind === 'server') {
        const forced = await run(['embeddings', 'rebuild', ...t.flags, '--force']);
        assert.equal(forced.code, 0, forced.stderr);
        assert.match(forced.stderr, new RegExp(`embedded ${PRODUCTS} of ${PRODUCTS} products`));
      }
    });

    test('catalog import: a bad file is refused with its line and nothing changes; a good one is imported and embedded', async () => {
      const missing = await run(['catalog', 'import', ...t.flags]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /catalog import needs exactly one file/);

      const badFile = path.join(dir, 'bad.json');
      const bad = structuredClone(PETS) as { categories: Array<{ types: Array<{ products: Array<Record<string, unknown>> }> }> };
      bad.categories[0]!.types[0]!.products[1]!.price = 'cheap';
      await writeFile(badFile, JSON.stringify(bad, null, 2));
      const refused = await run(['catalog', 'import', badFile, ...t.flags]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /zava-mcp: bad\.json:\d+: field categories\.0\.types\.0\.products\.1\.price: /);
      assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(await count("SELECT (SELECT count(*) FROM retail.products WHERE sku LIKE 'PET-%') + (SELECT count(*) FROM retail.categories WHERE category_name = 'Pet Supplies')"), kind === 'server' ? 0 : undefined);

      const goodFile = path.join(dir, 'pets.json');
      await writeFile(goodFile, JSON.stringify(PETS, null, 2));
      const imported = await run(['catalog', 'import', goodFile, ...t.flags]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stderr, /imported .*pets\.json: 2 new and 0 updated products, 1 new categories, 1 new product types; embedded \d+ with zava-local-/);
      if (kind === 'server') {
        assert.equal(await count("SELECT count(*) FROM retail.products p JOIN retail.categories c USING (category_id) WHERE c.category_name = 'Pet Supplies'"), 2);
        assert.equal(await count('SELECT count(*) FROM retail.product_description_embeddings'), PRODUCTS + 2);
        assert.equal(await count('SELECT count(DISTINCT model) FROM retail.product_description_embeddings'), 1, 'one model for the whole catalog');
      }
    });

    test("catalog import: the reference system's product_data.json layout; --with-orders needs --replace", async () => {
      const file = path.join(dir, 'product_data.json');
      await writeReferenceCatalog(file, [
        {
          name: 'PET SUPPLIES',
          seasonality: [1, 1, 1.1, 1.2, 1.3, 1.3, 1.3, 1.2, 1.1, 1, 1, 1.4],
          types: [
            {
              name: 'LEASHES & COLLARS',
              products: [
                { name: 'Zava Bungee Dog Leash', sku: 'REF-PET-101', price: 10, description: 'A shock-absorbing bungee leash.', stock_level: 7, vectors: true },
                { name: 'Zava Bungee Dog Leash', price: 12, description: 'The same leash, 8 ft long.', stock_level: 2, vectors: true },
              ],
            },
          ],
        },
      ], { shuffledKeys: true });
      const misuse = await run(['catalog', 'import', file, '--with-orders', ...t.flags]);
      assert.equal(misuse.code, 1);
      assert.match(misuse.stderr, /zava-mcp: --with-orders only goes with --replace/);
      const imported = await run(['catalog', 'import', file, ...t.flags]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(
        imported.stderr,
        /imported .*product_data\.json: 2 new and 0 updated products, 0 new categories, 0 new product types; embedded \d+ with zava-local-\S+; stored the file's 2 text-embedding-3-small embeddings\. Stock levels of 2 products set in 8 stores\. \(The reference product_data\.json layout\.\)/,
      );
      if (kind === 'server') {
        assert.equal(await count("SELECT count(*) FROM retail.product_description_embeddings WHERE model = 'text-embedding-3-small' AND imported"), 2);
        assert.equal(await count("SELECT count(*) FROM retail.inventory i JOIN retail.products p USING (product_id) WHERE p.product_name = 'Zava Bungee Dog Leash'"), 16);
      }
    });
  });
}
