// The embedding-provider contract every provider (local, openai, azure-openai, ollama) implements.
import { ZavaError } from '../infra/errors.js';

export type ProviderKind = 'local' | 'openai' | 'azure-openai' | 'ollama';
export const PROVIDER_KINDS: readonly ProviderKind[] = ['local', 'openai', 'azure-openai', 'ollama'];

/** A catalog product as the search index sees it. */
export interface ProductDocument {
  readonly productId: number;
  readonly sku: string;
  readonly name: string;
  readonly description: string;
  readonly typeName: string;
  readonly categoryName: string;
}

export interface EmbeddingProvider {
  readonly kind: ProviderKind;
  /**
   * The model name stored with every embedding. Query and stored embeddings must come from the same model.
   * The local provider's name includes a fingerprint of the catalog it was fitted on.
   */
  readonly model: string;
  readonly dimensions: number;
  /** How many documents one embedding request carries. */
  readonly batchSize: number;
  /** Whether the provider needs the whole catalog (fit) before it can embed. */
  readonly needsCorpus: boolean;
  /**
   * Fits the provider to the catalog (local provider only; others ignore it). The worker pool fits its workers
   * asynchronously; `model` names the new fit once the promise resolves.
   */
  fit(corpus: readonly ProductDocument[]): void | Promise<void>;
  embedDocuments(documents: readonly ProductDocument[]): Promise<number[][]>;
  /** Embeds a query. Providers that queue work (the worker pool) share it fairly by `options.key`. */
  embedQuery(text: string, options?: EmbedQueryOptions): Promise<number[]>;
  /**
   * The query's embedding and the share of its words the model understands (0..1), which search uses to
   * calibrate similarity: a query the model mostly cannot read must not match anything confidently. Only the
   * local model knows its vocabulary; providers without it omit this (coverage is then taken as 1).
   */
  embedQueryWithCoverage?(text: string, options?: EmbedQueryOptions): Promise<{ vector: number[]; coverage: number }>;
  /** Releases threads or connections the provider holds (the worker pool); absent when there are none. */
  close?(): Promise<void>;
}

export interface EmbedQueryOptions {
  /** Who asks (the identity's user id): queued queries are taken from each key in turn. */
  readonly key?: string | undefined;
  /** Aborted when the caller is gone: a query still waiting for a worker leaves the queue. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * A provider that hands everything to another one; a subclass overrides what it changes (the breaker of hosted
 * providers, a test's cache of document vectors). `embedQueryWithCoverage` is not forwarded: a subclass that
 * keeps it says so, since a provider without it is calibrated differently.
 */
export class ForwardingEmbeddingProvider implements EmbeddingProvider {
  constructor(protected readonly inner: EmbeddingProvider) {}

  get kind(): ProviderKind {
    return this.inner.kind;
  }
  get model(): string {
    return this.inner.model;
  }
  get dimensions(): number {
    return this.inner.dimensions;
  }
  get batchSize(): number {
    return this.inner.batchSize;
  }
  get needsCorpus(): boolean {
    return this.inner.needsCorpus;
  }

  fit(corpus: readonly ProductDocument[]): void | Promise<void> {
    return this.inner.fit(corpus);
  }

  embedDocuments(documents: readonly ProductDocument[]): Promise<number[][]> {
    return this.inner.embedDocuments(documents);
  }

  embedQuery(text: string, options?: EmbedQueryOptions): Promise<number[]> {
    return this.inner.embedQuery(text, options);
  }

  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

/** A provider failed: bad configuration, an unreachable endpoint, or an error answer after retries. */
export class EmbeddingError extends ZavaError {
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('embedding_failed', message, options);
    this.status = options?.status;
  }
}

/** Query and stored embeddings come from different models: search refuses instead of mixing them. */
export class EmbeddingModelMismatchError extends ZavaError {
  constructor(message: string) {
    super('embedding_model_mismatch', message);
  }
}

/** The text remote models embed for a product: name, where it sits in the catalog, and its description. */
export function documentText(doc: ProductDocument): string {
  return `${doc.name}. ${doc.typeName} (${doc.categoryName}). ${doc.description}`;
}

export function l2Normalize(values: number[]): number[] {
  let norm = 0;
  for (const v of values) norm += v * v;
  norm = Math.sqrt(norm);
  if (norm === 0) return values;
  return values.map((v) => v / norm);
}
