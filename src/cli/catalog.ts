// `zava-mcp catalog import <file.json> [--replace [--with-orders]]`: load a retailer's own catalog (documented
// layout or the reference system's product_data.json) and embed it, in one transaction.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../infra/config.js';
import { DataLoadError } from '../infra/errors.js';
import { consoleProgress } from '../infra/progress.js';
import { prepareSchema } from './migrate.js';
import { importCatalog, readCatalogFile, type CatalogImportReport } from '../search/catalog-import.js';
import { createEmbeddingProvider } from '../search/settings.js';
import { withDatabase } from './db.js';

export interface CatalogImportFlags {
  replace?: boolean | undefined;
  'with-orders'?: boolean | undefined;
}

export async function runCatalogImport(
  config: Config,
  file: string | undefined,
  out: NodeJS.WritableStream = process.stderr,
  flags: CatalogImportFlags = {},
): Promise<CatalogImportReport> {
  if (!file) throw new DataLoadError('catalog import needs a file: zava-mcp catalog import <file.json>');
  if (flags['with-orders'] && !flags.replace) throw new DataLoadError('--with-orders only goes with --replace');
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a file');
  } catch (error) {
    throw new DataLoadError(`cannot read ${file}: ${(error as Error).message}`);
  }
  // Check the whole file (streamed: a reference file is ~20 MB of vectors) and the provider configuration before
  // opening the database; the vectors are read a second time inside the transaction.
  const plan = await readCatalogFile(file, path.basename(file));
  const provider = createEmbeddingProvider();
  return withDatabase(config, async (db) => {
    await prepareSchema(db, config);
    const report = await importCatalog(db, plan, {
      provider,
      progress: consoleProgress(),
      replace: flags.replace === true,
      withOrders: flags['with-orders'] === true,
    });
    const removed = report.removed.products
      ? ` Removed ${report.removed.products} products not in the file` +
        (report.removed.orders ? `, with ${report.removed.orders} orders (${report.removed.orderLines} order lines) that held them` : '') +
        '.'
      : '';
    const stock = report.stockLevels
      ? report.stores
        ? ` Stock levels of ${report.stockLevels} products set in ${report.stores} stores.`
        : ` Stock levels of ${report.stockLevels} products kept for the stores a first run creates.`
      : '';
    out.write(
      `${db.location}: imported ${file}: ` +
        `${report.productsInserted} new and ${report.productsUpdated} updated products, ` +
        `${report.categories} new categories, ${report.types} new product types; embedded ${report.embedded} with ${report.model}` +
        (report.importedEmbeddings ? `; stored the file's ${report.importedEmbeddings} text-embedding-3-small embeddings` : '') +
        `.${stock}${removed}${report.layout === 'reference' ? ' (The reference product_data.json layout.)' : ''}\n`,
    );
    return report;
  });
}
