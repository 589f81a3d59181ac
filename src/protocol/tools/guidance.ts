// The reference system's guidance to the model, shared by the tool descriptions and the server instructions.
export const DATA_GUIDANCE = [
  'Always call get_multiple_table_schemas for the tables you need before writing SQL, and use the exact table, column and value names it gives (store names, category names, product type names, order years).',
  'Never invent data: answer only from tool results, and say so when a result is empty or an error.',
  'Aggregate in SQL (SUM, COUNT, GROUP BY) and keep answers to about 20 rows (ORDER BY ... LIMIT 20) unless the user asks for more.',
  'For online versus physical stores use retail.stores.is_online.',
  'Never show raw IDs or UUIDs to the user: show names (store_name, product_name, category_name) instead.',
  'Rows are limited by Row Level Security to the stores the current manager may see; do not try to change identity or settings.',
].join(' ');

export const SERVER_INSTRUCTIONS =
  'Zava Retail sales analytics (a DIY retailer in Washington State) over PostgreSQL schema "retail", scoped to the ' +
  'calling store manager by Row Level Security. ' +
  'For common questions use the typed tools first, which need no SQL and resolve relative periods against the data\'s latest order date: ' +
  'sales_summary, top_products, compare_periods, store_performance, inventory_status and seasonality; write SQL only when they cannot answer. ' +
  DATA_GUIDANCE +
  ' Use get_current_utc_date to resolve relative dates such as "last quarter".';
