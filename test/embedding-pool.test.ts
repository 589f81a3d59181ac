// The local model on worker threads (src/search/embedding-pool.ts): the same vectors as on the calling thread,
// shared fairly between identities, bounded queues, cancellation, refits, and a dead worker replaced.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { catalogRows, loadDefaultCatalog } from '../src/data/catalog.js';
import { CallCancelledError, TooManyCallsError } from '../src/infra/errors.js';
import { WorkerEmbeddingProvider } from '../src/search/embedding-pool.js';
import { LocalEmbeddingProvider } from '../src/search/local.js';
import { EmbeddingError, type ProductDocument } from '../src/search/provider.js';
import { costlyDescription } from './support/search-flood.js';

function defaultCorpus(): ProductDocument[] {
  const catalog = loadDefaultCatalog();
  const types = catalog.categories.flatMap((category) => category.types.map((type) => ({ category: category.name, type: type.name })));
  return catalogRows(catalog).map((row) => ({
    productId: row.productId,
    sku: row.sku,
    name: row.name,
    description: row.description,
    typeName: types[row.typeId - 1]!.type,
    categoryName: types[row.typeId - 1]!.category,
  }));
}

describe('the local model on worker threads', () => {
  const corpus = defaultCorpus();
  const local = new LocalEmbeddingProvider();
  let pool: WorkerEmbeddingProvider;

  before(async () => {
    local.fit(corpus);
    pool = new WorkerEmbeddingProvider({ workers: 2, dimensions: local.dimensions, perKey: 1, maxWaitMs: 30_000, maxQueuedPerKey: 4 });
    await pool.fit(corpus);
  });
  after(async () => {
    await pool?.close();
  });

  test('fit() names the model without fitting (a server whose embeddings are current starts without it); the first task fits every worker', async () => {
    const slots = (pool as unknown as { slots: { fits: { digest: string; done: Promise<void> }[] }[] }).slots;
    assert.equal(pool.model, local.model);
    assert.deepEqual(slots.map((slot) => slot.fits.length), [0, 0], 'no worker fitted yet');
    await pool.embedQuery('containers for paint');
    assert.deepEqual(slots.map((slot) => slot.fits.length), [1, 1], 'both workers were sent the catalog');
    await Promise.all(slots.map((slot) => slot.fits[0]!.done));
  });

  test('same model name and the same vectors as the calling thread, for queries and documents', async () => {
    assert.equal(pool.model, local.model);
    for (const query of ['containers for paint', 'hamer', '15 amp circuit breaker', costlyDescription(1)]) {
      assert.deepEqual(await pool.embedQuery(query), await local.embedQuery(query), query.slice(0, 40));
    }
    const docs = corpus.slice(0, 7);
    assert.deepEqual(await pool.embedDocuments(docs), await local.embedDocuments(docs));
  });

  test('one identity may have only so many queries waiting; a cancelled one leaves the queue', async () => {
    const controller = new AbortController();
    // perKey 1: one runs, four wait, the sixth is refused at once.
    const flood = Array.from({ length: 5 }, (_, i) => pool.embedQuery(costlyDescription(100 + i), { key: 'a', signal: i === 4 ? controller.signal : undefined }));
    await assert.rejects(pool.embedQuery('one more', { key: 'a' }), TooManyCallsError);
    controller.abort();
    const settled = await Promise.allSettled(flood);
    assert.equal(settled.filter((s) => s.status === 'fulfilled').length, 4);
    const cancelled = settled[4]!;
    assert.ok(cancelled.status === 'rejected' && cancelled.reason instanceof CallCancelledError);
  });

  test("another identity's query is not kept waiting behind one identity's flood", async () => {
    const flood = Array.from({ length: 4 }, (_, i) => pool.embedQuery(costlyDescription(200 + i), { key: 'a' }));
    let floodDone = 0;
    for (const f of flood) void f.then(() => floodDone++);
    await pool.embedQuery('containers for paint', { key: 'b' });
    assert.ok(floodDone < flood.length, `answered before the flood was through (${floodDone} of ${flood.length} done)`);
    await Promise.all(flood);
  });

  test('a refit on another catalog changes the model; queries sent before it keep theirs', async () => {
    const smaller = corpus.slice(1);
    const before = pool.model;
    const pending = pool.embedQuery('paint pail');
    await pool.fit(smaller);
    assert.notEqual(pool.model, before);
    assert.deepEqual(await pending, await local.embedQuery('paint pail'));
    const refitted = new LocalEmbeddingProvider();
    refitted.fit(smaller);
    assert.equal(pool.model, refitted.model);
    assert.deepEqual(await pool.embedQuery('paint pail'), await refitted.embedQuery('paint pail'));
    await pool.fit(corpus);
  });

  test('a worker that dies fails only its own query, is replaced and refitted; the pool keeps answering', async () => {
    const slots = (pool as unknown as { slots: { worker: Worker }[] }).slots;
    const dying = slots[0]!.worker;
    const held = pool.embedQuery(costlyDescription(300));
    await dying.terminate();
    await assert.rejects(held, EmbeddingError);
    assert.notEqual(slots[0]!.worker, dying, 'replaced');
    const answers = await Promise.all([1, 2, 3, 4].map((i) => pool.embedQuery(`cordless drill ${i}`, { key: String(i) })));
    for (const [i, answer] of answers.entries()) assert.deepEqual(answer, await local.embedQuery(`cordless drill ${i + 1}`));
  });
});
