// One thread of the local model's worker pool (embedding-pool.ts): fits the model on the catalog it is sent and
// embeds queries and documents with it, so none of that CPU work runs on the server's event loop. Messages are
// handled one at a time in arrival order, so a query sent after a fit is embedded with that fit.
import { parentPort } from 'node:worker_threads';
import { type LocalModel, fittedModel } from './local.js';
import type { ProductDocument } from './provider.js';
// Fits kept: the current one and the previous ones, for queries called just before a refit (the pool mirrors it).
import { KEPT_FITS } from './embedding-pool.js';

export type PoolRequest =
  | { readonly type: 'fit'; readonly digest: string; readonly dimensions: number; readonly corpus: readonly ProductDocument[] }
  | { readonly type: 'query'; readonly digest: string; readonly text: string }
  | { readonly type: 'documents'; readonly digest: string; readonly documents: readonly ProductDocument[] };

export type PoolReply =
  | { readonly id: number; readonly ok: true; readonly model: string }
  | { readonly id: number; readonly ok: true; readonly vectors: Float64Array<ArrayBuffer>; readonly count: number; readonly coverage?: number }
  | { readonly id: number; readonly ok: false; readonly message: string };

const models = new Map<string, LocalModel>();

function model(digest: string): LocalModel {
  const found = models.get(digest);
  if (!found) throw new Error(`this embedding worker has no model for catalog ${digest.slice(0, 10)} (not fitted yet)`);
  return found;
}

/** Vectors travel as one transferred Float64Array (doubles: the same numbers the main thread would compute). */
function pack(vectors: readonly number[][]): { vectors: Float64Array<ArrayBuffer>; count: number } {
  const dimensions = vectors[0]?.length ?? 0;
  const out = new Float64Array(vectors.length * dimensions);
  vectors.forEach((v, i) => out.set(v, i * dimensions));
  return { vectors: out, count: vectors.length };
}

function handle(id: number, request: PoolRequest): PoolReply {
  switch (request.type) {
    case 'fit': {
      const fitted = fittedModel(request.corpus, request.dimensions, request.digest);
      fitted.prepare(); // the catalog matrix, so the first query is not slow
      models.delete(request.digest);
      models.set(request.digest, fitted);
      for (const key of models.keys()) if (models.size > KEPT_FITS) models.delete(key);
      return { id, ok: true, model: fitted.model };
    }
    case 'query': {
      const { vector, coverage } = model(request.digest).embedQueryWithCoverage(request.text);
      return { id, ok: true, ...pack([vector]), coverage };
    }
    case 'documents': {
      const fitted = model(request.digest);
      return { id, ok: true, ...pack(request.documents.map((doc) => fitted.embedDocument(doc))) };
    }
  }
}

const port = parentPort;
if (!port) throw new Error('embedding-worker.js runs as a worker thread of the embedding pool');
port.on('message', ({ id, request }: { id: number; request: PoolRequest }) => {
  let reply: PoolReply;
  try {
    reply = handle(id, request);
  } catch (error) {
    reply = { id, ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply, 'vectors' in reply ? [reply.vectors.buffer] : []);
});
