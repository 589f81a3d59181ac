// `zava-mcp catalog import <file.json>`: a retailer's own catalog (the documented JSON shape: categories →
// types → products {sku?, name, description, price}) merged into the database and embedded, all in one owner
// transaction: an invalid file is refused with the line and field at fault, and a failure at any step (the
// embedding provider included) leaves the database as it was.
import { createHash } from 'node:crypto';
import { parseCatalog, type Catalog } from '../data/catalog.js';
import { DataLoadError } from '../infra/errors.js';
import { silentProgress, type Progress } from '../infra/progress.js';
import type { ManagedDatabase } from '../db/types.js';
import type { EmbeddingProvider } from './provider.js';
import { createEmbeddingProvider } from './settings.js';
import { noteEmbeddingsChanged, planEmbeddings, storeEmbeddings, type QueryFn } from './store.js';

/** 1-based line of the value at `path` in JSON text, or undefined if it cannot be found. */
export function lineOfJsonPath(text: string, path: readonly (string | number)[]): number | undefined {
  let pos = 0;
  const ws = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const skipString = () => {
    pos++;
    while (pos < text.length && text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1;
    pos++;
  };
  const readString = () => {
    const start = pos;
    skipString();
    try {
      return JSON.parse(text.slice(start, pos)) as string;
    } catch {
      return '';
    }
  };
  const skipValue = (): void => {
    ws();
    const c = text[pos];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      pos++;
      ws();
      if (text[pos] === close) {
        pos++;
        return;
      }
      for (;;) {
        if (c === '{') {
          ws();
          skipString();
          ws();
          pos++; // ':'
        }
        skipValue();
        ws();
        if (text[pos] === ',') {
          pos++;
          continue;
        }
        pos++;
        return;
      }
    }
    while (pos < text.length && !/[\s,\]}]/.test(text[pos]!)) pos++;
  };
  const lineAt = (p: number) => text.slice(0, p).split('\n').length;
  const descend = (depth: number): number | undefined => {
    ws();
    if (depth === path.length) return lineAt(pos);
    const key = path[depth];
    const c = text[pos];
    if (c === '{') {
      pos++;
      for (;;) {
        ws();
        if (text[pos] !== '"') return lineAt(pos);
        const keyStart = pos;
        const name = readString();
        ws();
        pos++;
        if (name === String(key)) {
          if (depth + 1 === path.length) return lineAt(keyStart);
          return descend(depth + 1);
        }
        skipValue();
        ws();
        if (text[pos] !== ',') return lineAt(pos);
        pos++;
      }
    }
    if (c === '[') {
      pos++;
      for (let i = 0; ; i++) {
        ws();
        if (i === key) return descend(depth + 1);
        skipValue();
        ws();
        if (text[pos] !== ',') return lineAt(pos);
        pos++;
      }
    }
    return lineAt(pos);
  };
  try {
    return descend(0);
  } catch {
    return undefined;
  }
}

/** parseCatalog with the line (and field) of the first problem in the message. */
export function parseCatalogFile(text: string, source: string): Catalog {
  try {
    JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /position (\d+)/.exec(message);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    throw new DataLoadError(`${source}${line ? `:${line}` : ''}: not valid JSON: ${message}`);
  }
  try {
    return parseCatalog(text, source);
  } catch (error) {
    if (!(error instanceof DataLoadError)) throw error;
    // "source: categories.0.types.1.products.2.price: message" → add the line of that field.
    const rest = error.message.slice(source.length + 2);
    const match = /^([\w.]+): (.*)$/s.exec(rest);
    if (match) {
      const pathParts = match[1]!.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const line = lineOfJsonPath(text, pathParts);
      throw new DataLoadError(`${source}${line ? `:${line}` : ''}: field ${match[1]}: ${match[2]}`);
    }
    const dup = /duplicate (SKU (\S+)|product name "(.*)")/.exec(rest);
    if (dup) {
      const needle = dup[2] ? `"${dup[2]}"` : `"${dup[3]}"`;
      const index = text.lastIndexOf(needle);
      const line = index >= 0 ? text.slice(0, index).split('\n').length : undefined;
      throw new DataLoadError(`${source}${line ? `:${line}` : ''}: ${rest}`);
    }
    throw error;
  }
}

export interface CatalogImportReport {
  readonly categories: number;
  readonly types: number;
  readonly productsInserted: number;
  readonly productsUpdated: number;
  readonly embedded: number;
  readonly model: string;
}

const GROSS_MARGIN_PERCENT = 33;

function importSku(category: string, type: string, name: string): string {
  return `IMP-${createHash('sha256').update(`${category}\n${type}\n${name}`).digest('hex').slice(0, 10).toUpperCase()}`;
}

/**
 * Merges a catalog into the database: categories and types by name, products by SKU (a product without a SKU
 * gets a stable one derived from its category, type and name), then embeds every new or changed product —
 * all in one transaction.
 */
export async function importCatalog(
  db: ManagedDatabase,
  catalog: Catalog,
  options: { provider?: EmbeddingProvider; progress?: Progress } = {},
): Promise<CatalogImportReport> {
  const provider = options.provider ?? createEmbeddingProvider();
  const progress = options.progress ?? silentProgress;
  const rows: { category: string; type: string; sku: string; name: string; description: string; price: string; cost: string }[] = [];
  for (const category of catalog.categories) {
    for (const type of category.types) {
      for (const product of type.products) {
        const cents = Math.round(product.price * 100);
        rows.push({
          category: category.name,
          type: type.name,
          sku: product.sku ?? importSku(category.name, type.name, product.name),
          name: product.name,
          description: product.description,
          price: (cents / 100).toFixed(2),
          cost: (Math.round((cents * (100 - GROSS_MARGIN_PERCENT)) / 100) / 100).toFixed(2),
        });
      }
    }
  }
  try {
    return await db.withAdminTransaction(async (session) => {
      const query: QueryFn = (sql, params) => session.query(sql, params ?? []);
      progress.step(`Importing ${rows.length} products`);
      const json = JSON.stringify(rows);
      const categories = await query(
        `INSERT INTO retail.categories (category_name)
         SELECT DISTINCT category FROM json_to_recordset($1::json) AS x(category text)
         ON CONFLICT (category_name) DO NOTHING RETURNING category_id`,
        [json],
      );
      const types = await query(
        `INSERT INTO retail.product_types (category_id, type_name)
         SELECT DISTINCT c.category_id, x.type FROM json_to_recordset($1::json) AS x(category text, type text)
           JOIN retail.categories c ON c.category_name = x.category
         ON CONFLICT (category_id, type_name) DO NOTHING RETURNING type_id`,
        [json],
      );
      const products = await query(
        `INSERT INTO retail.products (sku, product_name, category_id, type_id, cost, base_price, gross_margin_percent, product_description)
         SELECT x.sku, x.name, c.category_id, t.type_id, x.cost::numeric, x.price::numeric, ${GROSS_MARGIN_PERCENT}, x.description
           FROM json_to_recordset($1::json) AS x(category text, type text, sku text, name text, description text, price text, cost text)
           JOIN retail.categories c ON c.category_name = x.category
           JOIN retail.product_types t ON t.category_id = c.category_id AND t.type_name = x.type
         ON CONFLICT (sku) DO UPDATE
            SET product_name = EXCLUDED.product_name, category_id = EXCLUDED.category_id, type_id = EXCLUDED.type_id,
                cost = EXCLUDED.cost, base_price = EXCLUDED.base_price, product_description = EXCLUDED.product_description
         RETURNING (xmax = 0) AS inserted`,
        [json],
      );
      const inserted = products.rows.filter((r) => r[0] === true).length;
      // Embed new and changed products (the local provider refits on the merged catalog, so it re-embeds all).
      const plan = await planEmbeddings(query, provider);
      let embedded = 0;
      for (let i = 0; i < plan.pending.length; i += provider.batchSize) {
        const batch = plan.pending.slice(i, i + provider.batchSize);
        await storeEmbeddings(query, db.hasVector, provider, batch);
        embedded += batch.length;
        progress.update(`Embedding with ${plan.model}`, embedded, plan.pending.length);
      }
      await session.exec('ANALYZE retail.products, retail.product_description_embeddings');
      progress.done(`Imported ${rows.length} products (${inserted} new), embedded ${embedded}`);
      return {
        categories: categories.rowCount,
        types: types.rowCount,
        productsInserted: inserted,
        productsUpdated: rows.length - inserted,
        embedded,
        model: plan.model,
      };
    });
  } finally {
    // Committed or rolled back: cached model checks are void either way.
    noteEmbeddingsChanged();
  }
}
