// Hosted embedding providers over their HTTP APIs: OpenAI (POST {base}/embeddings), Azure OpenAI
// (POST {endpoint}/openai/deployments/{deployment}/embeddings?api-version=…, `api-key` header) and Ollama
// (POST {host}/api/embed). Plain fetch (the `openai` SDK is not a dependency yet), with batching, retries with
// exponential backoff on 429 and 5xx (honouring Retry-After), a per-request timeout and clear errors.
import { setTimeout as sleep } from 'node:timers/promises';
import { type EmbeddingProvider, EmbeddingError, type ProductDocument, type ProviderKind, documentText, l2Normalize } from './provider.js';

export interface HttpOptions {
  readonly timeoutMs: number;
  readonly maxRetries: number;
  /** First backoff delay; doubles each retry (with jitter), capped at 20 s. */
  readonly retryBaseMs: number;
}

export const DEFAULT_HTTP_OPTIONS: HttpOptions = { timeoutMs: 30_000, maxRetries: 4, retryBaseMs: 500 };

interface PostRequest {
  readonly provider: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.search = u.search.replace(/(api[-_]?key=)[^&]+/i, '$1***');
    return u.toString();
  } catch {
    return url;
  }
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** POSTs JSON with retries; returns the parsed JSON answer or throws EmbeddingError. */
export async function postJson(request: PostRequest, options: HttpOptions): Promise<unknown> {
  const where = `${request.provider} at ${redactUrl(request.url)}`;
  let attempt = 0;
  for (;;) {
    let response: Response;
    try {
      response = await fetch(request.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...request.headers },
        body: JSON.stringify(request.body),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      const name = (error as Error).name;
      const timedOut = name === 'TimeoutError' || name === 'AbortError';
      if (attempt < options.maxRetries) {
        attempt++;
        await sleep(backoff(attempt, options));
        continue;
      }
      const reason = timedOut
        ? `no answer within ${options.timeoutMs} ms`
        : `unreachable (${networkCode(error)})`;
      throw new EmbeddingError(`embedding request to ${where} failed after ${attempt + 1} attempt(s): ${reason}`, { cause: error });
    }
    if (response.ok) {
      try {
        return await response.json();
      } catch (error) {
        throw new EmbeddingError(`${where} answered with invalid JSON`, { cause: error });
      }
    }
    const text = await response.text().catch(() => '');
    const retryable = response.status === 429 || response.status >= 500;
    if (retryable && attempt < options.maxRetries) {
      attempt++;
      const wait = retryAfterMs(response.headers.get('retry-after')) ?? backoff(attempt, options);
      await sleep(Math.min(wait, 20_000));
      continue;
    }
    let detail = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string } | string };
      detail = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? detail);
    } catch {
      // not JSON: keep the text
    }
    const hint =
      response.status === 401 || response.status === 403
        ? ' (check the API key)'
        : response.status === 404
          ? ' (check the endpoint, deployment or model name)'
          : retryable
            ? ` (gave up after ${attempt + 1} attempts)`
            : '';
    throw new EmbeddingError(`${where} answered HTTP ${response.status}${hint}: ${detail}`, { status: response.status });
  }
}

function networkCode(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  return cause?.code ?? cause?.errors?.find((e) => e.code)?.code ?? cause?.message ?? (error as Error).message;
}

function backoff(attempt: number, options: HttpOptions): number {
  const base = Math.min(20_000, options.retryBaseMs * 2 ** (attempt - 1));
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

/** OpenAI-style response: { data: [{ index, embedding }] }. */
function openAiVectors(provider: string, json: unknown, count: number, dimensions: number): number[][] {
  const data = (json as { data?: { index?: number; embedding?: unknown }[] }).data;
  if (!Array.isArray(data)) throw new EmbeddingError(`${provider} answered without a data array`);
  const ordered = [...data].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.embedding);
  return checkVectors(provider, ordered, count, dimensions);
}

export class OpenAIProvider extends RemoteProvider {
  readonly kind = 'openai' as const;
  constructor(
    private readonly settings: { apiKey: string; baseUrl: string; model: string; dimensions: number; batchSize: number },
    http: HttpOptions,
  ) {
    super(settings.model, settings.dimensions, settings.batchSize, http);
  }

  protected async request(inputs: readonly string[]): Promise<number[][]> {
    const json = await postJson(
      {
        provider: 'OpenAI',
        url: `${this.settings.baseUrl.replace(/\/+$/, '')}/embeddings`,
        headers: { authorization: `Bearer ${this.settings.apiKey}` },
        body: { model: this.model, input: inputs, dimensions: this.dimensions, encoding_format: 'float' },
      },
      this.http,
    );
    return openAiVectors('OpenAI', json, inputs.length, this.dimensions);
  }
}

export class AzureOpenAIProvider extends RemoteProvider {
  readonly kind = 'azure-openai' as const;
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
  }

  protected async request(inputs: readonly string[]): Promise<number[][]> {
    const base = this.settings.endpoint.replace(/\/+$/, '');
    const url = `${base}/openai/deployments/${encodeURIComponent(this.settings.deployment)}/embeddings?api-version=${encodeURIComponent(this.settings.apiVersion)}`;
    const json = await postJson(
      {
        provider: 'Azure OpenAI',
        url,
        headers: { 'api-key': this.settings.apiKey },
        body: { input: inputs, dimensions: this.dimensions, encoding_format: 'float' },
      },
      this.http,
    );
    return openAiVectors('Azure OpenAI', json, inputs.length, this.dimensions);
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
    const json = await postJson(
      { provider: 'Ollama', url: `${this.settings.host.replace(/\/+$/, '')}/api/embed`, headers: {}, body: { model: this.model, input: inputs } },
      this.http,
    );
    return checkVectors('Ollama', (json as { embeddings?: unknown }).embeddings, inputs.length, this.dimensions);
  }
}
