// Hosted embedding providers. OpenAI and Azure OpenAI go through the official `openai` SDK (`OpenAI` and
// `AzureOpenAI` clients: POST {base}/embeddings, and {endpoint}/openai/deployments/{deployment}/embeddings?
// api-version=… with an `api-key` header); Ollama has its own HTTP API (POST {host}/api/embed) and is called with
// fetch. All three share batching, one retry policy (exponential backoff with jitter on 429, 408 and 5xx,
// honouring Retry-After / Retry-After-Ms, and on connection failures and timeouts), a per-request timeout and
// clear errors. The SDK's own retries are turned off (maxRetries 0) so ZAVA_EMBEDDING_MAX_RETRIES and
// ZAVA_EMBEDDING_RETRY_BASE_MS mean the same thing for every provider.
import { setTimeout as sleep } from 'node:timers/promises';
import type OpenAI from 'openai';
import type { AzureOpenAI, ClientOptions } from 'openai';
import { type EmbeddingProvider, EmbeddingError, type ProductDocument, type ProviderKind, documentText, l2Normalize } from './provider.js';

export interface HttpOptions {
  readonly timeoutMs: number;
  readonly maxRetries: number;
  /** First backoff delay; doubles each retry (with jitter), capped at 20 s. */
  readonly retryBaseMs: number;
}

export const DEFAULT_HTTP_OPTIONS: HttpOptions = { timeoutMs: 30_000, maxRetries: 4, retryBaseMs: 500 };
const MAX_WAIT_MS = 20_000;

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.search = u.search.replace(/(api[-_]?key=)[^&]+/i, '$1***');
    return u.toString();
  } catch {
    return url;
  }
}

function retryAfterMs(headers: { get(name: string): string | null } | undefined): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const header = headers?.get('retry-after');
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** What one failed attempt was, whichever client made it. */
type Failure =
  | { readonly kind: 'http'; readonly status: number; readonly detail: string; readonly retryAfterMs: number | undefined }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'network'; readonly code: string };

/** An HTTP error answer from the fetch-based client (Ollama). */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: Headers,
  ) {
    super(`HTTP ${status}`);
  }
}

function errorDetail(body: unknown, fallback: string): string {
  if (typeof body === 'string') {
    try {
      return errorDetail(JSON.parse(body), body.slice(0, 300));
    } catch {
      return body.slice(0, 300) || fallback;
    }
  }
  const error = (body as { error?: unknown } | undefined)?.error ?? body;
  if (typeof error === 'string') return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : fallback;
}

function networkCode(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[]; cause?: { code?: string } } }).cause;
  return cause?.code ?? cause?.errors?.find((e) => e.code)?.code ?? cause?.cause?.code ?? cause?.message ?? (error as Error).message;
}

/** The openai SDK, loaded on first use: about 80 ms of every start that only a hosted provider needs. */
let openAiSdk: typeof import('openai') | undefined;

async function loadOpenAiSdk(): Promise<typeof import('openai')> {
  return (openAiSdk ??= await import('openai'));
}

function classify(error: unknown): Failure | undefined {
  // The SDK's errors exist only once it is loaded, which a request through it has done.
  const OpenAI = openAiSdk?.default;
  if (OpenAI && error instanceof OpenAI.APIConnectionTimeoutError) return { kind: 'timeout' };
  if (OpenAI && error instanceof OpenAI.APIConnectionError) {
    // The SDK reports a fetch abort of its own timer as a timeout; anything else is a connection failure.
    return /timed? ?out/i.test(`${error.message} ${String(error.cause)}`) ? { kind: 'timeout' } : { kind: 'network', code: networkCode(error) };
  }
  if (OpenAI && error instanceof OpenAI.APIError && typeof error.status === 'number') {
    return { kind: 'http', status: error.status, detail: errorDetail(error.error, error.message), retryAfterMs: retryAfterMs(error.headers) };
  }
  if (error instanceof HttpFailure) {
    return { kind: 'http', status: error.status, detail: errorDetail(error.body, error.message), retryAfterMs: retryAfterMs(error.headers) };
  }
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return { kind: 'timeout' };
  if (error instanceof TypeError && (error as { cause?: unknown }).cause !== undefined) return { kind: 'network', code: networkCode(error) };
  return undefined;
}

/**
 * Runs one request with the shared retry policy; `where` names the provider and URL in errors (never the key).
 * Retries 429, 408 and 5xx answers (waiting what Retry-After asks, else exponential backoff with jitter),
 * timeouts and connection failures; other answers fail at once with a hint.
 */
export async function withRetries<T>(where: string, options: HttpOptions, attempt: () => Promise<T>): Promise<T> {
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof EmbeddingError) throw error;
      const failure = classify(error);
      if (!failure) throw new EmbeddingError(`embedding request to ${where} failed: ${(error as Error).message}`, { cause: error });
      const retryable = failure.kind !== 'http' || failure.status === 429 || failure.status === 408 || failure.status >= 500;
      if (retryable && attempts <= options.maxRetries) {
        const wait = failure.kind === 'http' ? (failure.retryAfterMs ?? backoff(attempts, options)) : backoff(attempts, options);
        await sleep(Math.min(wait, MAX_WAIT_MS));
        continue;
      }
      if (failure.kind === 'timeout') {
        throw new EmbeddingError(`embedding request to ${where} failed after ${attempts} attempt(s): no answer within ${options.timeoutMs} ms`, { cause: error });
      }
      if (failure.kind === 'network') {
        throw new EmbeddingError(`embedding request to ${where} failed after ${attempts} attempt(s): unreachable (${failure.code})`, { cause: error });
      }
      const hint =
        failure.status === 401 || failure.status === 403
          ? ' (check the API key)'
          : failure.status === 404
            ? ' (check the endpoint, deployment or model name)'
            : retryable
              ? ` (gave up after ${attempts} attempts)`
              : '';
      throw new EmbeddingError(`${where} answered HTTP ${failure.status}${hint}: ${failure.detail}`, { status: failure.status, cause: error });
    }
  }
}

/** POSTs JSON with fetch (Ollama's API) under the shared retry policy; returns the parsed answer. */
export async function postJson(provider: string, url: string, body: unknown, options: HttpOptions): Promise<unknown> {
  const where = `${provider} at ${redactUrl(url)}`;
  return withRetries(where, options, async () => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (!response.ok) throw new HttpFailure(response.status, await response.text().catch(() => ''), response.headers);
    try {
      return await response.json();
    } catch (error) {
      throw new EmbeddingError(`${where} answered with invalid JSON`, { cause: error });
    }
  });
}

function backoff(attempt: number, options: HttpOptions): number {
  const base = Math.min(MAX_WAIT_MS, options.retryBaseMs * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

function checkVectors(provider: string, vectors: unknown, count: number, dimensions: number): number[][] {
  if (!Array.isArray(vectors) || vectors.length !== count) {
    throw new EmbeddingError(`${provider} returned ${Array.isArray(vectors) ? vectors.length : 'no'} embeddings for ${count} inputs`);
  }
  return vectors.map((v, i) => {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw new EmbeddingError(`${provider} returned a malformed embedding for input ${i}`);
    }
    if (v.length !== dimensions) {
      throw new EmbeddingError(
        `${provider} returned ${v.length}-dimensional embeddings but ${dimensions} were configured (ZAVA_EMBEDDING_DIMENSIONS)`,
      );
    }
    return l2Normalize(v as number[]);
  });
}

abstract class RemoteProvider implements EmbeddingProvider {
  abstract readonly kind: ProviderKind;
  readonly needsCorpus = false;
  constructor(
    readonly model: string,
    readonly dimensions: number,
    readonly batchSize: number,
    protected readonly http: HttpOptions,
  ) {}

  fit(): void {}

  protected abstract request(inputs: readonly string[]): Promise<number[][]>;

  async embedDocuments(documents: readonly ProductDocument[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < documents.length; i += this.batchSize) {
      out.push(...(await this.request(documents.slice(i, i + this.batchSize).map(documentText))));
    }
    return out;
  }

  async embedQuery(text: string): Promise<number[]> {
    return (await this.request([text]))[0]!;
  }
}

/** OpenAI-style response: { data: [{ index, embedding }] }, possibly out of order. */
function openAiVectors(provider: string, data: unknown, count: number, dimensions: number): number[][] {
  if (!Array.isArray(data)) throw new EmbeddingError(`${provider} answered without a data array`);
  const ordered = [...(data as { index?: number; embedding?: unknown }[])].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding);
  return checkVectors(provider, ordered, count, dimensions);
}

/** SDK options shared by both OpenAI clients: our timeout, no SDK retries (withRetries does them), no logging. */
function sdkOptions(http: HttpOptions) {
  return { timeout: http.timeoutMs, maxRetries: 0, logLevel: 'off' as const };
}

export class OpenAIProvider extends RemoteProvider {
  readonly kind = 'openai' as const;
  private readonly options: ClientOptions;
  private client: Promise<OpenAI> | undefined;
  private readonly where: string;
  constructor(
    settings: { apiKey: string; baseUrl: string; model: string; dimensions: number; batchSize: number; organization?: string; project?: string },
    http: HttpOptions,
  ) {
    super(settings.model, settings.dimensions, settings.batchSize, http);
    const baseURL = settings.baseUrl.replace(/\/+$/, '');
    this.options = {
      apiKey: settings.apiKey,
      baseURL,
      organization: settings.organization ?? null,
      project: settings.project ?? null,
      ...sdkOptions(http),
    };
    this.where = `OpenAI at ${redactUrl(`${baseURL}/embeddings`)}`;
  }

  protected async request(inputs: readonly string[]): Promise<number[][]> {
    const client = await (this.client ??= loadOpenAiSdk().then((sdk) => new sdk.default(this.options)));
    const response = await withRetries(this.where, this.http, () =>
      client.embeddings.create({ model: this.model, input: [...inputs], dimensions: this.dimensions, encoding_format: 'float' }),
    );
    return openAiVectors('OpenAI', response.data, inputs.length, this.dimensions);
  }
}

export class AzureOpenAIProvider extends RemoteProvider {
  readonly kind = 'azure-openai' as const;
  private readonly options: ConstructorParameters<typeof AzureOpenAI>[0];
  private client: Promise<AzureOpenAI> | undefined;
  private readonly where: string;
  constructor(
    private readonly settings: {
      apiKey: string;
      endpoint: string;
      deployment: string;
      apiVersion: string;
      model: string;
      dimensions: number;
      batchSize: number;
    },
    http: HttpOptions,
  ) {
    super(settings.model, settings.dimensions, settings.batchSize, http);
    // baseURL is given explicitly (not `endpoint`) so an OPENAI_BASE_URL in the environment cannot interfere.
    const baseURL = `${settings.endpoint.replace(/\/+$/, '')}/openai`;
    this.options = {
      apiKey: settings.apiKey,
      baseURL,
      apiVersion: settings.apiVersion,
      deployment: settings.deployment,
      ...sdkOptions(http),
    };
    this.where = `Azure OpenAI at ${baseURL}/deployments/${encodeURIComponent(settings.deployment)}/embeddings?api-version=${encodeURIComponent(settings.apiVersion)}`;
  }

  protected async request(inputs: readonly string[]): Promise<number[][]> {
    const client = await (this.client ??= loadOpenAiSdk().then((sdk) => new sdk.AzureOpenAI(this.options)));
    const response = await withRetries(this.where, this.http, () =>
      client.embeddings.create({ model: this.settings.deployment, input: [...inputs], dimensions: this.dimensions, encoding_format: 'float' }),
    );
    return openAiVectors('Azure OpenAI', response.data, inputs.length, this.dimensions);
  }
}

export class OllamaProvider extends RemoteProvider {
  readonly kind = 'ollama' as const;
  constructor(
    private readonly settings: { host: string; model: string; dimensions: number; batchSize: number },
    http: HttpOptions,
  ) {
    super(settings.model, settings.dimensions, settings.batchSize, http);
  }

  protected async request(inputs: readonly string[]): Promise<number[][]> {
    const json = await postJson('Ollama', `${this.settings.host.replace(/\/+$/, '')}/api/embed`, { model: this.model, input: inputs }, this.http);
    return checkVectors('Ollama', (json as { embeddings?: unknown }).embeddings, inputs.length, this.dimensions);
  }
}
