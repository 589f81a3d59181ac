// The probes of a search flood (search-flood.ts), on a thread of their own: the flood's clients keep the test
// process's main thread busy reading answers, which would otherwise add to the latencies measured here.
// workerData: { url, userId, everyMs }; two loops side by side — GET /health, and get_current_utc_date as userId
// — each pausing everyMs between calls, until 'stop' arrives; then posts { health, date } (milliseconds).
import { parentPort, workerData } from 'node:worker_threads';
import { connectHttp } from '../mcp-harness.js';

const { url, userId, everyMs } = workerData as { url: string; userId: string; everyMs: number };
const port = parentPort!;
let stopped = false;
port.once('message', () => (stopped = true));

const client = await connectHttp(url, userId);
const healthUrl = new URL('/health', url);
const health: number[] = [];
const date: number[] = [];

async function loop(into: number[], call: () => Promise<unknown>): Promise<void> {
  while (!stopped) {
    const t0 = performance.now();
    await call();
    into.push(performance.now() - t0);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

port.postMessage('ready');
await Promise.all([
  loop(health, async () => (await fetch(healthUrl)).text()),
  loop(date, () => client.callTool({ name: 'get_current_utc_date', arguments: {} })),
]);
await client.close();
port.postMessage({ health, date });
