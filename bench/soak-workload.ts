// What the soak's clients ask, as whom, and how each answer is checked against that identity's ground truth.
// Identities are signed jwt claims (head office, a regional manager, store managers; with and without the
// pii:read scope). The ground truth is read once, before the load, straight from the primary as its superuser
// (RLS does not apply to it): orders, items and customers per store, and every customer's clear e-mail. A check
// returns what is wrong with an answer (a cross-tenant row, a figure that differs, personal data shown to a caller
// without the right, or hidden from one with it), or undefined.
import pg from 'pg';
import { STORES } from '../src/data/stores.js';

export interface SoakIdentity {
  readonly label: string;
  readonly sub: string;
  readonly claims: Record<string, unknown>;
  readonly storeIds: ReadonlySet<number>;
  /** Whether clear e-mails are due: in jwt mode the token decides, for every role (pii:read in its scope). */
  readonly pii: boolean;
}

const byName = (name: string) => STORES.find((s) => s.name === `Zava Retail ${name}`)!;
const storeManager = (name: string, pii: boolean): SoakIdentity => ({
  label: `store manager ${name}${pii ? ' (pii)' : ''}`,
  sub: `soak-${name.toLowerCase()}`,
  claims: { roles: ['store_manager'], allowed_stores: [byName(name).name], ...(pii ? { scope: 'pii:read' } : {}) },
  storeIds: new Set([byName(name).storeId]),
  pii,
});
const puget = STORES.filter((s) => s.region === 'Puget Sound');

/** Eight identities; client i acts as identity i mod 8. */
export const SOAK_IDENTITIES: readonly SoakIdentity[] = [
  { label: 'head office (pii)', sub: 'soak-hq-pii', claims: { roles: ['super_admin'], scope: 'pii:read' }, storeIds: new Set(STORES.map((s) => s.storeId)), pii: true },
  { label: 'head office', sub: 'soak-hq', claims: { roles: ['super_admin'] }, storeIds: new Set(STORES.map((s) => s.storeId)), pii: false },
  { label: 'regional manager Puget Sound', sub: 'soak-puget', claims: { roles: ['regional_manager'], allowed_regions: ['Puget Sound'] }, storeIds: new Set(puget.map((s) => s.storeId)), pii: false },
  storeManager('Seattle', true),
  storeManager('Bellevue', false),
  storeManager('Spokane', true),
  storeManager('Online', false),
  storeManager('Kirkland', false),
];

export interface GroundTruth {
  /** Per store: orders (with items), revenue (sum of order_items.total_amount). */
  readonly stores: ReadonlyMap<number, { orders: number; itemOrders: number; revenue: number; customers: number }>;
  readonly customers: ReadonlyMap<number, { store: number; email: string }>;
  readonly period: { from: string; to: string };
}

export async function readGroundTruth(ownerUrl: string): Promise<GroundTruth> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const role = (await client.query<{ s: boolean }>('SELECT rolsuper AS s FROM pg_roles WHERE rolname = current_user')).rows[0];
    if (!role?.s) throw new Error('the ground truth is read as a superuser (RLS does not apply to it)');
    const stores = new Map<number, { orders: number; itemOrders: number; revenue: number; customers: number }>();
    for (const s of STORES) stores.set(s.storeId, { orders: 0, itemOrders: 0, revenue: 0, customers: 0 });
    for (const r of (await client.query<{ id: number; n: number }>('SELECT store_id AS id, count(*)::int AS n FROM retail.orders GROUP BY 1')).rows) stores.get(r.id)!.orders = r.n;
    const items = await client.query<{ id: number; n: number; revenue: string }>(
      'SELECT store_id AS id, count(DISTINCT order_id)::int AS n, sum(total_amount)::text AS revenue FROM retail.order_items GROUP BY 1',
    );
    for (const r of items.rows) Object.assign(stores.get(r.id)!, { itemOrders: r.n, revenue: Number(r.revenue) });
    const customers = new Map<number, { store: number; email: string }>();
    for (const r of (await client.query<{ id: number; store: number; email: string }>('SELECT customer_id AS id, primary_store_id AS store, email FROM zava_data.customers')).rows) {
      customers.set(r.id, { store: r.store, email: r.email });
      stores.get(r.store)!.customers++;
    }
    const period = (await client.query<{ from: string; to: string }>(`SELECT min(order_date)::text AS "from", max(order_date)::text AS "to" FROM retail.orders`)).rows[0]!;
    return { stores, customers, period };
  } finally {
    await client.end();
  }
}

export interface SoakCall {
  readonly kind: string;
  readonly tool: string;
  readonly args: Record<string, unknown>;
  /** What is wrong with a successful answer's structured content, or undefined. */
  check(structured: Record<string, unknown>): string | undefined;
}

const STORE_NAMES = new Map(STORES.map((s) => [s.name, s.storeId]));
const SEARCHES = ['containers for paint', 'cordless drill', 'garden hose', 'wood stain for a deck', 'safety goggles', 'LED light bulbs', 'paint roller', 'tile adhesive'];

/** Store names in a JSON answer that belong to no store of the caller: a cross-tenant leak. */
function foreignStoreNames(value: unknown, identity: SoakIdentity): string[] {
  const text = JSON.stringify(value);
  return [...STORE_NAMES].filter(([name, id]) => !identity.storeIds.has(id) && text.includes(`"${name}"`)).map(([name]) => name);
}

const sameSet = (a: Iterable<unknown>, b: Iterable<unknown>) => {
  const x = [...new Set(a)].map(String).sort();
  const y = [...new Set(b)].map(String).sort();
  return JSON.stringify(x) === JSON.stringify(y);
};

/** The calls of the mix for one identity, each with its weight. */
export function soakCalls(identity: SoakIdentity, truth: GroundTruth): Array<[weight: number, call: SoakCall]> {
  const mine = [...identity.storeIds].sort((a, b) => a - b);
  const myNames = STORES.filter((s) => identity.storeIds.has(s.storeId)).map((s) => s.name);
  const t = (id: number) => truth.stores.get(id)!;
  const rows = (s: Record<string, unknown>) => (s.r ?? []) as unknown[][];
  const noLeak = (check: (s: Record<string, unknown>) => string | undefined) => (s: Record<string, unknown>) => {
    const foreign = foreignStoreNames(s, identity);
    return foreign.length > 0 ? `cross-tenant store names in the answer: ${foreign.join(', ')}` : check(s);
  };
  const sql = (kind: string, query: string, check: SoakCall['check']): SoakCall => ({ kind, tool: 'execute_sales_query', args: { postgresql_query: query }, check });
  return [
    [
      10,
      {
        kind: 'schemas',
        tool: 'get_multiple_table_schemas',
        args: { table_names: ['retail.orders', 'retail.customers', 'retail.stores'] },
        check: (s) => ((s.tables as unknown[] | undefined)?.length === 3 ? undefined : 'three table schemas expected'),
      },
    ],
    [
      14,
      sql('sql: orders by store', 'SELECT store_id, count(*)::int AS n FROM retail.orders GROUP BY 1 ORDER BY 1', (s) => {
        const expected = mine.filter((id) => t(id).orders > 0).map((id) => [id, t(id).orders]);
        return JSON.stringify(rows(s)) === JSON.stringify(expected) ? undefined : `orders by store ${JSON.stringify(rows(s))}, expected ${JSON.stringify(expected)}`;
      }),
    ],
    [
      10,
      sql('sql: customers and e-mails', 'SELECT customer_id, primary_store_id, email FROM retail.customers ORDER BY customer_id', (s) => {
        const got = rows(s);
        const foreign = got.filter((r) => !identity.storeIds.has(Number(r[1])));
        if (foreign.length > 0) return `cross-tenant customers: ${foreign.length} rows of stores ${[...new Set(foreign.map((r) => r[1]))].join(', ')}`;
        const expected = mine.reduce((n, id) => n + t(id).customers, 0);
        if (got.length !== expected) return `${got.length} customers, expected ${expected}`;
        for (const [id, , email] of got) {
          const clear = truth.customers.get(Number(id))?.email;
          if (identity.pii && email !== clear) return `customer ${id}: e-mail ${String(email)} where the clear one is due`;
          if (!identity.pii && (email === clear || !String(email).includes('*'))) return `customer ${id}: clear e-mail shown without the right`;
        }
        return undefined;
      }),
    ],
    [
      10,
      sql(
        'sql: revenue by store name',
        'SELECT s.store_name, sum(oi.total_amount)::text AS revenue FROM retail.order_items oi JOIN retail.stores s USING (store_id) GROUP BY 1 ORDER BY 1',
        noLeak((s) => {
          for (const [name, revenue] of rows(s)) {
            const id = STORE_NAMES.get(String(name));
            if (id === undefined || Math.abs(Number(revenue) - t(id).revenue) > 0.005) return `${String(name)}: revenue ${String(revenue)}, expected ${id && t(id).revenue}`;
          }
          return rows(s).length === mine.filter((id) => t(id).itemOrders > 0).length ? undefined : `${rows(s).length} stores in the answer`;
        }),
      ),
    ],
    [
      12,
      {
        kind: 'typed: sales_summary by store',
        tool: 'sales_summary',
        args: { period: truth.period, group_by: 'store' },
        check: noLeak((s) => {
          if (!sameSet(s.stores_covered as string[], myNames)) return `stores_covered ${JSON.stringify(s.stores_covered)}`;
          for (const g of s.groups as Array<{ key: string; orders: number; revenue: number }>) {
            const id = STORE_NAMES.get(g.key);
            if (id === undefined || g.orders !== t(id).itemOrders || Math.abs(g.revenue - t(id).revenue) > 0.01) return `group ${g.key}: ${g.orders} orders, ${g.revenue} revenue`;
          }
          return undefined;
        }),
      },
    ],
    [
      7,
      {
        kind: 'typed: top_products',
        tool: 'top_products',
        args: { period: 'this_year', by: 'revenue', limit: 5 },
        check: noLeak((s) => (sameSet(s.stores_covered as string[], myNames) ? undefined : `stores_covered ${JSON.stringify(s.stores_covered)}`)),
      },
    ],
    [
      7,
      {
        kind: 'typed: store_performance',
        tool: 'store_performance',
        args: { period: 'ytd' },
        check: noLeak((s) => (s.your_store_count === identity.storeIds.size ? undefined : `your_store_count ${String(s.your_store_count)}`)),
      },
    ],
    [5, { kind: 'typed: inventory_status', tool: 'inventory_status', args: { limit: 20 }, check: noLeak(() => undefined) }],
    [4, { kind: 'typed: compare_periods', tool: 'compare_periods', args: { current: 'last_quarter', previous: 'same_period_last_year', group_by: 'category' }, check: noLeak(() => undefined) }],
    [3, { kind: 'typed: seasonality', tool: 'seasonality', args: { category: 'Garden & Outdoor' }, check: noLeak(() => undefined) }],
    ...SEARCHES.map((query): [number, SoakCall] => [
      2,
      {
        kind: 'search',
        tool: 'semantic_search_products',
        args: { query_description: query, max_rows: 10 },
        check: (s) => {
          // A stock level is shown to the manager of exactly one store only.
          const stock = (s.c as string[] | undefined)?.includes('stock_level') ?? false;
          return stock === (identity.storeIds.size === 1) || (s.n as number) === 0
            ? undefined
            : `stock_level ${stock ? 'shown' : 'missing'} for ${identity.label}`;
        },
      },
    ]),
  ];
}

/** The identity a revocation probe uses: head office, its own subject, revoked during the run. */
export const PROBE_IDENTITY = { sub: 'soak-revocation-probe', claims: { roles: ['super_admin'] } } as const;
