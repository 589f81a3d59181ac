// `zava-mcp embeddings rebuild [--force]`: (re-)embed the catalog with the configured provider
// (ZAVA_EMBEDDING_PROVIDER), batched, one transaction per batch, resumable after an interruption.
import type { Config } from '../infra/config.js';
import { consoleProgress } from '../infra/progress.js';
import { prepareSchema } from './migrate.js';
import { createEmbeddingProvider } from '../search/settings.js';
import { rebuildEmbeddings, storedModels, type RebuildReport } from '../search/store.js';
import { parseWholeNumber, withDatabase } from './db.js';

export interface EmbeddingsRebuildFlags {
  /** Re-embed every product, even those already current. */
  force?: boolean | undefined;
  /** Products per transaction (default: the provider's batch size). */
  'batch-size'?: string | undefined;
}

export async function runEmbeddingsRebuild(
  config: Config,
  flags: EmbeddingsRebuildFlags = {},
  out: NodeJS.WritableStream = process.stderr,
): Promise<RebuildReport> {
  const batchSize = parseWholeNumber('--batch-size', flags['batch-size']);
  const provider = createEmbeddingProvider(); // configuration errors before touching the database
  return withDatabase(config, async (db) => {
    await prepareSchema(db, config);
    const report = await rebuildEmbeddings(db, {
      provider,
      progress: consoleProgress(),
      force: flags.force === true,
      ...(batchSize !== undefined ? { batchSize } : {}),
    });
    const models = await storedModels((sql, params) => db.ownerQuery(sql, params));
    out.write(
      report.embedded === 0
        ? `${db.location}: all ${report.products} products already have ${report.model} embeddings; nothing to do (use --force to re-embed).\n`
        : `${db.location}: embedded ${report.embedded} of ${report.products} products with ${report.model} (${report.dimensions} dimensions) in ${(report.ms / 1000).toFixed(1)} s.\n`,
    );
    out.write(`Stored: ${models.map((m) => `${m.model} × ${m.products}`).join(', ') || 'none'}\n`);
    return report;
  });
}
