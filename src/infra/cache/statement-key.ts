// The cache key of an ad-hoc SQL statement (execute_sales_query), and whether its answer may be cached at all.
// Decisions:
// - The key is libpg-query's fingerprint plus a hash of the whole parse tree without source positions. The
//   fingerprint alone is not enough: it ignores constants (`WHERE store_id = 1` and `= 2` share one) and output
//   names (`SELECT a AS x` and `SELECT a AS y` share one, checked with libpg-query 18), and both change the
//   answer. The position-free tree keeps both and drops what does not matter: spacing, comments, keyword case.
// - Cacheable only when every function the statement calls is IMMUTABLE in every overload PostgreSQL has of that
//   name (pg_proc.provolatile, read from the database at start: its own evidence, not a list of ours), or is one
//   of the few STABLE functions whose only inputs besides their arguments are the session's time zone and date
//   style, which every tool session fixes (timezone UTC). So now(), random(), clock_timestamp(), current_setting()
//   (the signed context), pg_backend_pid() and nextval() make a statement uncacheable, as do CURRENT_DATE,
//   CURRENT_TIMESTAMP, CURRENT_USER and the other SQL value functions, the date literals 'now', 'today',
//   'tomorrow' and 'yesterday', and TABLESAMPLE without REPEATABLE. A statement that does not parse is not cached
//   (the guard refuses it anyway).
import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';

/** STABLE only through the time zone and date style, which tool sessions fix; safe to cache for the TTL. */
const STABLE_UNDER_FIXED_SETTINGS = new Set(['to_char', 'date_trunc', 'date_part', 'extract', 'to_date', 'to_timestamp', 'timezone']);

/** Date and time literals PostgreSQL reads as "the current moment" when it casts them. */
const MOMENT_LITERALS = new Set(['now', 'today', 'tomorrow', 'yesterday']);

export const IMMUTABLE_FUNCTIONS_SQL = `SELECT proname FROM pg_catalog.pg_proc GROUP BY proname HAVING bool_and(provolatile = 'i')`;

/** Statements whose key is remembered: a dashboard repeats a few statements, and a parse costs more than a lookup. */
const REMEMBERED_STATEMENTS = 1_000;
/** Longer texts are keyed afresh each time rather than kept (bounded memory whatever arrives). */
const REMEMBERED_MAX_CHARS = 20_000;

export class StatementKeys {
  private readonly remembered = new LRUCache<string, { key: string | undefined }>({ max: REMEMBERED_STATEMENTS });

  private constructor(private readonly immutable: ReadonlySet<string>) {}

  /** Loads the parser and the database's immutable function names (`rows` runs IMMUTABLE_FUNCTIONS_SQL). */
  static async load(rows: (sql: string) => Promise<readonly (readonly unknown[])[]>): Promise<StatementKeys> {
    await loadModule();
    const names = await rows(IMMUTABLE_FUNCTIONS_SQL);
    return new StatementKeys(new Set(names.map((row) => String(row[0]))));
  }

  /** The statement's cache key, or undefined when its answer may not be cached (volatile, or unparsable). */
  keyOf(sql: string): string | undefined {
    if (sql.length > REMEMBERED_MAX_CHARS) return this.compute(sql);
    let found = this.remembered.get(sql);
    if (!found) {
      found = { key: this.compute(sql) };
      this.remembered.set(sql, found);
    }
    return found.key;
  }

  private compute(sql: string): string | undefined {
    let tree: unknown;
    let fingerprint: string;
    try {
      tree = parseSync(sql);
      fingerprint = fingerprintSync(sql);
    } catch {
      return undefined;
    }
    if (!this.deterministic(tree)) return undefined;
    const shape = JSON.stringify(tree, (name, value: unknown) => (name === 'location' || name === 'stmt_location' || name === 'stmt_len' ? undefined : value));
    return `${fingerprint}:${createHash('sha256').update(shape).digest('base64url')}`;
  }

  /** Whether the statement's answer depends only on the data (see the header). */
  deterministic(tree: unknown): boolean {
    const stack: unknown[] = [tree];
    while (stack.length > 0) {
      const node = stack.pop();
      if (Array.isArray(node)) {
        stack.push(...node);
        continue;
      }
      if (node === null || typeof node !== 'object') continue;
      for (const [name, value] of Object.entries(node as Record<string, unknown>)) {
        if (name === 'SQLValueFunction') return false;
        if (name === 'RangeTableSample' && !(value as { repeatable?: unknown }).repeatable) return false;
        if (name === 'FuncCall' && !this.allowedFunction((value as { funcname?: { String?: { sval?: string } }[] }).funcname)) return false;
        if (name === 'A_Const') {
          const text = (value as { sval?: { sval?: string } }).sval?.sval;
          if (text !== undefined && MOMENT_LITERALS.has(text.trim().toLowerCase())) return false;
        }
        stack.push(value);
      }
    }
    return true;
  }

  private allowedFunction(funcname: { String?: { sval?: string } }[] | undefined): boolean {
    const name = funcname?.at(-1)?.String?.sval;
    if (name === undefined) return false;
    return this.immutable.has(name) || STABLE_UNDER_FIXED_SETTINGS.has(name);
  }
}
