// The product catalog: the built-in Zava DIY catalog, or a retailer's own in the same documented JSON shape
// (categories → product types → products). Validated whole before anything is written.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DataLoadError } from '../infra/errors.js';

const ProductSchema = z.object({
  sku: z.string().trim().min(1).max(64).optional(),
  name: z.string().trim().min(1).max(200),
  description: z.string().trim().min(1).max(2000),
  price: z.number().positive().max(1_000_000),
});

const TypeSchema = z.object({
  name: z.string().trim().min(1).max(100),
  products: z.array(ProductSchema).min(1),
});

const CategorySchema = z.object({
  name: z.string().trim().min(1).max(100),
  /** Monthly sales multipliers, January to December; flat when absent. */
  seasonality: z.array(z.number().min(0).max(10)).length(12).optional(),
  types: z.array(TypeSchema).min(1),
});

const CatalogSchema = z.object({
  name: z.string().optional(),
  categories: z.array(CategorySchema).min(1),
});

export type Catalog = z.infer<typeof CatalogSchema>;
export type CatalogCategory = z.infer<typeof CategorySchema>;

/** A catalog product with the ids it will get in the database. */
export interface CatalogRow {
  readonly productId: number;
  readonly categoryId: number;
  /** Position of the product's category in the catalog (0-based), whatever its id. */
  readonly categoryIndex: number;
  readonly typeId: number;
  readonly sku: string;
  readonly name: string;
  readonly description: string;
  readonly priceCents: number;
}

export const DEFAULT_CATALOG_URL = new URL('../../../catalog/zava-diy-catalog.json', import.meta.url);

export function parseCatalog(text: string, source: string): Catalog {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DataLoadError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = CatalogSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DataLoadError(`${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const catalog = parsed.data;
  // Products are told apart by SKU: real catalogs repeat names (one name in two sizes, under two SKUs). A product
  // without a SKU gets one from its category, type and name, which the importer checks for repeats.
  const skus = new Set<string>();
  for (const category of catalog.categories) {
    for (const type of category.types) {
      for (const product of type.products) {
        if (product.sku && skus.has(product.sku)) throw new DataLoadError(`${source}: duplicate SKU ${product.sku}`);
        if (product.sku) skus.add(product.sku);
      }
    }
  }
  return catalog;
}

export function loadDefaultCatalog(): Catalog {
  return parseCatalog(readFileSync(DEFAULT_CATALOG_URL, 'utf8'), 'catalog/zava-diy-catalog.json');
}

/** Ids a catalog already has in the database, in catalog order (categories, types, products). */
export interface CatalogIds {
  readonly categories: readonly number[];
  readonly types: readonly number[];
  readonly products: readonly number[];
}

/**
 * Numbers the catalog the way it will be loaded: categories, types and products in file order from 1, or with
 * the ids it has in the database.
 */
export function catalogRows(catalog: Catalog, ids?: CatalogIds): CatalogRow[] {
  const rows: CatalogRow[] = [];
  let typeIndex = 0;
  catalog.categories.forEach((category, categoryIndex) => {
    for (const type of category.types) {
      const typeId = ids ? ids.types[typeIndex]! : typeIndex + 1;
      typeIndex++;
      for (const product of type.products) {
        const productId = ids ? ids.products[rows.length]! : rows.length + 1;
        rows.push({
          productId,
          categoryId: ids ? ids.categories[categoryIndex]! : categoryIndex + 1,
          categoryIndex,
          typeId,
          sku: product.sku ?? `ZAVA-${String(productId).padStart(5, '0')}`,
          name: product.name,
          description: product.description,
          priceCents: Math.round(product.price * 100),
        });
      }
    }
  });
  return rows;
}

/**
 * The catalog a database already holds (an imported one), with its ids: what a first run seeds sales around.
 * Selling prices are the base prices; seasonality comes from the categories' multipliers.
 */
export async function loadDatabaseCatalog(
  query: (sql: string) => Promise<{ rows: readonly (readonly unknown[])[] }>,
): Promise<{ catalog: Catalog; ids: CatalogIds }> {
  const result = await query(`
    SELECT c.category_id, c.category_name, c.seasonal_multipliers::text, t.type_id, t.type_name,
           p.product_id, p.sku, p.product_name, p.product_description, p.base_price::text
      FROM retail.products p
      JOIN retail.product_types t ON t.type_id = p.type_id
      JOIN retail.categories c ON c.category_id = t.category_id
     ORDER BY c.category_id, t.type_id, p.product_id`);
  const catalog: Catalog = { categories: [] };
  const ids = { categories: [] as number[], types: [] as number[], products: [] as number[] };
  let category: Catalog['categories'][number] | undefined;
  let type: Catalog['categories'][number]['types'][number] | undefined;
  for (const r of result.rows) {
    const [categoryId, categoryName, seasonality, typeId, typeName, productId, sku, name, description, price] = r as [
      number, string, string | null, number, string, number, string, string, string, string,
    ];
    if (ids.categories[ids.categories.length - 1] !== Number(categoryId)) {
      const multipliers = seasonality ? seasonality.replace(/[{}]/g, '').split(',').map(Number) : undefined;
      category = { name: categoryName, ...(multipliers ? { seasonality: multipliers } : {}), types: [] };
      catalog.categories.push(category);
      ids.categories.push(Number(categoryId));
      type = undefined;
    }
    if (!type || ids.types[ids.types.length - 1] !== Number(typeId)) {
      type = { name: typeName, products: [] };
      category!.types.push(type);
      ids.types.push(Number(typeId));
    }
    type.products.push({ sku, name, description, price: Number(price) });
    ids.products.push(Number(productId));
  }
  return { catalog, ids };
}
