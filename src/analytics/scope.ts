// What every typed analytics tool does first: resolve the caller, open its identity-scoped read-only session
// (RLS applies exactly as for execute_sales_query), read the reference names it may use and the data's own
// calendar, and turn store, category and type names into ids, refusing unknown names with the valid ones and a
// store that is not the caller's with "not in your stores" (an empty answer would look like zero sales).
import type { Database, Identity, ReadSession, RowSet, SqlParam } from '../db/types.js';
import type { Logger } from '../infra/logger.js';
import { InvalidArgumentError, resolvePeriod, type PeriodInput, type ResolvedPeriod } from './periods.js';
import { describeCommonFailure } from './query.js';
import { AccessDeniedError, toolErrorCode, type ToolErrorCode } from '../infra/errors.js';

export { InvalidArgumentError } from './periods.js';

export interface StoreRef {
  readonly id: number;
  readonly name: string;
  readonly region: string;
  readonly isOnline: boolean;
}

export interface NamedRef {
  readonly id: number;
  readonly name: string;
}

export interface TypeRef extends NamedRef {
  readonly category: string;
}

/** The names a caller may use, read under its identity. */
export interface References {
  /** Every store (the stores table is visible to every identity). */
  readonly allStores: readonly StoreRef[];
  /** The stores whose rows the caller sees. */
  readonly stores: readonly StoreRef[];
  readonly categories: readonly NamedRef[];
  readonly types: readonly TypeRef[];
  /** First and last order date the caller sees; undefined when it sees no order. */
  readonly firstOrder: string | undefined;
  readonly lastOrder: string | undefined;
  /** The monthly sales roll-up matches the order lines (src/db/sales-rollup.ts). */
  readonly rollupFresh: boolean;
}

/** One tool call: the session, the caller and its references. */
export interface Scope {
  readonly identity: Identity;
  readonly refs: References;
  query(sql: string, params?: readonly SqlParam[]): Promise<RowSet>;
}

/** A tool's outcome: the structured answer, or a message for the model. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; message: string; code: ToolErrorCode };

/** Row cap for the typed tools' own queries: their largest honest answer is a few thousand rows (stores × products). */
const MAX_ROWS = 20_000;
const MAX_BYTES = 16 * 1024 * 1024;

async function loadReferences(session: ReadSession, identity: Identity): Promise<References> {
  // One round trip: the shared tables (visible to every identity) and the calendar of the caller's own orders.
  const { rows } = await session.query(
    `SELECT (SELECT coalesce(json_agg(json_build_array(store_id, store_name, region, is_online) ORDER BY store_id), '[]') FROM retail.stores)::text,
            (SELECT coalesce(json_agg(json_build_array(category_id, category_name) ORDER BY category_name), '[]') FROM retail.categories)::text,
            (SELECT coalesce(json_agg(json_build_array(t.type_id, t.type_name, c.category_name) ORDER BY t.type_name, c.category_name), '[]')
               FROM retail.product_types t JOIN retail.categories c ON c.category_id = t.category_id)::text,
            (SELECT min(order_date)::text FROM retail.orders),
            (SELECT max(order_date)::text FROM retail.orders),
            coalesce((SELECT fresh FROM zava_rollup.sales_rollup_state), false)`,
    [],
    { maxRows: 1, maxBytes: MAX_BYTES },
  );
  const [stores, categories, types, first, last, rollupFresh] = rows[0] as [string, string, string, string | null, string | null, boolean];
  const allStores = (JSON.parse(stores) as [number, string, string, boolean][]).map(([id, name, region, isOnline]) => ({ id, name, region, isOnline }));
  return {
    allStores,
    stores: identity.storeIds === 'all' ? allStores : allStores.filter((store) => (identity.storeIds as readonly number[]).includes(store.id)),
    categories: (JSON.parse(categories) as [number, string][]).map(([id, name]) => ({ id, name })),
    types: (JSON.parse(types) as [number, string, string][]).map(([id, name, category]) => ({ id, name, category })),
    firstOrder: first ?? undefined,
    lastOrder: last ?? undefined,
    rollupFresh: rollupFresh === true,
  };
}

/**
 * Runs one typed tool call for the identity the call pipeline resolved: everything runs in its identity-scoped
 * read-only session, and every failure becomes a message a model can act on, with its stable code.
 */
export async function runScoped<T>(
  db: Database,
  log: Logger,
  tool: string,
  identity: Identity,
  signal: AbortSignal | undefined,
  work: (scope: Scope) => Promise<T>,
): Promise<Outcome<T>> {
  try {
    const value = await db.withIdentity(
      identity,
      async (session) => {
        const refs = await loadReferences(session, identity);
        return work({ identity, refs, query: (sql, params = []) => session.query(sql, params, { maxRows: MAX_ROWS, maxBytes: MAX_BYTES }) });
      },
      { signal },
    );
    return { ok: true, value };
  } catch (error) {
    if (error instanceof InvalidArgumentError) return { ok: false, message: error.message, code: 'VALIDATION_ERROR' };
    // Another manager's store: a refusal of access, not an empty answer (which would look like zero sales).
    if (error instanceof AccessDeniedError) return { ok: false, message: error.message, code: 'AUTHORIZATION_ERROR' };
    return {
      ok: false,
      message: describeCommonFailure(error, identity, log, tool, `${tool} failed inside the server (logged). Try again, or use execute_sales_query.`),
      code: toolErrorCode(error),
    };
  }
}

function normalized(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}

/**
 * Finds `wanted` among `candidates`: exact (ignoring case and extra spaces), else the one candidate whose
 * name ends with it ("Seattle" → "Zava Retail Seattle"). Undefined when none or several match.
 */
function findByName<T extends { name: string }>(candidates: readonly T[], wanted: string): T | undefined {
  const key = normalized(wanted);
  if (key === '') return undefined;
  const exact = candidates.find((candidate) => normalized(candidate.name) === key);
  if (exact) return exact;
  const suffix = candidates.filter((candidate) => normalized(candidate.name).endsWith(` ${key}`));
  return suffix.length === 1 ? suffix[0] : undefined;
}

function list(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(', ');
}

/** Store names → the caller's stores; unknown names and other managers' stores are refused by name. */
export function resolveStores(refs: References, names: readonly string[] | undefined): StoreRef[] | undefined {
  if (!names || names.length === 0) return undefined;
  const yours = refs.stores.map((store) => store.name);
  return [...new Set(names)].map((name) => {
    const store = findByName(refs.allStores, name);
    if (!store) throw new InvalidArgumentError(`unknown store "${name}". Your stores: ${list(yours)}.`);
    if (!refs.stores.some((own) => own.id === store.id)) {
      throw new AccessDeniedError(`"${store.name}" is not in your stores: you can see ${list(yours)}.`);
    }
    return store;
  });
}

export function resolveCategories(refs: References, names: readonly string[] | undefined): NamedRef[] | undefined {
  if (!names || names.length === 0) return undefined;
  return [...new Set(names)].map((name) => {
    const category = findByName(refs.categories, name);
    if (!category) throw new InvalidArgumentError(`unknown category "${name}". Valid categories: ${list(refs.categories.map((c) => c.name))}.`);
    return category;
  });
}

/** Product type names may repeat across categories: a name selects every type of that name. */
export function resolveTypes(refs: References, names: readonly string[] | undefined): TypeRef[] | undefined {
  if (!names || names.length === 0) return undefined;
  return [...new Set(names)].flatMap((name) => {
    const key = normalized(name);
    const matches = refs.types.filter((type) => normalized(type.name) === key);
    if (matches.length === 0) {
      throw new InvalidArgumentError(`unknown product type "${name}". Valid product types: ${list([...new Set(refs.types.map((t) => t.name))])}.`);
    }
    return matches;
  });
}

/** A period against the caller's own calendar; a caller without orders has nothing to resolve against. */
export function periodOf(refs: References, input: PeriodInput): ResolvedPeriod {
  if (!refs.lastOrder || !refs.firstOrder) throw new InvalidArgumentError('you have no orders, so there is no period to report on.');
  return resolvePeriod(input, refs.lastOrder, refs.firstOrder);
}

/** An int[] parameter as PostgreSQL array text, or null for "no filter". */
export function idArray(refs: readonly { id: number }[] | undefined): string | null {
  return refs ? `{${refs.map((ref) => ref.id).join(',')}}` : null;
}

/** Rows per chunk of queryPacked: a few hundred short rows make a result row of tens of kilobytes. */
const PACKED_ROWS = 256;

/**
 * A query of many short rows (thousands of store × product figures) read as a few: chunks of rows, each one JSON
 * text of the rows as arrays of `columns` (the query's own column names). A row costs the bounded-result wrapper,
 * the wire and, embedded, PGlite's row decoding more than its few values (at the reference size about as much as
 * the query itself), and a chunk stays far below any row-size limit (ZAVA_MAX_ROW_BYTES). Values arrive as JSON
 * has them: numbers (a numeric as the same double the driver gives up to 15 digits) and strings; row order is
 * not kept.
 */
export async function queryPacked(scope: Scope, sql: string, params: readonly SqlParam[], columns: readonly string[]): Promise<unknown[][]> {
  const { rows } = await scope.query(
    `SELECT json_agg(json_build_array(${columns.map((c) => `q.${c}`).join(', ')}))::text
       FROM (SELECT q.*, (row_number() OVER () - 1) / ${PACKED_ROWS} AS zava_chunk FROM (${sql}) q) q
      GROUP BY q.zava_chunk`,
    params,
  );
  return rows.flatMap((row) => JSON.parse(String(row[0])) as unknown[][]);
}

/** Money from the database (numeric arrives as a number, or as text past 15 digits). */
export function num(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(value);
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Percent change from `before` to `after`, one decimal; null when there was nothing before. */
export function percentChange(before: number, after: number): number | null {
  return before === 0 ? null : Math.round(((after - before) / before) * 1000) / 10;
}
