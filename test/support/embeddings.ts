// The local model's product embeddings, computed once per test run and reused by every test database. Embedding
// the 608-product catalog takes 10–20 s on this machine; a database that already holds current embeddings lets
// a spawned server start at once (it checks and finds nothing to do), which is most of the suite's time
// otherwise. The vectors are the provider's own, keyed by its model name (which fingerprints the catalog it was
// fitted on) and the document's full content, so a cached vector is always the one the provider would compute.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ForwardingEmbeddingProvider, type ProductDocument } from '../../src/search/provider.js';
import { createEmbeddingProvider, embeddingSettings } from '../../src/search/settings.js';
import { LocalEmbeddingProvider } from '../../src/search/local.js';
import { withFileLock } from './file-lock.js';

function cacheDir(): string {
  return path.join(process.env.ZAVA_TEST_CACHE_DIR ?? path.join(tmpdir(), 'zava-test-cache'), 'embeddings');
}

function documentKey(model: string, doc: ProductDocument): string {
  return createHash('sha256')
    .update(JSON.stringify([model, doc.sku, doc.name, doc.description, doc.typeName, doc.categoryName]))
    .digest('base64url');
}

/** The server's default provider (local model, default settings), with its document vectors cached on disk. */
export class CachedLocalProvider extends ForwardingEmbeddingProvider {
  private vectors: Map<string, number[]> | undefined;
  private loadedFor: string | undefined;

  constructor() {
    super(createEmbeddingProvider(embeddingSettings({})));
  }

  override   async embedDocuments(documents: readonly ProductDocument[]): Promise<number[][]> {
    const model = this.model;
    const missing = (vectors: Map<string, number[]>) => documents.filter((doc) => !vectors.has(documentKey(model, doc)));
    let vectors = this.load(model);
    if (missing(vectors).length > 0) {
      // Test files running side by side: one computes, the others then read its vectors from the file.
      await withFileLock(`${this.file(model)}.lock`, async () => {
        vectors = this.load(model, { again: true });
        const needed = missing(vectors);
        if (needed.length === 0) return;
        const computed = await this.inner.embedDocuments(needed);
        needed.forEach((doc, i) => vectors.set(documentKey(model, doc), computed[i]!));
        this.save(model, vectors);
      });
    }
    return documents.map((doc) => vectors.get(documentKey(model, doc))!);
  }

  private file(model: string): string {
    return path.join(cacheDir(), `${createHash('sha256').update(model).digest('hex').slice(0, 16)}.json`);
  }

  private load(model: string, options: { again?: boolean } = {}): Map<string, number[]> {
    if (this.vectors && this.loadedFor === model && !options.again) return this.vectors;
    let entries: [string, number[]][] = [];
    try {
      entries = JSON.parse(readFileSync(this.file(model), 'utf8')) as [string, number[]][];
    } catch {
      // no cache yet (or a torn one): compute
    }
    this.vectors = new Map(entries);
    this.loadedFor = model;
    return this.vectors;
  }

  private save(model: string, vectors: Map<string, number[]>): void {
    const file = this.file(model);
    mkdirSync(path.dirname(file), { recursive: true });
    const draft = `${file}.${process.pid}.tmp`;
    writeFileSync(draft, JSON.stringify([...vectors]));
    renameSync(draft, file); // whole or not at all, for the next test file to read
  }
}

/** The local model fitted on `catalog` (256 dimensions): a query's cosine with each product, in catalog order. */
export function localCosines(catalog: readonly ProductDocument[]): (query: string) => number[] {
  const model = new LocalEmbeddingProvider(256);
  model.fit(catalog);
  const fitted = model.fittedModel!;
  const documents = catalog.map((doc) => fitted.embedDocument(doc));
  return (query) => {
    const q = fitted.embedQuery(query);
    return documents.map((doc) => doc.reduce((sum, x, i) => sum + x * q[i]!, 0));
  };
}
