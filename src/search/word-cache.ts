// The bound of the search model's per-word caches (word analyses, forms, corrections, WordNet index lookups and
// synsets). Queries bring words of their own, so without a bound a stream of distinct made-up words would grow
// them forever (in every embedding worker thread); past the bound a cache starts over. They only save work:
// answers do not depend on them. 50,000 entries is several times what the catalog's vocabulary and a day of real
// queries use, and a few MB per cache.
export const MAX_CACHED_WORDS = 50_000;

/** Sets `key` in `cache`, emptying the cache first when it is full. */
export function remember<K, V>(cache: Map<K, V>, key: K, value: V): void {
  if (cache.size >= MAX_CACHED_WORDS) cache.clear();
  cache.set(key, value);
}
