// What an identity sees of every table, asked through the tools, and the same counted by hand as the owner
// (the ground truth): shared by the RLS suites of dev mode (mcp-rls) and jwt mode (auth-jwt).

/** What each identity may see, asked through the tool. */
export const PROBE = `SELECT (SELECT count(*) FROM retail.orders) AS orders,
       (SELECT count(*) FROM retail.order_items) AS items,
       (SELECT count(*) FROM retail.customers) AS customers,
       (SELECT count(*) FROM retail.inventory) AS inventory,
       (SELECT coalesce(sum(total_amount), 0) FROM retail.order_items) AS revenue,
       (SELECT coalesce(string_agg(DISTINCT store_id::text, ',' ORDER BY store_id::text), '') FROM retail.orders) AS stores,
       (SELECT count(*) FROM retail.products) AS products,
       (SELECT count(*) FROM retail.stores) AS all_stores`;

/** The same, as the owner, filtered by hand: the ground truth. */
export function truthSql(storeIds: readonly number[]): string {
  const ids = `'{${storeIds.join(',')}}'::int[]`;
  return `SELECT (SELECT count(*) FROM retail.orders WHERE store_id = ANY(${ids})),
       (SELECT count(*) FROM retail.order_items WHERE store_id = ANY(${ids})),
       (SELECT count(*) FROM retail.customers WHERE primary_store_id = ANY(${ids})),
       (SELECT count(*) FROM retail.inventory WHERE store_id = ANY(${ids})),
       (SELECT coalesce(sum(total_amount), 0) FROM retail.order_items WHERE store_id = ANY(${ids})),
       (SELECT coalesce(string_agg(DISTINCT store_id::text, ',' ORDER BY store_id::text), '') FROM retail.orders WHERE store_id = ANY(${ids})),
       (SELECT count(*) FROM retail.products),
       (SELECT count(*) FROM retail.stores)`;
}

export const normalize = (row: readonly unknown[]) => row.map((value) => (typeof value === 'string' && !/^\d+(\.\d+)?$/.test(value) ? value : Number(value)));
