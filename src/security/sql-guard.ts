// The SQL guard: the first line of defence in front of Row Level Security. It accepts exactly one read-only
// SELECT (WITH, set operations, VALUES, subqueries, window functions, LATERAL, ...) and refuses everything else
// with a reason a model can act on.
//
// Every decision comes from PostgreSQL's own parser (libpg-query, compiled to WASM): comments, casing, quoting
// and dollar-quoting are resolved by the parser, never by string matching. The parse tree is walked generically
// (every object and array), so no node kind can be skipped, and each node kind must be on an allowlist. Functions,
// tables, types, operators and collations are checked wherever they appear.
//
// Design decisions:
// - EXPLAIN is refused in every form: EXPLAIN ANALYZE runs its statement, and plain EXPLAIN is not a query the
//   analytics layer can page through or cap, so "only SELECT" stays the single rule.
// - SHOW, SET and RESET are refused (reading or changing settings is not analytics).
// - Tables: only schema `retail` (qualified, or unqualified: search_path is `pg_catalog, retail`). Unqualified
//   names starting with `pg_` are refused, CTE names included, because pg_catalog is searched first and every
//   system catalog is named pg_*. information_schema and every other schema are refused.
// - pgvector lives in schema `public` in this database, so its operators, functions and types (and only those)
//   may be qualified with `public` (e.g. OPERATOR(public.<=>), public.vector(768)).
// - Function-call attribute notation: `(expr).name` field selection is refused; `alias.name` is needed for
//   columns, so it is allowed unless `name` looks like a system function (PostgreSQL resolves t.f as f(t) when t
//   has no column f; no built-in with side effects accepts a whole row, this is belt and braces).
// - Before parsing, the PostgreSQL scanner bounds nesting and token count: the WASM parser recurses per AST
//   level, and a native stack overflow inside it leaks WASM memory, so it must never be reached.
// - Types whose input function looks names up in the catalogs are refused in every spelling (casts, column
//   definitions, RETURNING, arrays, quoted or qualified names): a literal of one answers "does role x exist?"
//   ('x=r/y'::aclitem says 'role "x" does not exist'). The list comes from reviewing every typinput of pg_type
//   (PostgreSQL 15; PGlite's 18 adds only pg_* row types): aclitem and the reg* types; and every pg_* type, since
//   the catalogs' row types carry aclitem[] and reg* columns ('(...)'::pg_namespace runs aclitemin). regconfig is
//   what full-text search takes, so it stays, but only as an unqualified name ('english', 'english'::regconfig):
//   a qualified one probes for schemas. A test checks the service's whole pg_type against the reviewed list.
// - Generators of unbounded size. Measured on the PostgreSQL 15 service (work_mem 4 MB; peak backend RSS from
//   /proc/<pid>/status VmHWM, starting at 15 MB): repeat('x', 1e9) 1.9 GB in 8.4 s, and the columns of one row add
//   up (two of 5e8: 1.45 GB); lpad('x', 2e8) 0.59 GB; format('%300000000s') 0.59 GB; array_fill(1, ARRAY[1e8])
//   0.78 GB; count(*) FROM generate_series(1, 1e8) only 95 MB but 1.4 GB of temp files in 15 s (a FROM-clause
//   series is materialized), and a per-second series over 2020-2026 wrote 3.4 GB. So the guard refuses, with a
//   reason naming the fix: repeat() of anything but a string literal, or of more than 10,000 characters in all;
//   lpad/rpad lengths, format widths and array_fill sizes over 10,000; a generate_series it cannot prove yields at
//   most 100,000 values. A count or bound may be an expression clamped with LEAST/GREATEST and a constant
//   (repeat('#', LEAST(n, 50)) draws a bar chart), and date series may use current_date/now() ± intervals and
//   date_trunc(), so daily, hourly and monthly calendars keep working.
//   Not refused: string_agg/array_agg/json_agg. A value stops at PostgreSQL's 1 GB limit ('out of memory' after
//   2.3 s, peak 1.0 GB); 1e9 characters in one aggregate peak at 1.9 GB, two aggregates of 5e8 at 1.9 GB, a
//   hundred groups of 20 MB at 1.9 GB. Rows to aggregate come from any join (a cross join multiplies real
//   tables), so no rule on the aggregate could bound them without banning string_agg of product names. The same
//   holds for nested replace() (eight levels: 1e9 characters, 2.0 GB) and recursive-CTE doubling (2.7e8
//   characters, 0.8 GB in 4 s). These are bounded by the statement timeout, per-identity concurrency and the
//   result caps, and left to the operator: a scratch PostgreSQL 15 started under `ulimit -v 1500000` answered
//   repeat('x', 1e9) and a 1e9-character string_agg with 'out of memory' for that query alone and kept serving
//   (no restart); without a limit the same calls took the 1.9 GB above.
// - Parser/server differentials are closed off: NUL and other control characters, lone surrogates, and a `\'`
//   inside a standard '...' literal (which ends the string early on a server with standard_conforming_strings
//   off) are refused. A trailing semicolon is fine; a second statement is not.
import { loadModule, parseSync, scanSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';

export interface GuardVerdict {
  ok: boolean;
  /** Why the query was refused (only when ok is false). */
  reason?: string;
  /** What kind of statement was accepted (only when ok is true): always 'SELECT'. */
  statementKind?: string;
}

export interface SqlGuardOptions {
  /** Longest query accepted, in characters (default 100,000). Checked before parsing. */
  maxLength?: number;
  /** Deepest parse tree accepted, in nested JSON objects/arrays (default 200); also bounds parenthesis nesting. */
  maxDepth?: number;
  /** Most operator/keyword/punctuation tokens accepted (default 3,000); keeps the WASM parser off deep recursion. */
  maxTokens?: number;
  /** Schemas whose tables can be read (default ['retail']). */
  allowedSchemas?: readonly string[];
}

export const DEFAULT_MAX_LENGTH = 100_000;
export const DEFAULT_MAX_DEPTH = 200;
// The parser overflows the native stack somewhere past ~8,000 nested AST levels; every level costs at least one
// operator/keyword/punctuation token, so 3,000 such tokens leaves a wide margin.
export const DEFAULT_MAX_TOKENS = 3_000;
const DEFAULT_SCHEMAS: ReadonlySet<string> = new Set(['retail']);

/** Longest value repeat/lpad/rpad/format widths/array_fill may build, in characters (or elements). */
export const MAX_GENERATED_CHARACTERS = 10_000;
/** Most values a generate_series may be proven to yield. */
export const MAX_SERIES_VALUES = 100_000;

// The schema pgvector was installed into (CREATE EXTENSION vector, no schema clause).
const PGVECTOR_SCHEMA = 'public';

/**
 * Functions an analyst needs; everything else is refused. All are pure or merely read the clock/random. Names
 * are as PostgreSQL stores them after case folding; SQL-syntax forms (EXTRACT, SUBSTRING ... FROM, TRIM,
 * POSITION, OVERLAY, AT TIME ZONE, LIKE ... ESCAPE, OVERLAPS, TREAT) appear as these pg_catalog functions too.
 * COALESCE, NULLIF, GREATEST, LEAST, GROUPING and CURRENT_DATE & co. are separate node kinds.
 */
export const ALLOWED_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'string_agg', 'array_agg', 'bool_and', 'bool_or', 'every', 'bit_and',
  'bit_or', 'bit_xor', 'any_value', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp',
  'percentile_cont', 'percentile_disc', 'mode', 'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy',
  'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy',
  // window functions
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value',
  'last_value', 'nth_value',
  // math
  'abs', 'round', 'ceil', 'ceiling', 'floor', 'trunc', 'power', 'pow', 'sqrt', 'cbrt', 'exp', 'ln', 'log',
  'log10', 'mod', 'sign', 'div', 'width_bucket', 'pi', 'degrees', 'radians', 'sin', 'cos', 'tan', 'asin', 'acos',
  'atan', 'atan2', 'gcd', 'lcm', 'factorial', 'scale', 'min_scale', 'trim_scale', 'random', 'random_normal',
  'num_nulls', 'num_nonnulls',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length',
  'substring', 'substr', 'position', 'strpos', 'btrim', 'ltrim', 'rtrim', 'replace', 'translate', 'concat',
  'concat_ws', 'left', 'right', 'lpad', 'rpad', 'split_part', 'format', 'regexp_replace', 'regexp_match',
  'regexp_matches', 'regexp_split_to_array', 'regexp_split_to_table', 'regexp_count', 'regexp_instr',
  'regexp_like', 'regexp_substr', 'starts_with', 'reverse', 'repeat', 'md5', 'sha256', 'ascii', 'chr',
  'quote_ident', 'quote_literal', 'quote_nullable', 'overlay', 'normalize', 'is_normalized', 'to_hex', 'encode',
  'decode', 'like_escape', 'similar_to_escape', 'to_char', 'to_number',
  // dates and times
  'now', 'date_trunc', 'date_part', 'extract', 'age', 'make_date', 'make_time', 'make_timestamp',
  'make_timestamptz', 'make_interval', 'to_date', 'to_timestamp', 'date_bin', 'justify_days', 'justify_hours',
  'justify_interval', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'isfinite',
  'timezone', 'overlaps', 'date_add', 'date_subtract', 'generate_series',
  // conversions spelled as functions (date(ts), int4(x), TREAT(x AS int))
  'date', 'time', 'timestamp', 'timestamptz', 'interval', 'int2', 'int4', 'int8', 'float4', 'float8', 'numeric',
  'text', 'varchar', 'bpchar', 'bool',
  // ranges
  'int4range', 'int8range', 'numrange', 'daterange', 'tsrange', 'tstzrange', 'isempty', 'lower_inc', 'upper_inc',
  // arrays
  'array_length', 'array_lower', 'array_upper', 'array_ndims', 'array_dims', 'cardinality', 'array_position',
  'array_positions', 'array_to_string', 'string_to_array', 'string_to_table', 'array_append', 'array_prepend',
  'array_cat', 'array_remove', 'array_replace', 'array_fill', 'trim_array', 'array_reverse', 'array_sort',
  'unnest', 'generate_subscripts',
  // JSON
  'to_json', 'to_jsonb', 'row_to_json', 'array_to_json', 'json_build_object', 'jsonb_build_object',
  'json_build_array', 'jsonb_build_array', 'json_object', 'jsonb_object', 'json_agg', 'jsonb_agg',
  'json_agg_strict', 'jsonb_agg_strict', 'json_object_agg', 'jsonb_object_agg', 'json_strip_nulls',
  'jsonb_strip_nulls', 'jsonb_pretty', 'json_typeof', 'jsonb_typeof', 'json_array_length', 'jsonb_array_length',
  'json_each', 'jsonb_each', 'json_each_text', 'jsonb_each_text', 'json_array_elements', 'jsonb_array_elements',
  'json_array_elements_text', 'jsonb_array_elements_text', 'json_object_keys', 'jsonb_object_keys',
  'json_extract_path', 'jsonb_extract_path', 'json_extract_path_text', 'jsonb_extract_path_text', 'jsonb_set',
  'jsonb_insert', 'jsonb_path_exists', 'jsonb_path_match', 'jsonb_path_query', 'jsonb_path_query_array',
  'jsonb_path_query_first',
  // full-text search (not ts_stat / ts_rewrite, which run SQL given as text)
  'to_tsvector', 'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_rank',
  'ts_rank_cd', 'ts_headline', 'setweight', 'numnode', 'querytree', 'strip', 'tsvector_to_array',
  'array_to_tsvector', 'ts_delete', 'ts_filter', 'tsquery_phrase',
  // pgvector
  'cosine_distance', 'l2_distance', 'inner_product', 'l1_distance', 'vector_dims', 'vector_norm', 'l2_norm',
  'l2_normalize', 'subvector', 'binary_quantize', 'hamming_distance', 'jaccard_distance',
]);

// pgvector's names, the only ones that may be qualified with its schema.
const PGVECTOR_FUNCTIONS: ReadonlySet<string> = new Set(['cosine_distance', 'l2_distance', 'inner_product',
  'l1_distance', 'vector_dims', 'vector_norm', 'l2_norm', 'l2_normalize', 'subvector', 'binary_quantize',
  'hamming_distance', 'jaccard_distance']);
// Distance operators only: OPERATOR(public.<=>) is how a query names them when public is not on the search path.
const PGVECTOR_OPERATORS: ReadonlySet<string> = new Set(['<->', '<=>', '<#>', '<+>', '<~>', '<%>']);
const PGVECTOR_TYPES: ReadonlySet<string> = new Set(['vector', 'halfvec', 'sparsevec']);

/**
 * Parse-tree node kinds that can appear in an accepted SELECT. Anything else (a nested INSERT, XMLTABLE, FOR
 * UPDATE, SELECT INTO, DEFAULT, ...) is refused. Node kinds are the wrapper keys of libpg-query's JSON.
 */
const ALLOWED_NODES: ReadonlySet<string> = new Set([
  'SelectStmt', 'WithClause', 'CommonTableExpr', 'CTESearchClause', 'CTECycleClause', 'ResTarget', 'RangeVar',
  'Alias', 'JoinExpr', 'RangeSubselect', 'RangeFunction', 'RangeTableSample', 'ColumnDef', 'SortBy', 'WindowDef',
  'GroupingSet', 'GroupingFunc', 'List', 'String', 'Integer', 'Float', 'Boolean', 'BitString', 'A_Const',
  'A_Star', 'A_Expr', 'A_Indirection', 'A_Indices', 'A_ArrayExpr', 'BoolExpr', 'BooleanTest', 'NullTest',
  'CaseExpr', 'CaseWhen', 'CoalesceExpr', 'MinMaxExpr', 'CollateClause', 'ColumnRef', 'FuncCall', 'NamedArgExpr',
  'ParamRef', 'RowExpr', 'SQLValueFunction', 'SubLink', 'TypeCast', 'TypeName',
  // SQL/JSON constructors, predicates and JSON_TABLE: pure expressions
  'JsonObjectConstructor', 'JsonArrayConstructor', 'JsonArrayQueryConstructor', 'JsonAggConstructor',
  'JsonObjectAgg', 'JsonArrayAgg', 'JsonKeyValue', 'JsonValueExpr', 'JsonOutput', 'JsonReturning', 'JsonFormat',
  'JsonIsPredicate', 'JsonParseExpr', 'JsonScalarExpr', 'JsonSerializeExpr', 'JsonFuncExpr', 'JsonBehavior',
  'JsonArgument', 'JsonTable', 'JsonTablePathSpec', 'JsonTableColumn',
]);

// Fields whose value is a node stored without its wrapper key (libpg-query omits it for typed fields). A Map,
// not an object literal: field names such as `constructor` (JsonAggConstructor) must not hit the prototype.
const UNWRAPPED_FIELDS: ReadonlyMap<string, string> = new Map([
  ['typeName', 'TypeName'], ['intoClause', 'IntoClause'], ['collClause', 'CollateClause'], ['identitySequence', 'RangeVar'],
]);

// CURRENT_DATE & co. are fine; CURRENT_USER, CURRENT_SCHEMA, ... are not analytics.
const ALLOWED_VALUE_FUNCTIONS: ReadonlySet<string> = new Set(['SVFOP_CURRENT_DATE', 'SVFOP_CURRENT_TIME',
  'SVFOP_CURRENT_TIME_N', 'SVFOP_CURRENT_TIMESTAMP', 'SVFOP_CURRENT_TIMESTAMP_N', 'SVFOP_LOCALTIME',
  'SVFOP_LOCALTIME_N', 'SVFOP_LOCALTIMESTAMP', 'SVFOP_LOCALTIMESTAMP_N']);

// Types whose input function looks names up in the catalogs, so a literal of one answers "does this role (or
// relation, function, schema, ...) exist?". Found by reviewing every typinput in PostgreSQL 15's pg_type: aclitem
// and the object-identifier types. The row types of the catalogs (pg_class, pg_namespace, ...) carry aclitem[]
// and reg* columns, so every pg_* type is refused too; regconfig is allowed only as an unqualified name.
const CATALOG_LOOKUP_TYPES: ReadonlySet<string> = new Set(['aclitem', 'regclass', 'regcollation', 'regdictionary',
  'regnamespace', 'regoper', 'regoperator', 'regproc', 'regprocedure', 'regrole', 'regtype']);

// Full-text functions whose first argument, when given, is a regconfig: a literal there is looked up like a cast.
// ts_headline's config comes before the document (3 or 4 arguments); the others take (config, text).
const REGCONFIG_FIRST_ARGUMENT: ReadonlyMap<string, number> = new Map([['to_tsvector', 2], ['to_tsquery', 2],
  ['plainto_tsquery', 2], ['phraseto_tsquery', 2], ['websearch_to_tsquery', 2], ['ts_headline', 3]]);

// Names that, after `alias.`, would make PostgreSQL call a function rather than read a column.
const SUSPICIOUS_ATTRIBUTE_PREFIXES = ['pg_', 'lo_', 'dblink', 'txid_'];
const SUSPICIOUS_ATTRIBUTES: ReadonlySet<string> = new Set(['set_config', 'current_setting', 'nextval', 'setval',
  'currval', 'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'table_to_xml', 'cursor_to_xml',
  'ts_stat', 'ts_rewrite', 'version']);

const LOCK_STRENGTHS: ReadonlyMap<string, string> = new Map([
  ['LCS_FORKEYSHARE', 'FOR KEY SHARE'], ['LCS_FORSHARE', 'FOR SHARE'], ['LCS_FORNOKEYUPDATE', 'FOR NO KEY UPDATE'],
  ['LCS_FORUPDATE', 'FOR UPDATE'],
]);

const STATEMENT_NAMES: ReadonlyMap<string, string> = new Map([
  ['InsertStmt', 'INSERT'], ['UpdateStmt', 'UPDATE'], ['DeleteStmt', 'DELETE'], ['MergeStmt', 'MERGE'],
  ['TruncateStmt', 'TRUNCATE'], ['CopyStmt', 'COPY'], ['CallStmt', 'CALL'], ['DoStmt', 'DO'],
  ['ListenStmt', 'LISTEN'], ['UnlistenStmt', 'UNLISTEN'], ['NotifyStmt', 'NOTIFY'], ['PrepareStmt', 'PREPARE'],
  ['ExecuteStmt', 'EXECUTE'], ['DeallocateStmt', 'DEALLOCATE'], ['DeclareCursorStmt', 'DECLARE CURSOR'],
  ['ClosePortalStmt', 'CLOSE'], ['LockStmt', 'LOCK'], ['DiscardStmt', 'DISCARD'], ['LoadStmt', 'LOAD'],
  ['CheckPointStmt', 'CHECKPOINT'], ['VariableShowStmt', 'SHOW'], ['CreateStmt', 'CREATE TABLE'],
  ['ViewStmt', 'CREATE VIEW'], ['IndexStmt', 'CREATE INDEX'], ['CreateSchemaStmt', 'CREATE SCHEMA'],
  ['CommentStmt', 'COMMENT'], ['RefreshMatViewStmt', 'REFRESH MATERIALIZED VIEW'], ['ReindexStmt', 'REINDEX'],
  ['ClusterStmt', 'CLUSTER'], ['CreateExtensionStmt', 'CREATE EXTENSION'], ['CreateRoleStmt', 'CREATE ROLE'],
  ['AlterRoleStmt', 'ALTER ROLE'], ['RenameStmt', 'ALTER ... RENAME'], ['GrantRoleStmt', 'GRANT (role)'],
  ['SecLabelStmt', 'SECURITY LABEL'],
]);

type Refusal = string;

let ready: Promise<void> | undefined;

/** Loads the WASM parser; checkReadOnlySql calls it, a server may call it at start-up to warm up. */
export function warmUpSqlGuard(): Promise<void> {
  // A failed load is not cached, so a transient failure does not refuse every later query.
  ready ??= loadModule().catch((error: unknown) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

/** Decides whether `sql` is exactly one read-only SELECT the analytics layer may run. Never throws. */
export async function checkReadOnlySql(sql: string, options: SqlGuardOptions = {}): Promise<GuardVerdict> {
  try {
    await warmUpSqlGuard();
    return verdictOf(check(sql, options));
  } catch (error) {
    return cannotCheck(error);
  }
}

export interface VerdictCacheOptions {
  /** Most verdicts kept (default 10,000). */
  cacheEntries?: number;
  /** Most memory the cached texts and reasons may take, in bytes at two a character (default 16 MiB). */
  cacheBytes?: number;
}

export interface CachedSqlGuard {
  /** checkReadOnlySql with the guard's options, answered from the cache when the same text was checked before. */
  check(sql: string): Promise<GuardVerdict>;
  stats(): { entries: number; bytes: number; hits: number; misses: number };
}

export const DEFAULT_CACHE_ENTRIES = 10_000;
export const DEFAULT_CACHE_BYTES = 16 * 2 ** 20;
// Key and verdict objects, beyond the characters themselves.
const CACHE_ENTRY_OVERHEAD_BYTES = 200;

/**
 * The guard with its verdict cached per SQL text: models and managers send the same questions again, and the
 * check (parse and walk) costs far more than a lookup. Bounded by entries and bytes (least recently used go
 * first), so hostile unique texts cannot grow it; a text over a sixteenth of the byte budget is not kept. A
 * verdict depends only on the text and the options, except that date series are measured from today: a cached
 * one is at most as old as the cache's turnover, which moves their bound by days, not orders of magnitude.
 */
export function createCachedSqlGuard(options: SqlGuardOptions & VerdictCacheOptions = {}): CachedSqlGuard {
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  const maxSize = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  const cache = new LRUCache<string, GuardVerdict>({
    max: options.cacheEntries ?? DEFAULT_CACHE_ENTRIES,
    maxSize,
    maxEntrySize: Math.max(1, Math.floor(maxSize / 16)),
    sizeCalculation: (verdict, sql) => (sql.length + (verdict.reason?.length ?? 0)) * 2 + CACHE_ENTRY_OVERHEAD_BYTES,
  });
  let hits = 0;
  let misses = 0;
  return {
    async check(sql) {
      // Too long (or not text): refused at once, never hashed or kept.
      if (typeof sql !== 'string' || sql.length > maxLength) return checkReadOnlySql(sql, options);
      const cached = cache.get(sql);
      if (cached !== undefined) {
        hits++;
        return cached;
      }
      misses++;
      let verdict: GuardVerdict;
      try {
        await warmUpSqlGuard();
        verdict = Object.freeze(verdictOf(check(sql, options)));
      } catch (error) {
        return cannotCheck(error); // not cached: it may be transient (the parser failed to load)
      }
      cache.set(sql, verdict);
      return verdict;
    },
    stats: () => ({ entries: cache.size, bytes: cache.calculatedSize, hits, misses }),
  };
}

function verdictOf(reason: Refusal | undefined): GuardVerdict {
  return reason === undefined ? { ok: true, statementKind: 'SELECT' } : { ok: false, reason };
}

function cannotCheck(error: unknown): GuardVerdict {
  // Fail closed: anything unexpected is a refusal, never a pass.
  return { ok: false, reason: `the query could not be checked (${errorMessage(error)})` };
}

function check(sql: string, options: SqlGuardOptions): Refusal | undefined {
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const schemas = options.allowedSchemas === undefined ? DEFAULT_SCHEMAS : new Set(options.allowedSchemas);

  if (typeof sql !== 'string') return 'the query must be a string';
  if (sql.length > maxLength) return `the query is too long (${sql.length} characters; the limit is ${maxLength})`;
  if (sql.trim() === '') return 'the query is empty: give one SELECT statement';
  // NUL would end the C string the parser sees while the server might see more; other control characters
  // (tab, newline and carriage return aside) have no business in SQL and break the scanner's output. Lone
  // surrogates would reach the parser and the server as different bytes.
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
      return `the query contains a control character (U+${c.toString(16).padStart(4, '0').toUpperCase()}) at position ${i + 1}`;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = sql.charCodeAt(i + 1);
      if (c >= 0xdc00 || !(next >= 0xdc00 && next <= 0xdfff)) return `the query contains invalid Unicode (a lone surrogate) at position ${i + 1}`;
      i++; // a valid pair
    }
  }

  const scanned = precheckTokens(sql, maxDepth, maxTokens);
  if (scanned !== undefined) return scanned;

  let tree: { stmts?: Array<{ stmt?: unknown }> };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (error) {
    return describeParseError(error);
  }

  const stmts = tree.stmts ?? [];
  if (stmts.length === 0) return 'no SQL statement found (only comments or semicolons)';
  if (stmts.length > 1) return `only one statement is allowed (found ${stmts.length})`;
  const top = nodeOf(stmts[0]?.stmt);
  if (top === undefined) return 'no SQL statement found';
  if (top.kind !== 'SelectStmt') {
    const name = statementName(top.kind, top.node);
    const note = name === 'EXPLAIN ANALYZE' ? ' (it executes its statement)' : '';
    return `${name} is not allowed${note}: only SELECT queries can run`;
  }
  return walk(top.node, maxDepth, schemas);
}

/**
 * Runs PostgreSQL's scanner (flat, no recursion) before the parser: bounds parenthesis nesting and the number of
 * tokens that can build nested AST levels, and refuses string literals whose meaning depends on
 * standard_conforming_strings (a `\'` inside '...' would end the string on a server with it off).
 */
function precheckTokens(sql: string, maxDepth: number, maxTokens: number): Refusal | undefined {
  let tokens;
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    // Lexical errors (unterminated string or comment, bad escapes): the parser reports them properly, and it
    // stops at the lexer error before building (or recursing through) any tree.
    return undefined;
  }
  let depth = 0;
  let maxSeen = 0;
  let structural = 0;
  for (const token of tokens) {
    switch (token.tokenName) {
      case 'SQL_COMMENT':
      case 'C_COMMENT':
      case 'IDENT':
      case 'ICONST':
      case 'FCONST':
      case 'PARAM':
        continue;
      case 'SCONST':
        if (token.text.startsWith("'") && token.text.includes("\\'")) {
          return `the string literal ${abbreviate(token.text)} has a backslash before a quote, which means different things depending on standard_conforming_strings: write E'...' with \\' or double the quote ('')`;
        }
        continue;
    }
    const text = token.text;
    if (text === ',' || text === '.') continue;
    if (text === '(' || text === '[') {
      depth++;
      if (depth > maxSeen) maxSeen = depth;
    } else if (text === ')' || text === ']') {
      depth--;
    }
    structural++;
  }
  if (maxSeen > maxDepth) {
    return `the query is nested too deeply (${maxSeen} levels of parentheses; the limit is ${maxDepth})`;
  }
  if (structural > maxTokens) {
    return `the query is too complex to check (${structural} operators, keywords and brackets; the limit is ${maxTokens})`;
  }
  return undefined;
}

function describeParseError(error: unknown): Refusal {
  const message = errorMessage(error);
  if (error instanceof RangeError) return 'the query is too deeply nested for the SQL parser';
  if (message.startsWith('memory exhausted')) return `the query is too deeply nested for the SQL parser (${message})`;
  const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
  const at = details?.cursorPosition !== undefined ? ` (at character ${details.cursorPosition + 1})` : '';
  return `could not parse the query: ${message}${at}`;
}

interface Frame {
  readonly value: unknown;
  /** The node kind when `value` is a parse-tree node (from its wrapper key or its field). */
  readonly kind: string | undefined;
  readonly depth: number;
}

/** Iterative walk over every object and array of the tree (no recursion, so no stack overflow). */
function walk(root: unknown, maxDepth: number, schemas: ReadonlySet<string>): Refusal | undefined {
  // TypeName nodes of `'english'::regconfig` casts, vetted at their TypeCast (always visited before its children).
  const vettedRegconfig = new WeakSet<object>();
  const stack: Frame[] = [{ value: root, kind: 'SelectStmt', depth: 1 }];
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    if (frame.depth > maxDepth) return `the query is nested too deeply (the limit is ${maxDepth} levels of the parse tree)`;
    const { value } = frame;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], kind: undefined, depth: frame.depth + 1 });
      continue;
    }
    if (!isObject(value)) continue;
    if (frame.kind !== undefined) {
      const refused = checkNode(frame.kind, value, schemas, vettedRegconfig);
      if (refused !== undefined) return refused;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const child = value[key];
      const kind = isNodeKind(key) ? key : UNWRAPPED_FIELDS.get(key);
      if (kind !== undefined && !ALLOWED_NODES.has(kind)) return describeRefusedNode(kind, child);
      stack.push({ value: child, kind, depth: frame.depth + 1 });
    }
  }
  return undefined;
}

/** Checks one node of an allowed kind: names of functions, tables, types, operators, collations. */
function checkNode(kind: string, node: Record<string, unknown>, schemas: ReadonlySet<string>, vettedRegconfig: WeakSet<object>): Refusal | undefined {
  switch (kind) {
    case 'FuncCall': {
      const parts = names(node['funcname']);
      const args = Array.isArray(node['args']) ? (node['args'] as unknown[]) : [];
      return checkFunction(parts) ?? checkArguments(parts.at(-1) ?? '', args);
    }
    case 'TypeCast':
      if (isVettedRegconfigCast(node)) vettedRegconfig.add(node['typeName'] as object);
      return undefined;
    case 'RangeVar':
      return checkTable(node, schemas);
    case 'ColumnRef':
      return checkColumnRef(node['fields'], schemas);
    case 'A_Indirection':
      return checkIndirection(node['indirection']);
    case 'TypeName':
      return checkType(names(node['names']), schemas, vettedRegconfig.has(node));
    case 'A_Expr':
      return checkOperator(names(node['name']));
    case 'SubLink':
      return checkOperator(names(node['operName']));
    case 'SortBy':
      return checkOperator(names(node['useOp']));
    case 'CollateClause':
      return checkCollation(names(node['collname']));
    case 'SQLValueFunction': {
      const op = String(node['op']);
      return ALLOWED_VALUE_FUNCTIONS.has(op) ? undefined : `${op.replace(/^SVFOP_/, '')} is not allowed`;
    }
    case 'RangeTableSample': {
      const method = names(node['method']);
      const name = method.at(-1);
      const qualifiedOk = method.length === 1 || (method.length === 2 && method[0] === 'pg_catalog');
      return qualifiedOk && (name === 'bernoulli' || name === 'system')
        ? undefined
        : `TABLESAMPLE method ${method.join('.')} is not allowed (use BERNOULLI or SYSTEM)`;
    }
    default:
      return undefined;
  }
}

function checkFunction(parts: string[]): Refusal | undefined {
  const display = parts.join('.');
  const name = parts.at(-1) ?? '';
  if (parts.length === 2) {
    const schema = parts[0];
    const qualifiedOk = schema === 'pg_catalog' || (schema === PGVECTOR_SCHEMA && PGVECTOR_FUNCTIONS.has(name));
    if (!qualifiedOk) return `function ${display} is not allowed (only built-in functions, optionally qualified with pg_catalog, can be called)`;
  } else if (parts.length !== 1) {
    return `function ${display} is not allowed`;
  }
  return ALLOWED_FUNCTIONS.has(name) ? undefined : `function ${display} is not allowed`;
}

/** Arguments that decide what an allowed function looks up or how much it builds. */
function checkArguments(name: string, args: readonly unknown[]): Refusal | undefined {
  const configArgs = REGCONFIG_FIRST_ARGUMENT.get(name);
  if (configArgs !== undefined && args.length >= configArgs) {
    const literal = stringConstant(args[0]);
    if (literal !== undefined) return checkConfigurationName(literal);
  }
  return checkGeneratedSize(name, args);
}

/** Refuses the one-call generators of values or rows of any size (see the decision at the top of the file). */
function checkGeneratedSize(name: string, args: readonly unknown[]): Refusal | undefined {
  switch (name) {
    case 'repeat': {
      const count = numberRange(args[1]).hi;
      if (!(count <= MAX_GENERATED_CHARACTERS)) {
        return `repeat() count must be a constant of at most ${MAX_GENERATED_CHARACTERS}, or LEAST(expression, constant), e.g. repeat('#', LEAST(n, 50))`;
      }
      const text = stringConstant(args[0]);
      if (text === undefined) return `repeat() may only repeat a string literal (e.g. repeat('-', 20)): repeating an expression can build values of any size`;
      const built = text.length * Math.max(count, 0);
      return built <= MAX_GENERATED_CHARACTERS
        ? undefined
        : `repeat() would build up to ${built} characters; the limit is ${MAX_GENERATED_CHARACTERS}`;
    }
    case 'lpad':
    case 'rpad':
      // The result is exactly `length` characters, whatever the strings.
      return numberRange(args[1]).hi <= MAX_GENERATED_CHARACTERS
        ? undefined
        : `${name}() length must be a constant of at most ${MAX_GENERATED_CHARACTERS}, or LEAST(expression, constant), e.g. ${name}(sku, 12, '0')`;
    case 'format':
      return checkFormatWidths(args[0]);
    case 'array_fill':
      return checkArrayFill(args);
    case 'generate_series':
      return checkSeries(args);
    default:
      return undefined;
  }
}

/** format('%10s', ...) pads like lpad: widths are bounded the same way, and `*` (a width from an argument) is refused. */
function checkFormatWidths(formatArgument: unknown): Refusal | undefined {
  const format = stringConstant(formatArgument);
  if (format === undefined) return 'format() needs its format string as a literal';
  for (const match of format.matchAll(/%(?:\d+\$)?-?(\*|\d+)?/g)) {
    const width = match[1];
    if (width === '*') return 'format() widths must be written in the format string (%10s), not taken from an argument (%*s)';
    if (width !== undefined && Number(width) > MAX_GENERATED_CHARACTERS) {
      return `format() width ${width} is too large; the limit is ${MAX_GENERATED_CHARACTERS}`;
    }
  }
  return undefined;
}

/** array_fill(value, ARRAY[dims]): a constant value and at most MAX_GENERATED_CHARACTERS elements. */
function checkArrayFill(args: readonly unknown[]): Refusal | undefined {
  const usage = `array_fill() needs a constant value and constant dimensions of at most ${MAX_GENERATED_CHARACTERS} elements in all, e.g. array_fill(0, ARRAY[12])`;
  const value = nodeOf(args[0]);
  const constant = value?.kind === 'A_Const' || (value?.kind === 'TypeCast' && nodeOf(value.node['arg'])?.kind === 'A_Const');
  const dims = nodeOf(args[1]);
  const elements = dims?.kind === 'TypeCast' ? nodeOf(dims.node['arg']) : dims;
  if (!constant || elements?.kind !== 'A_ArrayExpr') return usage;
  let total = 1;
  for (const dim of Array.isArray(elements.node['elements']) ? elements.node['elements'] : []) total *= Math.max(numberRange(dim).hi, 0);
  return total <= MAX_GENERATED_CHARACTERS ? undefined : usage;
}

/**
 * generate_series(start, stop[, step]): the guard must be able to prove it yields at most MAX_SERIES_VALUES values.
 * Numbers: constant bounds (LEAST/GREATEST with a constant clamp an expression). Dates and times: literals,
 * current_date/now() plus or minus constant intervals, date_trunc() of those, clamps; and a constant step.
 */
function checkSeries(args: readonly unknown[]): Refusal | undefined {
  const [start, stop, step] = args;
  let values = countValues(numberRange(start), numberRange(stop), step === undefined ? { lo: 1, hi: 1 } : numberRange(step));
  const stepInterval = step === undefined ? undefined : intervalRange(step);
  if (!Number.isFinite(values) && stepInterval !== undefined) values = countValues(timeRange(start), timeRange(stop), stepInterval);
  if (Number.isFinite(values)) {
    return values <= MAX_SERIES_VALUES
      ? undefined
      : `generate_series() would produce up to ${Math.floor(values)} values; the limit is ${MAX_SERIES_VALUES}: use a larger step or a shorter range`;
  }
  return !args.some(looksTemporal)
    ? `generate_series() bounds and step must be constants (an expression may be clamped with LEAST(expression, constant) or GREATEST(expression, constant)), for at most ${MAX_SERIES_VALUES} values`
    : `generate_series() over dates needs bounds the guard can check: literals such as date '2024-01-01', current_date or now() plus or minus an interval, date_trunc() of those, or an expression clamped with GREATEST(expression, date '2024-01-01') / LEAST(expression, current_date); and a constant step such as interval '1 day'`;
}

/** Whether an argument reads as a date, time or interval, to word the refusal for the series the query meant. */
function looksTemporal(expr: unknown): boolean {
  const node = nodeOf(expr);
  if (node === undefined) return false;
  if (node.kind === 'SQLValueFunction') return true;
  if (node.kind === 'TypeCast') {
    const typeName = node.node['typeName'];
    const type = isObject(typeName) ? names(typeName['names']).at(-1) : undefined;
    return type !== undefined && TEMPORAL_TYPES.has(type);
  }
  const range = timeRange(expr);
  if (Number.isFinite(range.lo) || Number.isFinite(range.hi)) return true;
  const literal = stringConstant(expr);
  return literal !== undefined && constantNumber(node.node) === undefined;
}

const TEMPORAL_TYPES: ReadonlySet<string> = new Set(['date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval']);

/** The most values a series from `start` to `stop` can have with a step that never changes sign. */
function countValues(start: Range, stop: Range, step: Range): number {
  if (step.lo > 0) return (stop.hi - start.lo) / step.lo + 1;
  if (step.hi < 0) return (start.hi - stop.lo) / -step.hi + 1;
  return Infinity;
}

/** What an expression is known to lie between; ±Infinity where the guard cannot tell. */
interface Range {
  readonly lo: number;
  readonly hi: number;
}

const UNKNOWN: Range = { lo: -Infinity, hi: Infinity };
const DAY_MS = 86_400_000;

/** The range of a numeric expression: constants (cast or negated), + - * of ranges, LEAST and GREATEST. */
function numberRange(expr: unknown): Range {
  const node = nodeOf(expr);
  switch (node?.kind) {
    case 'A_Const': {
      const value = constantNumber(node.node);
      return value === undefined ? UNKNOWN : { lo: value, hi: value };
    }
    case 'TypeCast': {
      // A cast to an integer type rounds.
      const inner = numberRange(node.node['arg']);
      return { lo: Math.floor(inner.lo), hi: Math.ceil(inner.hi) };
    }
    case 'A_Expr':
      return arithmetic(node.node, numberRange);
    case 'MinMaxExpr':
      return clamp(node.node, numberRange);
    default:
      return UNKNOWN;
  }
}

/** The range of a date/timestamp expression in epoch milliseconds, a day wider either side for time zones. */
function timeRange(expr: unknown): Range {
  const node = nodeOf(expr);
  const now = Date.now();
  switch (node?.kind) {
    case 'A_Const':
    case 'TypeCast': {
      const literal = stringConstant(expr);
      if (literal !== undefined) return parseTimestamp(literal);
      if (node.kind === 'A_Const') return UNKNOWN;
      const inner = timeRange(node.node['arg']);
      return { lo: inner.lo - DAY_MS, hi: inner.hi + DAY_MS };
    }
    case 'SQLValueFunction':
      return { lo: now - DAY_MS, hi: now + DAY_MS };
    case 'FuncCall': {
      const name = names(node.node['funcname']).at(-1);
      const args = Array.isArray(node.node['args']) ? (node.node['args'] as unknown[]) : [];
      if (args.length === 0 && name !== undefined && CLOCK_FUNCTIONS.has(name)) return { lo: now - DAY_MS, hi: now + DAY_MS };
      if (name === 'date_trunc' && args.length >= 2) {
        // Truncation moves a value back by less than its unit; a year is the longest unit that matters here.
        const inner = timeRange(args[1]);
        const unit = DURATION_UNITS.get((stringConstant(args[0]) ?? '').toLowerCase());
        return unit === undefined ? UNKNOWN : { lo: inner.lo - unit.hi - DAY_MS, hi: inner.hi + DAY_MS };
      }
      return UNKNOWN;
    }
    case 'A_Expr':
      return arithmetic(node.node, timeRange, (side) => intervalRange(side) ?? daysRange(side));
    case 'MinMaxExpr':
      return clamp(node.node, timeRange);
    default:
      return UNKNOWN;
  }
}

const CLOCK_FUNCTIONS: ReadonlySet<string> = new Set(['now', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp']);

/** date ± integer adds days. */
function daysRange(expr: unknown): Range {
  const days = numberRange(expr);
  return { lo: days.lo * DAY_MS, hi: days.hi * DAY_MS };
}

/** Units of interval input, with the shortest and longest each can be, in milliseconds. */
const DURATION_UNITS: ReadonlyMap<string, Range> = (() => {
  const fixed = (ms: number): Range => ({ lo: ms, hi: ms });
  const units: Array<[string[], Range]> = [
    [['microsecond', 'microseconds', 'us', 'usec', 'usecs'], fixed(0.001)],
    [['millisecond', 'milliseconds', 'ms', 'msec', 'msecs'], fixed(1)],
    [['second', 'seconds', 's', 'sec', 'secs'], fixed(1_000)],
    [['minute', 'minutes', 'm', 'min', 'mins'], fixed(60_000)],
    [['hour', 'hours', 'h', 'hr', 'hrs'], fixed(3_600_000)],
    [['day', 'days', 'd'], { lo: DAY_MS - 3_600_000, hi: DAY_MS + 3_600_000 }], // daylight-saving days
    [['week', 'weeks', 'w'], { lo: 7 * DAY_MS - 3_600_000, hi: 7 * DAY_MS + 3_600_000 }],
    [['month', 'months', 'mon', 'mons'], { lo: 28 * DAY_MS - 3_600_000, hi: 31 * DAY_MS + 3_600_000 }],
    [['quarter'], { lo: 89 * DAY_MS - 3_600_000, hi: 92 * DAY_MS + 3_600_000 }],
    [['year', 'years', 'y', 'yr', 'yrs'], { lo: 365 * DAY_MS - 3_600_000, hi: 366 * DAY_MS + 3_600_000 }],
    [['decade', 'decades'], { lo: 3_652 * DAY_MS, hi: 3_653 * DAY_MS }],
    [['century', 'centuries'], { lo: 36_524 * DAY_MS, hi: 36_525 * DAY_MS }],
    [['millennium', 'millennia'], { lo: 365_242 * DAY_MS, hi: 365_243 * DAY_MS }],
  ];
  return new Map(units.flatMap(([spellings, range]) => spellings.map((spelling) => [spelling, range] as [string, Range])));
})();

/** An interval literal ('1 day', interval '3 months', '2 hours'::interval) as a range in milliseconds. */
function intervalRange(expr: unknown): Range | undefined {
  const node = nodeOf(expr);
  if (node?.kind === 'TypeCast') {
    const typeName = node.node['typeName'];
    const type = isObject(typeName) ? names(typeName['names']).at(-1) : undefined;
    // interval '1' day (a field in the type modifier) is not parsed here: refused as unknown.
    if (type !== 'interval' || (isObject(typeName) && typeName['typmods'] !== undefined)) return undefined;
  } else if (node?.kind !== 'A_Const') {
    return undefined;
  }
  const literal = stringConstant(expr);
  return literal === undefined ? undefined : parseInterval(literal);
}

function parseInterval(text: string): Range | undefined {
  let rest = text.trim().toLowerCase().replace(/^@\s*/, '');
  const ago = rest.endsWith(' ago');
  if (ago) rest = rest.slice(0, -4);
  if (!/^(\s*[+-]?\d+(\.\d+)?\s*[a-z]+)+\s*$/.test(rest)) return undefined;
  let lo = 0;
  let hi = 0;
  for (const [, amount, unitName] of rest.matchAll(/([+-]?\d+(?:\.\d+)?)\s*([a-z]+)/g)) {
    const unit = DURATION_UNITS.get(unitName as string);
    if (unit === undefined) return undefined;
    const n = Number(amount);
    lo += n >= 0 ? n * unit.lo : n * unit.hi;
    hi += n >= 0 ? n * unit.hi : n * unit.lo;
  }
  return ago ? { lo: -hi, hi: -lo } : { lo, hi };
}

/** 'YYYY-MM-DD', optionally with a time and an offset; anything else ('infinity', 'epoch', 'today') is unknown. */
function parseTimestamp(text: string): Range {
  const match = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ t](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(?:z|utc|[+-]\d{1,2}(?::?\d{2})?)?\s*$/i.exec(text);
  if (match === null) return UNKNOWN;
  const [, year, month, day, hour, minute, second] = match.map((part) => Number(part ?? 0));
  const ms = Date.UTC(year as number, (month as number) - 1, day, hour, minute, second);
  return Number.isFinite(ms) ? { lo: ms - DAY_MS, hi: ms + DAY_MS } : UNKNOWN;
}

/** a + b, a - b (and -a, a * b for numbers) over ranges; `operand` reads the right-hand side when it differs. */
function arithmetic(node: Record<string, unknown>, range: (expr: unknown) => Range, operand: (expr: unknown) => Range = range): Range {
  const numbers = range === operand;
  const op = names(node['name']);
  if (node['kind'] !== 'AEXPR_OP' || op.length !== 1) return UNKNOWN;
  const right = operand(node['rexpr']);
  if (node['lexpr'] === undefined) {
    if (!numbers) return UNKNOWN;
    return op[0] === '-' ? { lo: -right.hi, hi: -right.lo } : op[0] === '+' ? right : UNKNOWN;
  }
  const left = range(node['lexpr']);
  switch (op[0]) {
    case '+':
      return { lo: left.lo + right.lo, hi: left.hi + right.hi };
    case '-':
      return { lo: left.lo - right.hi, hi: left.hi - right.lo };
    case '*': {
      const products = [left.lo * right.lo, left.lo * right.hi, left.hi * right.lo, left.hi * right.hi];
      if (!numbers || products.some(Number.isNaN)) return UNKNOWN; // 0 × ∞
      return { lo: Math.min(...products), hi: Math.max(...products) };
    }
    default:
      return UNKNOWN;
  }
}

/** LEAST is at most its smallest bounded argument, GREATEST at least its largest (NULL arguments are skipped). */
function clamp(node: Record<string, unknown>, range: (expr: unknown) => Range): Range {
  const args = (Array.isArray(node['args']) ? node['args'] : []).map(range);
  if (args.length === 0) return UNKNOWN;
  const his = args.map((r) => r.hi);
  const los = args.map((r) => r.lo);
  if (node['op'] === 'IS_LEAST') return { lo: Math.min(...los), hi: Math.min(...his) };
  if (node['op'] === 'IS_GREATEST') return { lo: Math.max(...los), hi: Math.max(...his) };
  return UNKNOWN;
}

/** The number in an A_Const: integers (0 is stored as an empty object), decimals, and numeric strings ('5'). */
function constantNumber(node: Record<string, unknown>): number | undefined {
  if (isObject(node['ival'])) return Number(node['ival']['ival'] ?? 0);
  if (isObject(node['fval'])) return Number(node['fval']['fval']);
  if (isObject(node['sval'])) {
    const text = String(node['sval']['sval'] ?? '').trim();
    return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : undefined;
  }
  return undefined;
}

function checkTable(node: Record<string, unknown>, schemas: ReadonlySet<string>): Refusal | undefined {
  const relname = String(node['relname'] ?? '');
  const schema = typeof node['schemaname'] === 'string' ? node['schemaname'] : undefined;
  const catalog = typeof node['catalogname'] === 'string' ? node['catalogname'] : undefined;
  const allowed = `allowed schemas: ${[...schemas].join(', ')}`;
  if (catalog !== undefined) return `table ${catalog}.${schema ?? ''}.${relname} is not allowed: cross-database references are not supported`;
  if (schema !== undefined) return schemas.has(schema) ? undefined : `table ${schema}.${relname} is not allowed; ${allowed}`;
  // Unqualified: pg_catalog comes first in the search path, and all its tables are named pg_*.
  if (relname.startsWith('pg_')) return `table ${relname} is not allowed (system catalogs cannot be read; names starting with pg_ are refused); ${allowed}`;
  return undefined;
}

function checkColumnRef(fields: unknown, schemas: ReadonlySet<string>): Refusal | undefined {
  const list = Array.isArray(fields) ? fields : [];
  const parts = list.map((f) => (isObject(f) && isObject(f['String']) ? String(f['String']['sval']) : '*'));
  const display = parts.join('.');
  if (parts.length >= 4) return `column reference ${display} is not allowed`;
  if (parts.length === 3 && !schemas.has(parts[0] as string)) {
    return `column reference ${display} is not allowed: only ${[...schemas].join(', ')} may qualify a table name`;
  }
  const last = parts.at(-1) ?? '';
  if (parts.length >= 2 && isSuspiciousAttribute(last)) {
    return `column reference ${display} is not allowed (PostgreSQL could read it as a call to function ${last})`;
  }
  return undefined;
}

function checkIndirection(indirection: unknown): Refusal | undefined {
  for (const item of Array.isArray(indirection) ? indirection : []) {
    // Subscripts and .* are fine; (expr).name can resolve to a function call name(expr).
    if (isObject(item) && isObject(item['String'])) {
      return `field selection (...).${String(item['String']['sval'])} is not allowed (write alias.column instead)`;
    }
  }
  return undefined;
}

function checkType(parts: string[], schemas: ReadonlySet<string>, vettedRegconfig: boolean): Refusal | undefined {
  const display = parts.join('.');
  // _aclitem is aclitem[]; case folded so that a quoted "ACLITEM" cannot slip past (it names no type anyway).
  const name = (parts.at(-1) ?? '').replace(/^_+/, '').toLowerCase();
  if (parts.length === 2) {
    const schema = parts[0] as string;
    const qualifiedOk = schema === 'pg_catalog' || schemas.has(schema) || (schema === PGVECTOR_SCHEMA && PGVECTOR_TYPES.has(name));
    if (!qualifiedOk) return `type ${display} is not allowed`;
  } else if (parts.length !== 1) {
    return `type ${display} is not allowed`;
  }
  if (CATALOG_LOOKUP_TYPES.has(name)) {
    return `type ${display} is not allowed: its input looks names up in the system catalog (roles, tables, functions), which queries may not probe`;
  }
  if (name.startsWith('pg_')) {
    return `type ${display} is not allowed: system types, including the row types of the catalogs, cannot be used`;
  }
  if (name === 'xml') return `type ${display} is not allowed (XML is not supported)`;
  if (name === 'regconfig' && !vettedRegconfig) {
    return `type ${display} is allowed only as a cast of an unqualified configuration name, e.g. 'english'::regconfig`;
  }
  return undefined;
}

/** A text-search configuration named by a literal: unqualified only, so the lookup never probes other schemas. */
function checkConfigurationName(value: string): Refusal | undefined {
  return value.includes('.')
    ? `text search configuration '${abbreviate(value)}' is not allowed: name it without a schema, e.g. 'english' (a qualified name probes the catalog for schemas)`
    : undefined;
}

/** `'english'::regconfig` (not an array, not an expression): the one form of regconfig cast that is allowed. */
function isVettedRegconfigCast(node: Record<string, unknown>): boolean {
  const typeName = node['typeName'];
  if (!isObject(typeName) || typeName['arrayBounds'] !== undefined) return false;
  const parts = names(typeName['names']);
  if ((parts.at(-1) ?? '').toLowerCase() !== 'regconfig') return false;
  const literal = stringConstant(node['arg']);
  return literal !== undefined && checkConfigurationName(literal) === undefined;
}

function checkOperator(parts: string[]): Refusal | undefined {
  if (parts.length < 2) return undefined;
  const op = parts.at(-1) ?? '';
  const schema = parts[0];
  if (parts.length === 2 && (schema === 'pg_catalog' || (schema === PGVECTOR_SCHEMA && PGVECTOR_OPERATORS.has(op)))) return undefined;
  return `operator OPERATOR(${parts.join('.')}) is not allowed (operators may only be qualified with pg_catalog)`;
}

function checkCollation(parts: string[]): Refusal | undefined {
  if (parts.length <= 1 || (parts.length === 2 && parts[0] === 'pg_catalog')) return undefined;
  return `collation ${parts.join('.')} is not allowed (collations may only be qualified with pg_catalog)`;
}

function describeRefusedNode(kind: string, node: unknown): Refusal {
  const fields = isObject(node) ? node : {};
  switch (kind) {
    case 'LockingClause':
      return `${LOCK_STRENGTHS.get(String(fields['strength'])) ?? 'FOR UPDATE/SHARE'} is not allowed (it locks rows)`;
    case 'IntoClause':
      return 'SELECT INTO is not allowed (it creates a table): only SELECT queries can run';
    case 'XmlExpr':
    case 'XmlSerialize':
      return 'XML functions are not allowed';
    case 'RangeTableFunc':
      return 'XMLTABLE is not allowed';
    case 'SetToDefault':
      return 'DEFAULT is not allowed here';
    case 'MergeSupportFunc':
      return 'MERGE_ACTION() is not allowed';
  }
  if (kind.endsWith('Stmt')) {
    return `${statementName(kind, fields)} inside a query is not allowed (data-modifying WITH queries are refused): only SELECT queries can run`;
  }
  return `the SQL construct ${kind} is not allowed`;
}

/** The SQL keyword(s) a statement node stands for, e.g. DeleteStmt → DELETE, ExplainStmt + analyze → EXPLAIN ANALYZE. */
export function statementName(kind: string, node: Record<string, unknown>): string {
  switch (kind) {
    case 'VariableSetStmt':
      return String(node['kind']).startsWith('VAR_RESET') ? 'RESET' : 'SET';
    case 'TransactionStmt':
      return String(node['kind']).replace(/^TRANS_STMT_/, '').replace(/_/g, ' ');
    case 'ExplainStmt':
      return explainAnalyzes(node['options']) ? 'EXPLAIN ANALYZE' : 'EXPLAIN';
    case 'VacuumStmt':
      return node['is_vacuumcmd'] === true ? 'VACUUM' : 'ANALYZE';
    case 'GrantStmt':
      return node['is_grant'] === true ? 'GRANT' : 'REVOKE';
    case 'FetchStmt':
      return node['ismove'] === true ? 'MOVE' : 'FETCH';
    case 'CreateTableAsStmt':
      return node['objtype'] === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS';
    case 'DropStmt':
      return `DROP ${objectName(node['removeType'])}`.trim();
    case 'AlterTableStmt':
      return `ALTER ${objectName(node['objtype'])}`.trim();
    case 'CreateFunctionStmt':
      return node['is_procedure'] === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION';
  }
  const known = STATEMENT_NAMES.get(kind);
  if (known !== undefined) return known;
  // CreateForeignTableStmt → CREATE FOREIGN TABLE
  return kind.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

function explainAnalyzes(options: unknown): boolean {
  for (const option of Array.isArray(options) ? options : []) {
    const def = isObject(option) && isObject(option['DefElem']) ? option['DefElem'] : undefined;
    if (def?.['defname'] !== 'analyze') continue;
    const arg = names(def['arg'] === undefined ? [] : [def['arg']])[0];
    return arg === undefined || !['false', 'off', '0'].includes(arg.toLowerCase());
  }
  return false;
}

function objectName(objtype: unknown): string {
  return typeof objtype === 'string' ? objtype.replace(/^OBJECT_/, '').replace(/_/g, ' ') : '';
}

function isSuspiciousAttribute(name: string): boolean {
  return SUSPICIOUS_ATTRIBUTES.has(name) || SUSPICIOUS_ATTRIBUTE_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** Node kinds are the capitalised wrapper keys (SelectStmt, A_Const); field names start in lower case. */
function isNodeKind(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

function nodeOf(value: unknown): { kind: string; node: Record<string, unknown> } | undefined {
  if (!isObject(value)) return undefined;
  const [kind] = Object.keys(value);
  const node = kind === undefined ? undefined : value[kind];
  return kind !== undefined && isObject(node) ? { kind, node } : undefined;
}

/** The strings of a name list such as funcname: [{String: {sval: 'pg_catalog'}}, {String: {sval: 'now'}}]. */
function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => {
    if (isObject(item) && isObject(item['String'])) return String(item['String']['sval'] ?? '');
    return '?';
  });
}

/** The value of a string literal, possibly cast ('x', 'x'::text, date 'x'); undefined for anything else. */
function stringConstant(expr: unknown): string | undefined {
  const node = nodeOf(expr);
  if (node?.kind === 'TypeCast') return stringConstant(node.node['arg']);
  if (node?.kind !== 'A_Const' || !isObject(node.node['sval'])) return undefined;
  return String(node.node['sval']['sval'] ?? ''); // the parse tree omits an empty string's value
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function abbreviate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
