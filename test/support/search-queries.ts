// The search queries the scan-equivalence suites and `bench:search -- --compare-scans` run through two statements:
// a few everyday ones, and the labelled queries of every evaluation set in eval/ (a new set is added here once).
import { readFileSync } from 'node:fs';

export const SAMPLE_QUERIES = ['containers for paint', '15 amp circuit breaker', 'LED light bulbs for kitchen ceiling', 'waterproof electrical box for outdoor use', 'cordless drill', 'HT-HAM-003'];

const LABELLED_SETS = ['search-queries.json', 'search-queries-heldout.json', 'search-queries-heldout-2.json', 'search-queries-heldout-3.json', 'search-queries-heldout-4.json'];

/** Every `every`-th labelled query of each evaluation set (1: all of them), set by set. */
export function labelledQueries(every = 1): string[] {
  return LABELLED_SETS.flatMap((file) =>
    (JSON.parse(readFileSync(new URL(`../../../eval/${file}`, import.meta.url), 'utf8')) as { queries: { query: string }[] }).queries
      .filter((_, i) => i % every === 0)
      .map((q) => q.query),
  );
}
