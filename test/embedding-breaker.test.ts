// The hosted embedding provider's circuit breaker (issue 12, Resilience: "Same for Redis and for the embedding
// provider"): a loopback HTTP server speaking the OpenAI embeddings API fails, then recovers. The real client code
// (the `openai` SDK, remote.ts) talks to it; nothing is mocked. In-process for the breaker's timing, and through a
// spawned server for what a client of semantic_search_products sees.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { EmbeddingError } from '../src/search/provider.js';
import { BreakerEmbeddingProvider, EmbeddingUnavailableError } from '../src/search/provider-breaker.js';
import { createEmbeddingProvider, embeddingSettings } from '../src/search/settings.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { connectHttp, startHttpServer, textOf, type HttpServerProcess } from './mcp-harness.js';

const DIMENSIONS = 16;

/** A deterministic vector per text (a hash), so equal texts embed equally. */
function vectorOf(text: string): number[] {
  const digest = createHash('sha256').update(text).digest();
  return Array.from({ length: DIMENSIONS }, (_, i) => digest[i]! / 255 - 0.5);
}

/** POST /v1/embeddings in the OpenAI shape; `mode` decides how it answers. */
class FakeEmbeddings {
  mode: 'ok' | 'down' | 'unauthorized' = 'ok';
  requests = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        this.requests++;
        const send = (status: number, answer: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer));
        };
        if (req.url !== '/v1/embeddings') return send(404, { error: { message: 'not found' } });
        if (this.mode === 'down') return send(503, { error: { message: 'the service is overloaded' } });
        if (this.mode === 'unauthorized') return send(401, { error: { message: 'Incorrect API key provided' } });
        const { input, model } = JSON.parse(body) as { input: string[]; model: string };
        send(200, { object: 'list', model, data: input.map((text, index) => ({ object: 'embedding', index, embedding: vectorOf(text) })), usage: { prompt_tokens: 1, total_tokens: 1 } });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  env(): Record<string, string> {
    return {
      ZAVA_EMBEDDING_PROVIDER: 'openai',
      OPENAI_API_KEY: 'sk-test-breaker',
      OPENAI_BASE_URL: this.url,
      ZAVA_EMBEDDING_DIMENSIONS: String(DIMENSIONS),
      ZAVA_EMBEDDING_MAX_RETRIES: '0',
      ZAVA_EMBEDDING_TIMEOUT_MS: '2000',
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server?.closeAllConnections();
      this.server ? this.server.close(() => resolve()) : resolve();
    });
  }
}

describe('the embedding provider breaker (in-process, real OpenAI client)', () => {
  const fake = new FakeEmbeddings();
  before(() => fake.start());
  after(() => fake.close());

  test('outages in a row open it; it answers at once while open; a successful probe closes it', async () => {
    const states: string[] = [];
    const provider = new BreakerEmbeddingProvider(createEmbeddingProvider(embeddingSettings(fake.env())), {
      failuresToOpen: 3,
      halfOpenAfterMs: 400,
      onStateChange: (state) => states.push(state),
    });
    assert.equal((await provider.embedQuery('paint')).length, DIMENSIONS);
    fake.mode = 'down';
    for (let i = 0; i < 3; i++) await assert.rejects(provider.embedQuery('paint'), (e: unknown) => e instanceof EmbeddingError && e.status === 503);
    assert.equal(provider.state, 'open');
    const before_ = fake.requests;
    const started = performance.now();
    await assert.rejects(provider.embedQuery('paint'), (e: unknown) => e instanceof EmbeddingUnavailableError && /refused at once.*Try again in 1 s/.test(e.message));
    assert.ok(performance.now() - started < 50, 'no request while open');
    assert.equal(fake.requests, before_, 'the provider was not called');
    fake.mode = 'ok';
    await new Promise((resolve) => setTimeout(resolve, 450));
    assert.equal((await provider.embedQuery('paint')).length, DIMENSIONS, 'the probe succeeds');
    assert.equal(provider.state, 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'closed']);
    // Catalog embedding passes by the breaker either way.
    assert.equal((await provider.embedDocuments([{ productId: 1, sku: 'S', name: 'n', description: 'd', typeName: 't', categoryName: 'c' }])).length, 1);
  });

  test('a configuration mistake (401) fails its call but never opens it', async () => {
    const provider = new BreakerEmbeddingProvider(createEmbeddingProvider(embeddingSettings(fake.env())), { failuresToOpen: 2, halfOpenAfterMs: 400 });
    fake.mode = 'unauthorized';
    try {
      for (let i = 0; i < 4; i++) await assert.rejects(provider.embedQuery('paint'), (e: unknown) => e instanceof EmbeddingError && /check the API key/.test(e.message));
      assert.equal(provider.state, 'closed');
    } finally {
      fake.mode = 'ok';
    }
  });
});

describe('semantic_search_products while the provider is down and back (spawned server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  const fake = new FakeEmbeddings();
  let t: TestDatabase;
  let http: HttpServerProcess;
  before(async () => {
    await fake.start();
    t = await createTestDatabase('server', { customers: 40, embeddings: false });
    // The server embeds the catalog through the fake provider at start.
    http = await startHttpServer(t.flags, fake.env());
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
    await fake.close();
  });

  test('EMBEDDING_UNAVAILABLE while failing, at once once open, and answers again after a probe', { timeout: 60_000 }, async () => {
    const client = await connectHttp(http.url, HEAD_OFFICE_USER_ID);
    // Each search its own words: an answer the result cache holds would never reach the provider.
    let searches = 0;
    const search = async () => {
      const started = performance.now();
      const result = await client.callTool({ name: 'semantic_search_products', arguments: { query_description: `paint brushes ${++searches}` } });
      return { result, ms: performance.now() - started, code: (result.structuredContent as { code?: string } | undefined)?.code };
    };
    try {
      const ok = await search();
      assert.equal(ok.result.isError, undefined, textOf(ok.result));
      fake.mode = 'down';
      for (let i = 0; i < 5; i++) {
        const failed = await search();
        assert.equal(failed.code, 'EMBEDDING_UNAVAILABLE', textOf(failed.result));
        assert.match(textOf(failed.result), /embedding provider failed/);
      }
      const requests = fake.requests;
      const refused = await search();
      assert.equal(refused.code, 'EMBEDDING_UNAVAILABLE');
      assert.match(textOf(refused.result), /refused at once.*Try again in 10 s.*execute_sales_query/s);
      assert.equal(fake.requests, requests, 'no request reached the provider while open');
      // Other tools are untouched by the provider's outage.
      const sql = await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: 'SELECT 1 AS one' } });
      assert.equal(sql.isError, undefined, textOf(sql));
      fake.mode = 'ok';
      const back = Date.now();
      let answered: number | undefined;
      while (Date.now() - back < 20_000) {
        const attempt = await search();
        if (attempt.result.isError !== true) {
          answered = Date.now() - back;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.ok(answered !== undefined && answered <= 12_000, `searches answered again ${answered} ms after the provider returned (half-open after 10 s)`);
      assert.match(http.stderr(), /the embedding provider failed repeatedly/);
    } finally {
      await client.close();
    }
  });
});
