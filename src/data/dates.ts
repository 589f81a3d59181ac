// The generator's dates, apart from it: checking an end date (every seed setting, before anything is opened)
// needs them, and the generator itself loads faker, which a server starting on a seeded database never uses.

export const FIRST_DAY = Date.UTC(2020, 0, 1);

export const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Today as YYYY-MM-DD in UTC. */
export function todayUtc(now = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/** Parses a YYYY-MM-DD end date to its UTC midnight, or says what is wrong with it. */
export function parseEndDate(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : NaN;
  if (!match || Number.isNaN(ms) || isoDate(ms) !== text.trim()) throw new Error(`end date must be a date like 2026-06-30 (got "${text}")`);
  if (ms < FIRST_DAY) throw new Error(`end date must be 2020-01-01 or later: the data starts then (got ${text})`);
  return ms;
}
