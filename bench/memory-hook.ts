// Loaded into a `zava-mcp serve` under measurement with NODE_OPTIONS="--expose-gc --import=<this file>": in every
// thread of the process (the main thread and each embedding worker — NODE_OPTIONS reach worker threads too), every
// ZAVA_MEMORY_PROBE_MS it forces a full collection and appends that thread's live heap to ZAVA_MEMORY_PROBE_FILE,
// one JSON line. Why: a replica's RSS and its /metrics heap figures move with the garbage not yet collected (a
// saw-tooth of tens of MB) and /metrics sees the main isolate only, so neither tells a slow leak from noise; the
// heap left after a full collection, summed over the threads, does. A bench tool: the server has no such hook.
import { appendFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { isMainThread, threadId } from 'node:worker_threads';

const file = process.env.ZAVA_MEMORY_PROBE_FILE;
const everyMs = Number(process.env.ZAVA_MEMORY_PROBE_MS ?? 30_000);
const gc = (globalThis as { gc?: () => void }).gc;

export interface MemoryProbeLine {
  /** ms since the epoch */
  readonly at: number;
  readonly pid: number;
  readonly thread: number;
  /** V8 heap in use after a full collection, bytes. */
  readonly liveHeap: number;
  readonly heapTotal: number;
  /** Outside the V8 heap but owned by JS objects (Buffers, ArrayBuffers, WASM memory): process-wide. */
  readonly external: number;
  readonly arrayBuffers: number;
  /** Main thread only: the process's RSS. */
  readonly rss?: number;
}

if (file && gc && everyMs > 0) {
  const sample = () => {
    gc();
    const heap = getHeapStatistics();
    const usage = process.memoryUsage();
    const line: MemoryProbeLine = {
      at: Date.now(),
      pid: process.pid,
      thread: threadId,
      liveHeap: heap.used_heap_size,
      heapTotal: heap.total_heap_size,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
      ...(isMainThread ? { rss: usage.rss } : {}),
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  };
  // Unreferenced: the probe never keeps a thread (or the server) alive.
  setInterval(sample, everyMs).unref();
}
