// Argument completion (completion/complete) for the prompts and the schema resource template: store, category,
// product type, period and table names, from the database and limited to the caller's identity (a store
// manager is offered their own store only, so completion never lists a store the tools would refuse).
import type { Database, Identity } from '../db/types.js';
import { RELATIVE_PERIODS } from './periods.js';
import { validTableNames } from './schema.js';

export type CompletionKind = 'store' | 'category' | 'product_type' | 'period' | 'table';

/** Most values one completion answers (the protocol's own limit is 100). */
export const MAX_COMPLETIONS = 100;

/** Names starting with `prefix` first, then names containing it; case-insensitive. */
export function rankCompletions(names: readonly string[], prefix: string): string[] {
  const key = prefix.trim().toLowerCase();
  const starts = names.filter((name) => name.toLowerCase().startsWith(key));
  const contains = names.filter((name) => !name.toLowerCase().startsWith(key) && name.toLowerCase().includes(key));
  return [...new Set([...starts, ...contains])];
}

export async function completionValues(db: Database, identity: Identity, kind: CompletionKind, prefix: string): Promise<string[]> {
  switch (kind) {
    case 'period':
      return rankCompletions([...RELATIVE_PERIODS], prefix);
    case 'table':
      return rankCompletions(validTableNames(), prefix);
    default: {
      const sql = {
        store:
          identity.storeIds === 'all'
            ? 'SELECT store_name FROM retail.stores ORDER BY store_id'
            : `SELECT store_name FROM retail.stores WHERE store_id = ANY ($1::int[]) ORDER BY store_id`,
        category: 'SELECT category_name FROM retail.categories ORDER BY category_name',
        product_type: 'SELECT DISTINCT type_name FROM retail.product_types ORDER BY type_name',
      }[kind];
      const params = kind === 'store' && identity.storeIds !== 'all' ? [`{${identity.storeIds.join(',')}}`] : [];
      const { rows } = await db.withIdentity(identity, (session) => session.query(sql, params, { maxRows: 10_000 }));
      return rankCompletions(rows.map((row) => String(row[0])), prefix);
    }
  }
}
