// Start, one call, stop: what a stdio host (and the test suite) pays per server process. Spawns
// `zava-mcp serve --stdio` on a database under /usr/bin/time, sends initialize and one execute_sales_query, closes
// stdin, and reports the time to the answer, the time until the process is gone, and the server's CPU over its
// whole life (user + system, every thread).
// Needs /usr/bin/time (Debian's `time` package). Usage: node dist/bench/start-cycle.js (--data-dir DIR | --database-url URL) [--runs N] [--main path/to/main.js]
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { STORES } from '../src/data/stores.js';

const { values } = parseArgs({
  options: { 'data-dir': { type: 'string' }, 'database-url': { type: 'string' }, runs: { type: 'string', default: '3' }, main: { type: 'string' } },
});
const main = values.main ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const target = values['database-url'] ? ['--database-url', values['database-url']] : values['data-dir'] ? ['--data-dir', values['data-dir']] : undefined;
if (!target) throw new Error('give --data-dir DIR or --database-url URL');
const SEATTLE_MANAGER = STORES[0]!.managerId;

async function cycle(): Promise<{ answeredMs: number; goneMs: number; cpuSeconds: number }> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-f', 'zava-cpu %U %S', process.execPath, main, 'serve', '--stdio', ...target!, '--rls-user-id', SEATTLE_MANAGER], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
  const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
  let buffer = '';
  let answeredMs = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let end; (end = buffer.indexOf('\n')) >= 0; buffer = buffer.slice(end + 1)) {
      const message = JSON.parse(buffer.slice(0, end)) as { id?: number; error?: unknown; result?: { isError?: boolean } };
      if (message.id === 1) {
        send({ jsonrpc: '2.0', method: 'notifications/initialized' });
        send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'execute_sales_query', arguments: { postgresql_query: 'SELECT count(*) FROM retail.orders' } } });
      } else if (message.id === 2) {
        if (message.error || message.result?.isError) throw new Error(`the call failed: ${JSON.stringify(message).slice(0, 300)}`);
        answeredMs = performance.now() - started;
        child.stdin.end();
      }
    }
  });
  send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'start-cycle', version: '1' } } });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const goneMs = performance.now() - started;
  if (code !== 0) throw new Error(`the server exited with ${code}: ${stderr}`);
  const cpu = /zava-cpu ([\d.]+) ([\d.]+)/.exec(stderr);
  if (!cpu) throw new Error(`no CPU figures from /usr/bin/time: ${stderr}`);
  return { answeredMs, goneMs, cpuSeconds: Number(cpu[1]) + Number(cpu[2]) };
}

for (let run = 1; run <= Number(values.runs); run++) {
  const result = await cycle();
  console.log(`run ${run}: answered ${(result.answeredMs / 1000).toFixed(2)} s, gone ${(result.goneMs / 1000).toFixed(2)} s, server CPU ${result.cpuSeconds.toFixed(2)} s`);
}
