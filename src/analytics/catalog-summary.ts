// zava://catalog/categories: the categories with their product types and product counts, and each category's
// Washington State seasonal multipliers, read under the caller's identity like every other answer.
import type { Database, Identity } from '../db/types.js';

export interface CatalogCategory {
  category: string;
  products: number;
  product_types: Array<{ type: string; products: number }>;
  /** January first; null when the catalog gave none. */
  seasonal_multipliers: number[] | null;
}

export async function catalogCategories(db: Database, identity: Identity, signal?: AbortSignal): Promise<CatalogCategory[]> {
  const { rows } = await db.withIdentity(
    identity,
    (session) =>
      session.query(
        `SELECT c.category_name, c.seasonal_multipliers::float8[], t.type_name, count(p.product_id)
           FROM retail.categories c
           LEFT JOIN retail.product_types t ON t.category_id = c.category_id
           LEFT JOIN retail.products p ON p.type_id = t.type_id
          GROUP BY c.category_name, c.seasonal_multipliers, t.type_name
          ORDER BY c.category_name, t.type_name`,
        [],
        { maxRows: 10_000 },
      ),
    { signal },
  );
  const categories = new Map<string, CatalogCategory>();
  for (const [name, multipliers, type, count] of rows as [string, number[] | null, string | null, number][]) {
    let category = categories.get(name);
    if (!category) {
      category = { category: name, products: 0, product_types: [], seasonal_multipliers: Array.isArray(multipliers) ? multipliers.map(Number) : null };
      categories.set(name, category);
    }
    if (type !== null) {
      category.product_types.push({ type, products: Number(count) });
      category.products += Number(count);
    }
  }
  return [...categories.values()];
}
