// Periods for the typed analytics tools: explicit dates, or relative names resolved against the data's own
// calendar. The anchor is the latest order date the caller can see, not the wall clock: generated or restored
// data ends when it ends, and "last quarter" must mean the last quarter of the data a manager is looking at.
// Pure functions over ISO dates (UTC, no time of day), so the golden tests can fix the anchor.

/** Relative period names a tool accepts (documented in the README and the tool schemas). */
export const RELATIVE_PERIODS = [
  'last_7_days',
  'last_30_days',
  'last_90_days',
  'last_12_months',
  'this_month',
  'mtd',
  'last_month',
  'this_quarter',
  'qtd',
  'last_quarter',
  'this_year',
  'ytd',
  'last_year',
  'same_period_last_year',
  'all_time',
] as const;

export type RelativePeriod = (typeof RELATIVE_PERIODS)[number];

/** A relative name, a calendar label ("2025", "2025-Q3", "2025-07"), or explicit inclusive dates. */
export type PeriodInput = string | { readonly from: string; readonly to: string };

export interface ResolvedPeriod {
  /** What was asked: the relative name or label, or "custom". */
  readonly name: string;
  /** First day, inclusive (YYYY-MM-DD). */
  readonly from: string;
  /** Last day, inclusive (YYYY-MM-DD). */
  readonly to: string;
  readonly days: number;
  /** The date relative names were resolved against: the latest order date the caller can see. */
  readonly anchor: string;
}

export class InvalidArgumentError extends Error {}

const DAY_MS = 86_400_000;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

function parseDate(text: string, what: string): Date {
  const date = new Date(`${text}T00:00:00Z`);
  if (!ISO_DATE.test(text) || Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== text) {
    throw new InvalidArgumentError(`${what} "${text}" is not a date: use YYYY-MM-DD`);
  }
  return date;
}

export function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function utc(year: number, month: number, day: number): Date {
  return new Date(Date.UTC(year, month, day));
}

/** The same calendar day a year earlier; 29 February becomes 28 February. */
export function minusYears(date: Date, years: number): Date {
  const shifted = utc(date.getUTCFullYear() - years, date.getUTCMonth(), date.getUTCDate());
  return shifted.getUTCMonth() === date.getUTCMonth() ? shifted : utc(date.getUTCFullYear() - years, date.getUTCMonth() + 1, 0);
}

function period(name: string, from: Date, to: Date, anchor: string): ResolvedPeriod {
  return { name, from: isoDate(from), to: isoDate(to), days: Math.round((to.getTime() - from.getTime()) / DAY_MS) + 1, anchor };
}

/**
 * Resolves a period against `anchor` (YYYY-MM-DD, the latest order date the caller sees) and `first` (the
 * earliest, for all_time). Periods that end at the anchor ("ytd", "last_30_days") include the anchor day;
 * whole-calendar periods ("last_quarter", "this_year") are whole quarters or years.
 */
export function resolvePeriod(input: PeriodInput, anchor: string, first: string = anchor): ResolvedPeriod {
  const a = parseDate(anchor, 'anchor');
  const y = a.getUTCFullYear();
  const m = a.getUTCMonth();
  const q = Math.floor(m / 3) * 3;
  if (typeof input !== 'string') {
    const from = parseDate(input.from, 'from');
    const to = parseDate(input.to, 'to');
    if (from > to) throw new InvalidArgumentError(`the period starts (${input.from}) after it ends (${input.to})`);
    return period('custom', from, to, anchor);
  }
  const name = input.trim().toLowerCase();
  const daysBack = (n: number) => period(name, new Date(a.getTime() - (n - 1) * DAY_MS), a, anchor);
  switch (name) {
    case 'last_7_days':
      return daysBack(7);
    case 'last_30_days':
      return daysBack(30);
    case 'last_90_days':
      return daysBack(90);
    case 'last_12_months':
      return period(name, new Date(minusYears(a, 1).getTime() + DAY_MS), a, anchor);
    case 'this_month':
    case 'mtd':
      return period(name, utc(y, m, 1), a, anchor);
    case 'last_month':
      return period(name, utc(y, m - 1, 1), utc(y, m, 0), anchor);
    case 'this_quarter':
    case 'qtd':
      return period(name, utc(y, q, 1), a, anchor);
    case 'last_quarter':
      return period(name, utc(y, q - 3, 1), utc(y, q, 0), anchor);
    case 'this_year':
    case 'ytd':
      return period(name, utc(y, 0, 1), a, anchor);
    case 'last_year':
      return period(name, utc(y - 1, 0, 1), utc(y - 1, 11, 31), anchor);
    case 'same_period_last_year':
      // Standing alone: the year to date, a year back (compare_periods uses it relative to its current period).
      return period(name, utc(y - 1, 0, 1), minusYears(a, 1), anchor);
    case 'all_time':
      return period(name, parseDate(first, 'first order date'), a, anchor);
  }
  const label = /^(\d{4})(?:-(?:q([1-4])|(\d{2})))?$/i.exec(name);
  if (label) {
    const year = Number(label[1]);
    if (label[2]) {
      const start = (Number(label[2]) - 1) * 3;
      return period(name.toUpperCase(), utc(year, start, 1), utc(year, start + 3, 0), anchor);
    }
    if (label[3]) {
      const month = Number(label[3]) - 1;
      if (month > 11) throw new InvalidArgumentError(`"${input}" is not a month: use YYYY-MM with a month 01-12`);
      return period(name, utc(year, month, 1), utc(year, month + 1, 0), anchor);
    }
    return period(name, utc(year, 0, 1), utc(year, 11, 31), anchor);
  }
  throw new InvalidArgumentError(
    `unknown period "${input}". Use one of ${RELATIVE_PERIODS.join(', ')}; a year ("2025"), quarter ("2025-Q3") or month ("2025-07"); or {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"}`,
  );
}

/** The period to compare `current` with: the one just before it, of the same length, or the same dates a year back. */
export function comparisonPeriod(current: ResolvedPeriod, kind: 'previous_period' | 'same_period_last_year'): ResolvedPeriod {
  const from = parseDate(current.from, 'from');
  const to = parseDate(current.to, 'to');
  if (kind === 'same_period_last_year') return period(kind, minusYears(from, 1), minusYears(to, 1), current.anchor);
  // A whole month, quarter or year is followed by the whole one before it, not just as many days.
  const wholeMonths = from.getUTCDate() === 1 && new Date(to.getTime() + DAY_MS).getUTCDate() === 1;
  if (wholeMonths) {
    const months = (to.getUTCFullYear() - from.getUTCFullYear()) * 12 + to.getUTCMonth() - from.getUTCMonth() + 1;
    return period(kind, utc(from.getUTCFullYear(), from.getUTCMonth() - months, 1), new Date(from.getTime() - DAY_MS), current.anchor);
  }
  const previousTo = new Date(from.getTime() - DAY_MS);
  return period(kind, new Date(previousTo.getTime() - (current.days - 1) * DAY_MS), previousTo, current.anchor);
}

/** "2026-10-01 to 2026-12-31 (last_quarter)". */
export function describePeriod(p: ResolvedPeriod): string {
  return `${p.from} to ${p.to}${p.name === 'custom' ? '' : ` (${p.name})`}`;
}
