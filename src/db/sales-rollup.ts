// The monthly sales roll-up (migration 12): order lines summed per store, month and product, and the same sums
// with distinct orders per store and month at three grains (all lines, per category, per product type: an order
// is counted once per category it touches, so orders only add up within a grain), so the typed analytics tools
// answer whole-month periods without scanning every order line. Plain tables with the same store policy as
// order_items (a materialized view cannot carry Row Level Security), in their own schema zava_rollup: the query
// role may read them, but they are not part of the retail schema the models query (the SQL guard admits retail
// only) nor of its documented table list. Statement triggers on orders, order_items
// and products mark it stale on any change; the tools read it only while it is fresh and otherwise fall back to
// the order lines, so a change that forgets to refresh it costs speed, never correctness.
import type { AdminSession } from './types.js';

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
    CREATE POLICY store_scope ON zava_rollup.sales_monthly FOR SELECT USING (store_id = ANY ((SELECT zava_ctx.visible_store_ids())::integer[]));
    CREATE POLICY store_scope ON zava_rollup.sales_monthly_groups FOR SELECT USING (store_id = ANY ((SELECT zava_ctx.visible_store_ids())::integer[]));
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

/** Rebuilds the roll-up from the order lines and marks it fresh, in the caller's owner transaction. */
export async function refreshSalesRollup(session: AdminSession): Promise<void> {
  await session.exec(`
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
       GROUP BY 1, 2, 3, 4;
    UPDATE zava_rollup.sales_rollup_state SET fresh = true, refreshed_at = now();
    ANALYZE zava_rollup.sales_monthly, zava_rollup.sales_monthly_groups;
  `);
}
