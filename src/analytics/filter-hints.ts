// When a query finds nothing because a filter names a store, category or product type that does not exist
// (`WHERE store_name = 'Seattle'`: the store is "Zava Retail Seattle"), the empty answer says so and lists the
// close valid values, so a model corrects the literal instead of concluding there were no sales.
//
// The literals come from PostgreSQL's own parser (the guard has already parsed and accepted the statement):
// every comparison of a name column with a string constant — `=`, `<>`, IN lists, LIKE and ILIKE, on either
// side, through casts — wherever it stands in the statement (WHERE, JOIN ... ON, subqueries, CTEs). Only the
// bare column names below count, so a column of the same name from a CTE is judged by the same values, which
// is what a model means by it. Nothing here runs SQL.
import { parseSync } from 'libpg-query';

/** The valid values of each name column a hint can be given for (all of them visible to every identity). */
export type FilterValues = Readonly<Record<string, readonly string[]>>;

export const HINTED_COLUMNS = ['store_name', 'category_name', 'type_name'] as const;

interface Comparison {
  readonly column: string;
  readonly literal: string;
  readonly operator: 'equals' | 'like' | 'ilike';
}

type Node = Record<string, unknown>;

/** The first string field of a parse node (libpg-query wraps values as { String: { sval } } and { sval: { sval } }). */
function stringConstant(node: unknown): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const n = node as Node;
  if (n.TypeCast) return stringConstant((n.TypeCast as Node).arg);
  const constant = n.A_Const as Node | undefined;
  const sval = constant?.sval as Node | undefined;
  return typeof sval?.sval === 'string' ? sval.sval : undefined;
}

function columnName(node: unknown): string | undefined {
  const ref = (node as Node | undefined)?.ColumnRef as Node | undefined;
  const fields = ref?.fields as Node[] | undefined;
  const last = fields?.[fields.length - 1]?.String as Node | undefined;
  return typeof last?.sval === 'string' ? last.sval : undefined;
}

function operatorOf(expr: Node): Comparison['operator'] | undefined {
  const name = ((expr.name as Node[] | undefined)?.[0]?.String as Node | undefined)?.sval;
  switch (expr.kind) {
    case 'AEXPR_OP':
      return name === '=' ? 'equals' : undefined;
    case 'AEXPR_IN':
      return name === '=' ? 'equals' : undefined; // IN; NOT IN ('<>') excludes, which cannot cause an empty answer
    case 'AEXPR_LIKE':
      return name === '~~' ? 'like' : undefined;
    case 'AEXPR_ILIKE':
      return name === '~~*' ? 'ilike' : undefined;
    default:
      return undefined;
  }
}

/** Every comparison of a hinted column with string constants, anywhere in the parse tree. */
export function comparisonsIn(sql: string, columns: readonly string[] = HINTED_COLUMNS): Comparison[] {
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch {
    return [];
  }
  const found: Comparison[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const expr = (node as Node).A_Expr as Node | undefined;
    const operator = expr ? operatorOf(expr) : undefined;
    if (expr && operator) {
      for (const [columnSide, valueSide] of [
        [expr.lexpr, expr.rexpr],
        [expr.rexpr, expr.lexpr],
      ] as const) {
        const column = columnName(columnSide);
        if (!column || !columns.includes(column)) continue;
        const items = ((valueSide as Node | undefined)?.List as Node | undefined)?.items as unknown[] | undefined;
        for (const value of items ?? [valueSide]) {
          const literal = stringConstant(value);
          if (literal !== undefined) found.push({ column, literal, operator });
        }
      }
    }
    for (const child of Object.values(node)) visit(child);
  };
  visit(tree);
  return found;
}

/** LIKE pattern → anchored regular expression (% any run, _ one character, backslash escapes). */
function likePattern(pattern: string, caseInsensitive: boolean): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) source += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (ch === '%') source += '.*';
    else if (ch === '_') source += '.';
    else source += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'is' : 's');
}

function matches(comparison: Comparison, value: string): boolean {
  if (comparison.operator === 'equals') return value === comparison.literal;
  return likePattern(comparison.literal, comparison.operator === 'ilike').test(value);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The valid values closest to a literal: those containing its words first, then the nearest by spelling. */
export function closestValues(literal: string, values: readonly string[], limit = 5): string[] {
  const wanted = literal.replace(/[%_]/g, ' ').trim().toLowerCase();
  const words = wanted.split(/\s+/).filter((w) => w.length > 1);
  const scored = values.map((value) => {
    const lower = value.toLowerCase();
    const shared = words.filter((w) => lower.includes(w)).length;
    return { value, shared, distance: editDistance(wanted, lower) };
  });
  const containing = scored.filter((s) => s.shared > 0).sort((a, b) => b.shared - a.shared || a.distance - b.distance);
  const near = scored
    .filter((s) => s.shared === 0 && s.distance <= Math.max(2, Math.floor(wanted.length / 3)))
    .sort((a, b) => a.distance - b.distance);
  return [...containing, ...near].slice(0, limit).map((s) => s.value);
}

/**
 * A hint for an empty answer, or undefined when every hinted literal matches some valid value (then the
 * filters are right and the data is simply not there).
 */
export function filterHint(sql: string, values: FilterValues): string | undefined {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const comparison of comparisonsIn(sql, Object.keys(values))) {
    const key = `${comparison.column}\u0000${comparison.operator}\u0000${comparison.literal}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const valid = values[comparison.column] ?? [];
    if (valid.length === 0 || valid.some((value) => matches(comparison, value))) continue;
    const close = closestValues(comparison.literal, valid);
    const shown = close.length > 0 ? close : valid.length <= 10 ? valid : [];
    const operator = comparison.operator === 'equals' ? '=' : comparison.operator === 'like' ? 'LIKE' : 'ILIKE';
    problems.push(
      `${comparison.column} ${operator} '${comparison.literal}' matches no ${comparison.column.replace('_name', '')}` +
        (shown.length > 0 ? `; close valid values: ${shown.map((v) => `'${v}'`).join(', ')}` : ''),
    );
  }
  if (problems.length === 0) return undefined;
  return `${problems.join('. ')}. Use the exact values from get_multiple_table_schemas.`;
}
