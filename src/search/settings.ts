// Embedding-provider configuration from the environment, validated with clear messages.
import { cpus } from 'node:os';
import { ConfigError } from '../infra/errors.js';
import { WorkerEmbeddingProvider } from './embedding-pool.js';
import { BreakerEmbeddingProvider } from './provider-breaker.js';
import { LOCAL_DEFAULT_DIMENSIONS, LocalEmbeddingProvider } from './local.js';
import { type EmbeddingProvider, PROVIDER_KINDS, type ProviderKind } from './provider.js';
import { AzureOpenAIProvider, DEFAULT_HTTP_OPTIONS, type HttpOptions, OllamaProvider, OpenAIProvider } from './remote.js';

export interface EmbeddingSettings {
  readonly provider: ProviderKind;
  readonly model: string | undefined;
  readonly dimensions: number | undefined;
  readonly batchSize: number | undefined;
  /** Worker threads of the local model in the server (ZAVA_EMBEDDING_WORKERS). */
  readonly workers: number;
  readonly http: HttpOptions;
  readonly env: NodeJS.ProcessEnv;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, max = 1_000_000): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from 1 to ${max} (got "${raw}")`);
  }
  return Number(raw);
}

/**
 * One worker per core but one, up to 4: a query costs 2–20 ms in a worker, so a few workers answer hundreds of
 * searches a second, and the spare core keeps the event loop and the database responsive under a flood. Each
 * worker holds WordNet and the fitted model (about 80 MB of RSS at the default catalog, BENCHMARKS.md).
 */
export const DEFAULT_EMBEDDING_WORKERS = Math.max(1, Math.min(4, cpus().length - 1));

export function embeddingSettings(env: NodeJS.ProcessEnv = process.env): EmbeddingSettings {
  const provider = (env.ZAVA_EMBEDDING_PROVIDER?.trim() || 'local') as ProviderKind;
  if (!PROVIDER_KINDS.includes(provider)) {
    throw new ConfigError(`ZAVA_EMBEDDING_PROVIDER must be one of ${PROVIDER_KINDS.join(', ')} (got "${provider}")`);
  }
  return {
    provider,
    model: env.ZAVA_EMBEDDING_MODEL?.trim() || undefined,
    dimensions: positiveInt(env, 'ZAVA_EMBEDDING_DIMENSIONS', 4000),
    batchSize: positiveInt(env, 'ZAVA_EMBEDDING_BATCH_SIZE', 2048),
    workers: positiveInt(env, 'ZAVA_EMBEDDING_WORKERS', 16) ?? DEFAULT_EMBEDDING_WORKERS,
    http: {
      timeoutMs: positiveInt(env, 'ZAVA_EMBEDDING_TIMEOUT_MS') ?? DEFAULT_HTTP_OPTIONS.timeoutMs,
      maxRetries: (() => {
        const raw = env.ZAVA_EMBEDDING_MAX_RETRIES;
        if (raw === undefined || raw === '') return DEFAULT_HTTP_OPTIONS.maxRetries;
        if (!/^\d+$/.test(raw.trim()) || Number(raw) > 20) throw new ConfigError(`ZAVA_EMBEDDING_MAX_RETRIES must be 0 to 20 (got "${raw}")`);
        return Number(raw);
      })(),
      retryBaseMs: positiveInt(env, 'ZAVA_EMBEDDING_RETRY_BASE_MS') ?? DEFAULT_HTTP_OPTIONS.retryBaseMs,
    },
    env,
  };
}

function required(env: NodeJS.ProcessEnv, name: string, provider: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is required for ZAVA_EMBEDDING_PROVIDER=${provider}`);
  return value;
}

/** How the server shares query embedding between identities (from the server configuration). */
export interface EmbeddingLimits {
  /** Queries one identity may embed at once (ZAVA_IDENTITY_CONCURRENCY). */
  readonly perKey: number;
  /** Longest a query waits for a worker (ZAVA_QUEUE_TIMEOUT_MS). */
  readonly maxWaitMs: number;
  /** Queries one identity may have waiting (ZAVA_IDENTITY_QUEUE_LIMIT). */
  readonly maxQueuedPerKey: number;
  readonly onWorkerError?: ((error: Error) => void) | undefined;
  /** A hosted provider's breaker opened, half-opened or closed (provider-breaker.ts). */
  readonly onBreakerChange?: ((state: 'closed' | 'half-open' | 'open') => void) | undefined;
}

/**
 * The provider a server uses: the local model on a pool of worker threads (its CPU work must not hold the event
 * loop), shared fairly between identities; hosted providers behind a circuit breaker (their work is I/O, and an
 * outage must not make every search wait out timeouts: provider-breaker.ts). Close it when done.
 */
export function createServingProvider(settings: EmbeddingSettings, limits: EmbeddingLimits): EmbeddingProvider {
  const provider = createEmbeddingProvider(settings); // the same validation and messages
  if (!(provider instanceof LocalEmbeddingProvider)) return new BreakerEmbeddingProvider(provider, { onStateChange: limits.onBreakerChange });
  const { onBreakerChange: _local, ...workerLimits } = limits;
  return new WorkerEmbeddingProvider({ workers: settings.workers, dimensions: provider.dimensions, ...workerLimits });
}

/** Builds the configured provider; throws ConfigError for a missing key or endpoint before any request. */
export function createEmbeddingProvider(settings: EmbeddingSettings = embeddingSettings()): EmbeddingProvider {
  const { env } = settings;
  switch (settings.provider) {
    case 'local':
      if (settings.model && settings.model !== 'local') {
        throw new ConfigError(`ZAVA_EMBEDDING_MODEL does not apply to the local provider (got "${settings.model}")`);
      }
      if (settings.dimensions !== undefined && (settings.dimensions < 64 || settings.dimensions > 2000)) {
        throw new ConfigError('ZAVA_EMBEDDING_DIMENSIONS for the local provider must be 64 to 2000');
      }
      return new LocalEmbeddingProvider(settings.dimensions ?? LOCAL_DEFAULT_DIMENSIONS);
    case 'openai':
      return new OpenAIProvider(
        {
          apiKey: required(env, 'OPENAI_API_KEY', 'openai'),
          baseUrl: env.OPENAI_BASE_URL?.trim() || 'https://api.openai.com/v1',
          model: settings.model ?? 'text-embedding-3-small',
          dimensions: settings.dimensions ?? 1536,
          batchSize: settings.batchSize ?? 256,
          organization: env.OPENAI_ORG_ID?.trim() || undefined,
          project: env.OPENAI_PROJECT_ID?.trim() || undefined,
        },
        settings.http,
      );
    case 'azure-openai': {
      const deployment = env.AZURE_OPENAI_DEPLOYMENT?.trim() || settings.model || 'text-embedding-3-small';
      return new AzureOpenAIProvider(
        {
          apiKey: required(env, 'AZURE_OPENAI_API_KEY', 'azure-openai'),
          endpoint: required(env, 'AZURE_OPENAI_ENDPOINT', 'azure-openai'),
          deployment,
          apiVersion: env.AZURE_OPENAI_API_VERSION?.trim() || '2024-10-21',
          model: settings.model ?? deployment,
          dimensions: settings.dimensions ?? 1536,
          batchSize: settings.batchSize ?? 256,
        },
        settings.http,
      );
    }
    case 'ollama':
      return new OllamaProvider(
        {
          host: env.OLLAMA_HOST?.trim() ? (/^https?:\/\//.test(env.OLLAMA_HOST.trim()) ? env.OLLAMA_HOST.trim() : `http://${env.OLLAMA_HOST.trim()}`) : 'http://127.0.0.1:11434',
          model: settings.model ?? 'nomic-embed-text',
          dimensions: settings.dimensions ?? 768,
          batchSize: settings.batchSize ?? 64,
        },
        settings.http,
      );
  }
}
