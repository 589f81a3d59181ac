// The search as plan-cached PL/pgSQL functions, one per embedding type and size: PGlite plans a statement sent
// as text on every call, which at the default catalog costs about as much as running it; a function's plan is
// made once per connection. The functions are derived from searchSql, named after a hash of their definition,
// and installed by ensureSearchFunctions after migrations (not by a migration: a change to searchSql installs
// the matching functions on the next start, and stale versions are dropped). Searches fall back to the inline
// statement wherever the current functions are missing (a read-only replica before its primary has them).
// Three families: pgvector (products_vector_*), and without it the exact scan over the cube chunks of migration 13
// (products_chunks_*) where that table exists, else over real[] (products_real_*); and without pgvector also the
// statement that takes its vector ranking from the server process (products_ranked_*, vector-memory.ts).
import { createHash } from 'node:crypto';
import { everyStoreRole, quoteIdent } from '../db/migrations.js';
import type { ManagedDatabase, ReadSession } from '../db/types.js';
import { QueryError } from '../infra/errors.js';
import { type ExactScan, HNSW_EF_SEARCH, rankedSearchSql, searchSql } from './search-sql.js';

/**
 * Embedding sizes with a plan-cached search function: the local provider (1024), nomic/ollama (768), OpenAI
 * small (1536). Other sizes run searchSql inline.
 */
export const SEARCH_FUNCTION_DIMENSIONS: readonly number[] = [768, 1024, 1536];

const RESULT_COLUMNS = `r_product_id integer, r_sku text, r_product_name text, r_category_name text, r_type_name text,
  r_base_price numeric, r_description text, r_similarity numeric, r_is_sku boolean, r_all_words boolean,
  r_semantic boolean, r_stock_level integer, r_score numeric`;

function argumentTypes(hasVector: boolean): string {
  return `${hasVector ? 'integer[]' : 'real[]'}, text, text, numeric, integer, integer`;
}

function body(hasVector: boolean, dimensions: number, scan: ExactScan): string {
  return searchSql(hasVector, dimensions, hasVector ? HNSW_EF_SEARCH : undefined, scan);
}

/** The function family: pgvector, the exact scan over cube chunks (migration 13), or the exact scan over real[]. */
function family(hasVector: boolean, scan: ExactScan): string {
  return hasVector ? 'vector' : scan === 'chunks' ? 'chunks' : 'real';
}

/** Whether the cube chunks of migration 13 exist (a PostgreSQL without pgvector where cube could be created). */
const CHUNKS_SQL = `SELECT to_regclass('zava_search.embedding_chunks') IS NOT NULL`;

/** The exact scan a database without pgvector uses, per database handle (migrations run before searches). */
const scans = new WeakMap<object, ExactScan>();

async function exactScan(db: object, hasVector: boolean, query: (sql: string) => Promise<{ rows: unknown[][] }>): Promise<ExactScan> {
  if (hasVector) return 'array';
  let scan = scans.get(db);
  if (scan === undefined) {
    scan = (await query(CHUNKS_SQL)).rows[0]?.[0] === true ? 'chunks' : 'array';
    scans.set(db, scan);
  }
  return scan;
}

/** Names already worked out: every search asks, and the name hashes the whole statement. */
const names = new Map<string, string>();

/** The function for an embedding type and size; the suffix is a hash of its definition (a new one per change). */
export function searchFunctionName(hasVector: boolean, dimensions: number, scan: ExactScan = 'array'): string {
  const d = Math.trunc(dimensions);
  const key = `${family(hasVector, scan)}:${d}`;
  let name = names.get(key);
  if (name === undefined) {
    const version = createHash('sha256').update(`${argumentTypes(hasVector)}\n${RESULT_COLUMNS}\n${body(hasVector, d, scan)}`).digest('hex').slice(0, 12);
    name = `zava_search.products_${family(hasVector, scan)}_${d}_${version}`;
    names.set(key, name);
  }
  return name;
}

/** The query role and head office's every-store role, which holds the same privileges (migration 17). */
function readers(queryRole: string): string {
  return `${quoteIdent(queryRole)}, ${quoteIdent(everyStoreRole(queryRole))}`;
}

/**
 * DDL of one search function: searchSql in PL/pgSQL (its plan is reused: a generic plan), SECURITY INVOKER so it
 * runs with the caller's grants and row-level security, executable by the query role only.
 */
export function createSearchFunctionSql(hasVector: boolean, dimensions: number, queryRole: string, scan: ExactScan = 'array'): string {
  const name = searchFunctionName(hasVector, dimensions, scan);
  const args = argumentTypes(hasVector);
  return `
    CREATE FUNCTION ${name}(${args}) RETURNS TABLE (${RESULT_COLUMNS})
      LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $fn$
      BEGIN
        RETURN QUERY ${body(hasVector, dimensions, scan)};
      END
      $fn$;
    REVOKE ALL ON FUNCTION ${name}(${args}) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION ${name}(${args}) TO ${readers(queryRole)};`;
}

/** The exact scan this database's searches use (always 'array' with pgvector, where the HNSW path applies). */
export function searchScan(db: ManagedDatabase): Promise<ExactScan> {
  return exactScan(db, db.hasVector, (sql) => db.ownerQuery(sql));
}

const RANKED_ARGUMENTS = 'integer[], text, text, numeric, integer, integer, integer[], integer, bigint';
let rankedName: string | undefined;

/** The function of rankedSearchSql (one for every size: the vector part is ranked outside). */
export function rankedFunctionName(): string {
  rankedName ??= `zava_search.products_ranked_${createHash('sha256').update(`${RANKED_ARGUMENTS}\n${RESULT_COLUMNS}\n${rankedSearchSql()}`).digest('hex').slice(0, 12)}`;
  return rankedName;
}

function createRankedFunctionSql(queryRole: string): string {
  const name = rankedFunctionName();
  return `
    CREATE FUNCTION ${name}(${RANKED_ARGUMENTS}) RETURNS TABLE (${RESULT_COLUMNS})
      LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $fn$
      BEGIN
        RETURN QUERY ${rankedSearchSql()};
      END
      $fn$;
    REVOKE ALL ON FUNCTION ${name}(${RANKED_ARGUMENTS}) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION ${name}(${RANKED_ARGUMENTS}) TO ${readers(queryRole)};`;
}

/** Installed search functions: name, and signature (what DROP FUNCTION needs). */
const INSTALLED_SQL = `
  SELECT p.proname, p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = 'zava_search' AND p.proname LIKE 'products\\_%'`;
const LOCK_KEY = 7_262_637_201; // pg_advisory_xact_lock key: one installer at a time

export interface SearchFunctionReport {
  readonly created: string[];
  readonly dropped: string[];
}

/**
 * Installs the current search functions and drops older versions, in one owner transaction (call after
 * migrations). Does nothing beyond one catalog read when they are current.
 */
export async function ensureSearchFunctions(db: ManagedDatabase, queryRole: string): Promise<SearchFunctionReport> {
  const scan = await searchScan(db);
  const wanted = new Map(SEARCH_FUNCTION_DIMENSIONS.map((d) => [searchFunctionName(db.hasVector, d, scan).split('.')[1]!, d]));
  // Size 0: the ranked statement, wherever pgvector is missing.
  if (!db.hasVector) wanted.set(rankedFunctionName().split('.')[1]!, 0);
  // Name → signatures (a stale name may have more than one).
  const installed = (rows: unknown[][]) => {
    const byName = new Map<string, string[]>();
    for (const [name, signature] of rows) byName.set(String(name), [...(byName.get(String(name)) ?? []), String(signature)]);
    return byName;
  };
  const current = installed((await db.ownerQuery(INSTALLED_SQL)).rows);
  if (current.size === wanted.size && [...wanted.keys()].every((name) => current.has(name))) return { created: [], dropped: [] };
  return db.withAdminTransaction(async (session) => {
    await session.query('SELECT pg_advisory_xact_lock($1::bigint)', [LOCK_KEY]);
    const present = installed((await session.query(INSTALLED_SQL)).rows);
    const created: string[] = [];
    const dropped: string[] = [];
    for (const [name, dimensions] of wanted) {
      if (present.has(name)) continue;
      await session.exec(dimensions === 0 ? createRankedFunctionSql(queryRole) : createSearchFunctionSql(db.hasVector, dimensions, queryRole, scan));
      created.push(name);
    }
    for (const [name, signatures] of present) {
      if (wanted.has(name)) continue;
      for (const signature of signatures) await session.exec(`DROP FUNCTION ${signature}`);
      dropped.push(name);
    }
    return { created, dropped };
  });
}

/** Whether a function was found, per database handle; a miss is re-checked after MISS_TTL_MS. */
const availability = new WeakMap<object, Map<string, { present: boolean; at: number }>>();
const MISS_TTL_MS = 5_000;

/** Whether a search function is installed, remembered per database handle (a miss is re-checked after MISS_TTL_MS). */
async function functionPresent(db: object, session: ReadSession, name: string, args: string): Promise<boolean> {
  let known = availability.get(db);
  if (!known) availability.set(db, (known = new Map()));
  const seen = known.get(name);
  if (seen !== undefined && (seen.present || Date.now() - seen.at <= MISS_TTL_MS)) return seen.present;
  const found = await session.query(`SELECT to_regprocedure($1) IS NOT NULL`, [`${name}(${args})`]);
  const present = found.rows[0]?.[0] === true;
  known.set(name, { present, at: Date.now() });
  return present;
}

/**
 * The statement a search sends: the current search function where it is installed, else searchSql inline.
 * The first search of a size on a database handle looks the function up (one extra statement).
 */
export async function searchStatement(db: object, session: ReadSession, hasVector: boolean, dimensions: number): Promise<string> {
  const scan = await exactScan(db, hasVector, (sql) => session.query(sql));
  const inline = () => searchSql(hasVector, dimensions, hasVector ? HNSW_EF_SEARCH : undefined, scan);
  if (!SEARCH_FUNCTION_DIMENSIONS.includes(Math.trunc(dimensions))) return inline();
  const name = searchFunctionName(hasVector, dimensions, scan);
  if (!(await functionPresent(db, session, name, argumentTypes(hasVector)))) return inline();
  const vector = hasVector ? '$1::integer[]' : '$1::real[]';
  return `SELECT * FROM ${name}(${vector}, $2::text, $3::text, $4::numeric, $5::int, $6::int)`;
}

/** The statement of a search ranked in the server process: the ranked function where installed, else inline. */
export async function rankedSearchStatement(db: object, session: ReadSession): Promise<string> {
  const name = rankedFunctionName();
  if (!(await functionPresent(db, session, name, RANKED_ARGUMENTS))) return rankedSearchSql();
  return `SELECT * FROM ${name}($1::integer[], $2::text, $3::text, $4::numeric, $5::int, $6::int, $7::integer[], $8::int, $9::bigint)`;
}

/** A search function vanished (dropped by a newer version of the server): forget it, so the next search re-checks. */
export function isMissingSearchFunction(db: object, error: unknown): boolean {
  if (!(error instanceof QueryError) || error.sqlState !== '42883' || !/zava_search\.products_/.test(error.message)) return false;
  availability.delete(db);
  return true;
}
