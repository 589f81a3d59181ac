// `zava-mcp catalog import <file.json>`: load a retailer's own catalog and embed it, in one transaction.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../infra/config.js';
import { DataLoadError } from '../infra/errors.js';
import { consoleProgress } from '../infra/progress.js';
import { prepareSchema } from './migrate.js';
import { importCatalog, parseCatalogFile, type CatalogImportReport } from '../search/catalog-import.js';
import { createEmbeddingProvider } from '../search/settings.js';
import { withDatabase } from './db.js';

export async function runCatalogImport(
  config: Config,
  file: string | undefined,
  out: NodeJS.WritableStream = process.stderr,
): Promise<CatalogImportReport> {
  if (!file) throw new DataLoadError('catalog import needs a file: zava-mcp catalog import <file.json>');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataLoadError(`cannot read ${file}: ${(error as Error).message}`);
  }
  // Validate the whole file and the provider configuration before opening the database.
  const catalog = parseCatalogFile(text, path.basename(file));
  const provider = createEmbeddingProvider();
  return withDatabase(config, async (db) => {
    await prepareSchema(db, config);
    const report = await importCatalog(db, catalog, { provider, progress: consoleProgress() });
    out.write(
      `${db.location}: imported ${file}: ${report.productsInserted} new and ${report.productsUpdated} updated products, ` +
        `${report.categories} new categories, ${report.types} new product types; embedded ${report.embedded} with ${report.model}.\n`,
    );
    return report;
  });
}
