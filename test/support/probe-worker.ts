// The probes of a search flood (search-flood.ts), on a thread of their own: the flood's clients keep the test
// process's main thread busy reading answers, which would otherwise add to the latencies measured here.
// workerData: { url, userId, everyMs }; measures /health, then get_current_utc_date as userId, in turn, until
// it receives 'stop', then posts { health, date } (milliseconds).
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
port.postMessage('ready');
while (!stopped) {
  let t0 = performance.now();
  await (await fetch(healthUrl)).text();
  health.push(performance.now() - t0);
  t0 = performance.now();
  await client.callTool({ name: 'get_current_utc_date', arguments: {} });
  date.push(performance.now() - t0);
  await new Promise((resolve) => setTimeout(resolve, everyMs));
}
await client.close();
port.postMessage({ health, date });
