// get_multiple_table_schemas as a service: columns and types, primary and foreign keys, and the distinct
// values a model needs to write exact filters (store names, category names, product type names, order
// years). Introspection runs once, owner-side; order years are read under the caller's identity (they come
// from store-scoped rows) and cached per identity. After the first call nothing goes to the database until the
// data version moves (a seed, an import, any write to the retail tables): then both are read again, so a new
// category or a later last order date shows in the next answer instead of after a restart.
import { DATA_SCHEMA, MASKED_COLUMNS, RETAIL_TABLES, STORE_SCOPED_TABLES } from '../db/migrations.js';
import type { Database, Identity } from '../db/types.js';

export const SCHEMA_NAME = 'retail';

export interface ColumnSchema {
  name: string;
  type: string;
  nullable: boolean;
}

export interface ForeignKeySchema {
  columns: string[];
  references_table: string;
  references_columns: string[];
}

export interface TableSchema {
  table: string;
  /** Which rows a caller sees: only its stores' (store-scoped) or every row (shared). */
  row_access: 'your stores only' | 'all rows';
  columns: ColumnSchema[];
  primary_key: string[];
  foreign_keys: ForeignKeySchema[];
  /** Exact values to filter on, by column (or "order_years" for orders). */
  values?: Record<string, Array<string | number>>;
  /**
   * Columns PostgreSQL masks for this caller (issue 11): name → how they look. Only present when some column of
   * the table is masked for the identity asking.
   */
  masked_columns?: Record<string, string>;
  notes?: string[];
}

/** What a masked value looks like, by column. */
const MASK_EXAMPLES: Record<string, string> = {
  email: 'masked: first letter and domain only, e.g. j***@example.com',
  phone: 'masked: last four digits only, e.g. ***-***-1234',
  rls_user_id: 'masked: last four characters only, e.g. ********-****-****-****-********d479',
};

/** The columns masked for `identity`: personal data without pii:read, manager ids for all but head office. */
export function maskedColumnsFor(identity: Identity, table: string): Record<string, string> | undefined {
  const rules = MASKED_COLUMNS[table];
  if (!rules) return undefined;
  const masked: Record<string, string> = {};
  for (const [column, clearFor] of Object.entries(rules)) {
    const clear = clearFor === 'pii' ? identity.pii === true : identity.storeIds === 'all';
    if (!clear) masked[column] = MASK_EXAMPLES[column] ?? 'masked';
  }
  return Object.keys(masked).length > 0 ? masked : undefined;
}

export class UnknownTableError extends Error {
  constructor(readonly unknown: string[]) {
    super(
      `unknown table${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => `"${t}"`).join(', ')}. ` +
        `Valid tables: ${validTableNames().join(', ')}.`,
    );
  }
}

export function validTableNames(): string[] {
  return RETAIL_TABLES.map((table) => `${SCHEMA_NAME}.${table}`);
}

/** "retail.orders", "orders", "Retail.Orders", "\"orders\"" → "orders"; undefined when not a retail table. */
export function normalizeTableName(name: string): string | undefined {
  const bare = name.trim().replaceAll('"', '').toLowerCase();
  const table = bare.startsWith(`${SCHEMA_NAME}.`) ? bare.slice(SCHEMA_NAME.length + 1) : bare;
  return (RETAIL_TABLES as readonly string[]).includes(table) ? table : undefined;
}

const STORE_SCOPED = new Set(STORE_SCOPED_TABLES.map(([table]) => table));

const TABLE_NOTES: Record<string, string[]> = {
  stores: ['is_online = true is the online store; false are physical stores. Use it for online vs physical questions.'],
  orders: ['Revenue lives in order_items.total_amount; join order_items on order_id.'],
  order_items: ['total_amount is the line revenue after discount; quantity × unit_price before discount.'],
  products: ['base_price is the list price; gross_margin_percent is usually 33.'],
  product_description_embeddings: ['Vector embeddings for semantic_search_products; not useful in SQL answers.'],
};

type Catalog = Map<string, TableSchema>;

interface OrderCalendar {
  readonly years: number[];
  /** [first, last] order date (YYYY-MM-DD), or empty when the identity sees no order. */
  readonly range: string[];
}

export class SchemaService {
  private catalog: Promise<Catalog> | undefined;
  private readonly orderCalendars = new Map<string, Promise<OrderCalendar>>();
  /** The data version the cached catalog and calendars were read at. */
  private cachedAt: number | undefined;

  constructor(
    private readonly db: Database,
    /** The newest data version (db/data-version.ts); without it, what is read once is kept for the process's life. */
    private readonly dataVersion?: () => Promise<number>,
  ) {}

  /** Forgets what was read at an older data version. A version that cannot be read keeps what is cached. */
  private async current(): Promise<void> {
    if (!this.dataVersion) return;
    const version = await this.dataVersion().catch(() => undefined);
    if (version === undefined || version === this.cachedAt) return;
    if (this.cachedAt !== undefined) {
      this.catalog = undefined;
      this.orderCalendars.clear();
    }
    this.cachedAt = version;
  }

  /** Schemas of the named tables, in the order asked, duplicates removed. Throws UnknownTableError. */
  async describe(identity: Identity, tableNames: readonly string[]): Promise<TableSchema[]> {
    const tables = [...new Set(tableNames.map((name) => normalizeTableName(name) ?? name))];
    const unknown = tables.filter((table) => normalizeTableName(table) === undefined);
    if (unknown.length > 0) throw new UnknownTableError(unknown);
    await this.current();
    const catalog = await this.loadCatalog();
    const answer: TableSchema[] = [];
    for (const table of tables) {
      const schema = catalog.get(table);
      if (!schema) throw new UnknownTableError([table]);
      if (table === 'orders') {
        const calendar = await this.calendarFor(identity);
        answer.push({
          ...schema,
          values: { ...schema.values, order_years: calendar.years, order_date_range: calendar.range },
          notes: [
            ...(schema.notes ?? []),
            calendar.range.length === 2
              ? `Your orders run from ${calendar.range[0]} to ${calendar.range[1]}; resolve "last quarter", "this year" or "year to date" against these dates and get_current_utc_date.`
              : 'You have no orders.',
          ],
        });
      } else {
        const masked = maskedColumnsFor(identity, table);
        answer.push(
          masked
            ? {
                ...schema,
                masked_columns: masked,
                notes: [
                  ...(schema.notes ?? []),
                  `${Object.keys(masked).join(', ')} ${Object.keys(masked).length > 1 ? 'are' : 'is'} masked for your identity (${table === 'customers' ? 'no pii:read permission' : 'head office only'}): filtering, joining or grouping on ${Object.keys(masked).length > 1 ? 'them' : 'it'} works on the masked values only.`,
                ],
              }
            : schema,
        );
      }
    }
    return answer;
  }

  /** The store, category and product type names (every identity may see them), for filter hints. */
  async filterValues(): Promise<Record<string, string[]>> {
    await this.current();
    const catalog = await this.loadCatalog();
    const values = (table: string, column: string) => (catalog.get(table)?.values?.[column] ?? []).map(String);
    return {
      store_name: values('stores', 'store_name'),
      category_name: values('categories', 'category_name'),
      type_name: values('product_types', 'type_name'),
    };
  }

  private loadCatalog(): Promise<Catalog> {
    this.catalog ??= this.introspect().catch((error: unknown) => {
      this.catalog = undefined; // try again on the next call
      throw error;
    });
    return this.catalog;
  }

  /** The order years and first and last order date the identity can see (cached per store scope). */
  private calendarFor(identity: Identity): Promise<OrderCalendar> {
    const key = identity.storeIds === 'all' ? '*' : identity.storeIds.join('-');
    let calendar = this.orderCalendars.get(key);
    if (!calendar) {
      calendar = this.db
        .withIdentity(identity, (session) =>
          session.query(
            `SELECT array_agg(DISTINCT extract(year FROM order_date)::int ORDER BY extract(year FROM order_date)::int),
                    min(order_date)::text, max(order_date)::text
               FROM retail.orders`,
          ),
        )
        .then((rows) => {
          const [years, first, last] = rows.rows[0] ?? [];
          return {
            years: Array.isArray(years) ? years.map(Number) : [],
            range: typeof first === 'string' && typeof last === 'string' ? [first, last] : [],
          };
        });
      this.orderCalendars.set(key, calendar);
      calendar.catch(() => this.orderCalendars.delete(key));
    }
    return calendar;
  }

  private async introspect(): Promise<Catalog> {
    const columns = await this.db.ownerQuery(
      `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v') AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
      [SCHEMA_NAME],
    );
    // customers and stores are masking views over tables in DATA_SCHEMA (migration 9): their keys and NOT NULL
    // constraints are the base tables'.
    const baseNullable = await this.db.ownerQuery(
      `SELECT c.relname || '.' || a.attname, NOT a.attnotnull
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
      [DATA_SCHEMA],
    );
    const nullableInBase = new Map(baseNullable.rows.map(([key, nullable]) => [String(key), nullable === true]));
    const constraints = await this.db.ownerQuery(
      `SELECT c.relname, con.contype::text, con.conname,
              (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num),
              fc.relname,
              (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num)
         FROM pg_catalog.pg_constraint con
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
        WHERE n.nspname IN ($1, $2) AND con.contype IN ('p', 'f')
        ORDER BY c.relname, con.contype, con.conname`,
      [SCHEMA_NAME, DATA_SCHEMA],
    );
    const catalog: Catalog = new Map();
    for (const table of RETAIL_TABLES) {
      catalog.set(table, {
        table: `${SCHEMA_NAME}.${table}`,
        row_access: STORE_SCOPED.has(table) ? 'your stores only' : 'all rows',
        columns: [],
        primary_key: [],
        foreign_keys: [],
        ...(TABLE_NOTES[table] ? { notes: TABLE_NOTES[table] } : {}),
      });
    }
    for (const [table, name, type, nullable] of columns.rows as [string, string, string, boolean][]) {
      catalog.get(table)?.columns.push({ name, type, nullable: nullableInBase.get(`${table}.${name}`) ?? nullable });
    }
    for (const [table, kind, , cols, refTable, refCols] of constraints.rows as [string, string, string, string, string | null, string | null][]) {
      const schema = catalog.get(table);
      if (!schema) continue;
      if (kind === 'p') schema.primary_key = cols.split(',');
      else if (refTable && refCols) {
        schema.foreign_keys.push({ columns: cols.split(','), references_table: `${SCHEMA_NAME}.${refTable}`, references_columns: refCols.split(',') });
      }
    }
    // Reference values every authenticated identity may see (the shared tables' policies admit all rows).
    const list = async (sql: string) => (await this.db.ownerQuery(sql)).rows.map((row) => String(row[0]));
    const stores = catalog.get('stores');
    if (stores) {
      stores.values = {
        store_name: await list('SELECT store_name FROM retail.stores ORDER BY store_id'),
        online_store_name: await list('SELECT store_name FROM retail.stores WHERE is_online ORDER BY store_id'),
      };
    }
    const categories = catalog.get('categories');
    if (categories) categories.values = { category_name: await list('SELECT category_name FROM retail.categories ORDER BY category_name') };
    const types = catalog.get('product_types');
    if (types) types.values = { type_name: await list('SELECT DISTINCT type_name FROM retail.product_types ORDER BY type_name') };
    return catalog;
  }
}

/** A compact, readable rendering of table schemas for the model. */
export function renderSchemas(schemas: readonly TableSchema[]): string {
  return schemas
    .map((schema) => {
      const fks = new Map(schema.foreign_keys.filter((fk) => fk.columns.length === 1).map((fk) => [fk.columns[0], fk]));
      const lines = [`Table ${schema.table} (${schema.row_access === 'your stores only' ? 'rows of your stores only' : 'all rows'})`];
      for (const column of schema.columns) {
        const flags = [schema.primary_key.includes(column.name) ? 'PK' : '', column.nullable ? '' : 'NOT NULL', schema.masked_columns?.[column.name] ? 'MASKED' : ''].filter(Boolean);
        const fk = fks.get(column.name);
        const ref = fk ? ` -> ${fk.references_table}.${fk.references_columns[0]}` : '';
        lines.push(`  ${column.name} ${column.type}${flags.length ? ` ${flags.join(' ')}` : ''}${ref}`);
      }
      if (schema.primary_key.length > 1) lines.push(`  PRIMARY KEY (${schema.primary_key.join(', ')})`);
      for (const fk of schema.foreign_keys.filter((f) => f.columns.length > 1)) {
        lines.push(`  FOREIGN KEY (${fk.columns.join(', ')}) -> ${fk.references_table} (${fk.references_columns.join(', ')})`);
      }
      for (const [column, values] of Object.entries(schema.values ?? {})) {
        lines.push(`  ${column} values: ${values.map((v) => (typeof v === 'number' ? String(v) : JSON.stringify(v))).join(', ')}`);
      }
      for (const note of schema.notes ?? []) lines.push(`  Note: ${note}`);
      return lines.join('\n');
    })
    .join('\n\n');
}
