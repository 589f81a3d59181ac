// The monthly sales roll-up (migration 12): order lines summed per store, month and product, and the same sums
// with distinct orders per store and month at three grains (all lines, per category, per product type: an order
// is counted once per category it touches, so orders only add up within a grain), so the typed analytics tools
// answer whole-month periods without scanning every order line. Plain tables with the same store policy as
// order_items (a materialized view cannot carry Row Level Security), in their own schema zava_rollup: the query
// role may read them, but they are not part of the retail schema the models query (the SQL guard admits retail
// only) nor of its documented table list. Statement triggers on orders, order_items
// and products mark it stale on any change; the tools read it only while it is fresh and otherwise fall back to
// the order lines, so a change that forgets to refresh it costs speed, never correctness.
//
// Migration 15 adds finer and cumulative grains beside the monthly ones, refreshed with them under the same state
// and policies, for the questions the monthly rows still answered slowly at the reference size:
// - sales_running: per store and product, the running totals from the first sale through each month, for every
//   month from that first sale on (dense, so any span of whole months is two equality lookups: the totals through
//   its last month minus those through the month before it; distinct orders subtract too, an order having one date).
//   All-time and year-long product rankings read 2 × stores × products rows instead of one row per month sold.
// - sales_daily: per store, day and product, for the partial months at either end of a period (product rankings,
//   revenue per product or category) and the recent-sales velocity of inventory_status.
// - sales_daily_stores: per store and day, all lines, for the partial months of store-level figures.
import type { AdminSession } from './types.js';

/** The roll-up's tables, each readable by the query role under the store policy of order_items. */
export const SALES_ROLLUP_TABLES = ['sales_daily', 'sales_daily_stores', 'sales_monthly', 'sales_monthly_groups', 'sales_running'] as const;

const storePolicy = (table: string) =>
  `CREATE POLICY store_scope ON zava_rollup.${table} FOR SELECT USING (store_id = ANY ((SELECT zava_ctx.visible_store_ids())::integer[]))`;

/** The roll-up's DDL (run by migration 12 as the owner; `role` is the query role). */
export function salesRollupDdl(role: string): string {
  return `
    CREATE SCHEMA zava_rollup;
    REVOKE ALL ON SCHEMA zava_rollup FROM PUBLIC;
    GRANT USAGE ON SCHEMA zava_rollup TO ${role};
    CREATE TABLE zava_rollup.sales_monthly (
      store_id    integer NOT NULL,
      month       date NOT NULL,
      product_id  integer NOT NULL,
      revenue     numeric(14,2) NOT NULL,
      units       bigint NOT NULL,
      margin      numeric(14,2) NOT NULL,
      discount    numeric(14,2) NOT NULL,
      orders      integer NOT NULL,
      PRIMARY KEY (store_id, month, product_id)
    );
    CREATE TABLE zava_rollup.sales_monthly_groups (
      store_id  integer NOT NULL,
      month     date NOT NULL,
      grain     text NOT NULL CHECK (grain IN ('all', 'category', 'type')),
      key       integer NOT NULL,
      revenue   numeric(14,2) NOT NULL,
      units     bigint NOT NULL,
      margin    numeric(14,2) NOT NULL,
      discount  numeric(14,2) NOT NULL,
      orders    integer NOT NULL,
      PRIMARY KEY (grain, store_id, month, key)
    );
    CREATE TABLE zava_rollup.sales_rollup_state (
      singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      fresh         boolean NOT NULL,
      refreshed_at  timestamptz
    );
    INSERT INTO zava_rollup.sales_rollup_state (fresh) VALUES (false);

    ALTER TABLE zava_rollup.sales_monthly ENABLE ROW LEVEL SECURITY;
    ALTER TABLE zava_rollup.sales_monthly_groups ENABLE ROW LEVEL SECURITY;
    ALTER TABLE zava_rollup.sales_rollup_state ENABLE ROW LEVEL SECURITY;
    ${storePolicy('sales_monthly')};
    ${storePolicy('sales_monthly_groups')};
    CREATE POLICY authenticated ON zava_rollup.sales_rollup_state FOR SELECT USING ((SELECT zava_ctx.is_authenticated()));
    REVOKE ALL ON zava_rollup.sales_monthly, zava_rollup.sales_monthly_groups, zava_rollup.sales_rollup_state FROM PUBLIC;
    GRANT SELECT ON zava_rollup.sales_monthly, zava_rollup.sales_monthly_groups, zava_rollup.sales_rollup_state TO ${role};

    CREATE FUNCTION zava_private.mark_sales_rollup_stale() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
      BEGIN
        UPDATE zava_rollup.sales_rollup_state SET fresh = false WHERE fresh;
        RETURN NULL;
      END
    $fn$;
    REVOKE ALL ON FUNCTION zava_private.mark_sales_rollup_stale() FROM PUBLIC;
    CREATE TRIGGER sales_rollup_stale AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retail.orders
      FOR EACH STATEMENT EXECUTE FUNCTION zava_private.mark_sales_rollup_stale();
    CREATE TRIGGER sales_rollup_stale AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retail.order_items
      FOR EACH STATEMENT EXECUTE FUNCTION zava_private.mark_sales_rollup_stale();
    CREATE TRIGGER sales_rollup_stale AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON retail.products
      FOR EACH STATEMENT EXECUTE FUNCTION zava_private.mark_sales_rollup_stale();
  `;
}

/** Migration 15's finer and cumulative grains (see the header), with the monthly tables' policy and grants. */
export function salesRollupGrainsDdl(role: string): string {
  const sums = `revenue numeric(14,2) NOT NULL, units bigint NOT NULL, margin numeric(14,2) NOT NULL, discount numeric(14,2) NOT NULL, orders integer NOT NULL`;
  const tables = ['sales_daily', 'sales_daily_stores', 'sales_running'];
  return `
    CREATE TABLE zava_rollup.sales_daily (day date NOT NULL, store_id integer NOT NULL, product_id integer NOT NULL, ${sums}, PRIMARY KEY (day, store_id, product_id));
    CREATE TABLE zava_rollup.sales_daily_stores (day date NOT NULL, store_id integer NOT NULL, ${sums}, PRIMARY KEY (day, store_id));
    CREATE TABLE zava_rollup.sales_running (month date NOT NULL, store_id integer NOT NULL, product_id integer NOT NULL, ${sums}, PRIMARY KEY (month, store_id, product_id));
    ${tables.map((table) => `ALTER TABLE zava_rollup.${table} ENABLE ROW LEVEL SECURITY; ${storePolicy(table)};`).join('\n    ')}
    REVOKE ALL ON ${tables.map((table) => `zava_rollup.${table}`).join(', ')} FROM PUBLIC;
    GRANT SELECT ON ${tables.map((table) => `zava_rollup.${table}`).join(', ')} TO ${role};
  `;
}

/** The monthly tables' rebuild. */
const MONTHLY_REFRESH = `
    TRUNCATE zava_rollup.sales_monthly, zava_rollup.sales_monthly_groups;
    INSERT INTO zava_rollup.sales_monthly (store_id, month, product_id, revenue, units, margin, discount, orders)
      SELECT oi.store_id, date_trunc('month', o.order_date)::date, oi.product_id, sum(oi.total_amount), sum(oi.quantity),
             sum(oi.total_amount - oi.quantity * p.cost), sum(oi.discount_amount), count(DISTINCT oi.order_id)
        FROM retail.order_items oi
        JOIN retail.orders o ON o.order_id = oi.order_id
        JOIN retail.products p ON p.product_id = oi.product_id
       GROUP BY 1, 2, 3;
    INSERT INTO zava_rollup.sales_monthly_groups (store_id, month, grain, key, revenue, units, margin, discount, orders)
      SELECT oi.store_id, date_trunc('month', o.order_date)::date, g.grain, g.key, sum(oi.total_amount), sum(oi.quantity),
             sum(oi.total_amount - oi.quantity * p.cost), sum(oi.discount_amount), count(DISTINCT oi.order_id)
        FROM retail.order_items oi
        JOIN retail.orders o ON o.order_id = oi.order_id
        JOIN retail.products p ON p.product_id = oi.product_id
        CROSS JOIN LATERAL (VALUES ('all', 0), ('category', p.category_id), ('type', p.type_id)) AS g(grain, key)
       GROUP BY 1, 2, 3, 4;`;

/**
 * Migration 15's grains, rebuilt from the order lines and (running totals) from the fresh monthly product rows.
 * Written in key order, so a month's or a day's rows lie together on disk (a month of running totals read from
 * rows scattered in store and product order touched a page per row: 4k pages for 5k rows at the reference size).
 */
const GRAINS_REFRESH = `
    TRUNCATE zava_rollup.sales_daily, zava_rollup.sales_daily_stores, zava_rollup.sales_running;
    INSERT INTO zava_rollup.sales_daily (day, store_id, product_id, revenue, units, margin, discount, orders)
      SELECT o.order_date, oi.store_id, oi.product_id, sum(oi.total_amount), sum(oi.quantity),
             sum(oi.total_amount - oi.quantity * p.cost), sum(oi.discount_amount), count(DISTINCT oi.order_id)
        FROM retail.order_items oi
        JOIN retail.orders o ON o.order_id = oi.order_id
        JOIN retail.products p ON p.product_id = oi.product_id
       GROUP BY 1, 2, 3
       ORDER BY 1, 2, 3;
    INSERT INTO zava_rollup.sales_daily_stores (day, store_id, revenue, units, margin, discount, orders)
      SELECT o.order_date, oi.store_id, sum(oi.total_amount), sum(oi.quantity),
             sum(oi.total_amount - oi.quantity * p.cost), sum(oi.discount_amount), count(DISTINCT oi.order_id)
        FROM retail.order_items oi
        JOIN retail.orders o ON o.order_id = oi.order_id
        JOIN retail.products p ON p.product_id = oi.product_id
       GROUP BY 1, 2
       ORDER BY 1, 2;
    -- Every month from each store and product's first sale to the latest month sold anywhere, so the running
    -- totals through any month are one row (or none: nothing sold through it yet).
    INSERT INTO zava_rollup.sales_running (month, store_id, product_id, revenue, units, margin, discount, orders)
      SELECT m.month, pair.store_id, pair.product_id,
             sum(coalesce(r.revenue, 0)) OVER w, sum(coalesce(r.units, 0)) OVER w, sum(coalesce(r.margin, 0)) OVER w,
             sum(coalesce(r.discount, 0)) OVER w, sum(coalesce(r.orders, 0)) OVER w
        FROM (SELECT store_id, product_id, min(month) AS first FROM zava_rollup.sales_monthly GROUP BY 1, 2) pair
        CROSS JOIN LATERAL generate_series(pair.first, (SELECT max(month) FROM zava_rollup.sales_monthly), interval '1 month') AS m_(at)
        CROSS JOIN LATERAL (SELECT m_.at::date AS month) m
        LEFT JOIN zava_rollup.sales_monthly r ON r.store_id = pair.store_id AND r.product_id = pair.product_id AND r.month = m.month
      WINDOW w AS (PARTITION BY pair.store_id, pair.product_id ORDER BY m.month)
       ORDER BY 1, 2, 3;`;

/** Migration 12's refresh, as it ran before migration 15's tables existed: the monthly tables only. */
export async function refreshMonthlySalesRollup(session: AdminSession): Promise<void> {
  await session.exec(`
    ${MONTHLY_REFRESH}
    UPDATE zava_rollup.sales_rollup_state SET fresh = true, refreshed_at = now();
    ANALYZE zava_rollup.sales_monthly, zava_rollup.sales_monthly_groups;
  `);
}

/** Rebuilds the roll-up from the order lines and marks it fresh, in the caller's owner transaction. */
export async function refreshSalesRollup(session: AdminSession): Promise<void> {
  await session.exec(`
    ${MONTHLY_REFRESH}
    ${GRAINS_REFRESH}
    UPDATE zava_rollup.sales_rollup_state SET fresh = true, refreshed_at = now();
    ANALYZE ${SALES_ROLLUP_TABLES.map((table) => `zava_rollup.${table}`).join(', ')};
  `);
}
