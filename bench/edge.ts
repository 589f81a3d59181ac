// The edge's own cost (issue 10, "The fastest call"): a spawned `zava-mcp serve` on a small server-backend
// database, driven by a bare keep-alive HTTP client (no SDK client in the loop, so what is measured is the server
// and the wire) and by a bare stdio client. Prints p50/p95 of get_current_utc_date and of a one-row
// execute_sales_query over HTTP and stdio, and calls/s of get_current_utc_date at 8 clients over HTTP; beside each,
// the server process's CPU time per call (from /proc, so it holds on a busy machine where latency does not).
// Usage: npm run build && node dist/bench/edge.js [--calls N] [--seconds S] [--era legacy|modern] [--profile DIR]
//   --era modern sends 2026-07-28 requests (per-request _meta envelope and Mcp-Method/Mcp-Name headers);
//   --profile DIR runs the server under `node --cpu-prof` and leaves the .cpuprofile files in DIR.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { createTestDatabase } from '../test/support/databases.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const CALLS = Number(option('calls') ?? 3000);
const SECONDS = Number(option('seconds') ?? 5);
const ERA = option('era') === 'modern' ? 'modern' : 'legacy';
const PROFILE = option('profile');
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const ONE_ROW = 'SELECT store_name FROM retail.stores WHERE store_id = 1';
const MODERN = '2026-07-28';

let nextId = 1;

/** One tools/call as JSON-RPC, and the HTTP headers the era wants. */
function toolCall(name: string, args: Record<string, unknown>): { body: string; headers: Record<string, string> } {
  const params: Record<string, unknown> = { name, arguments: args };
  const headers: Record<string, string> = {};
  if (ERA === 'modern') {
    params._meta = {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientInfo': { name: 'edge-bench', version: '1.0.0' },
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    Object.assign(headers, { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': name });
  }
  return { body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params }), headers };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(3)} ms, p95 ${percentile(sorted, 95).toFixed(3)} ms (${samples.length} calls)`;
}

function serverEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('ZAVA_') && key !== 'DATABASE_URL') env[key] = value;
  // The edge's request limit would refuse a benchmark's flood: measured off (its cost is one counter update). The
  // result cache off: the same statement is repeated, and the path under test is the uncached one.
  return { ...env, ZAVA_LOG_LEVEL: 'info', ZAVA_EDGE_RATE_LIMIT: '0', ZAVA_CACHE: 'off' };
}

function nodeArgs(tag: string): string[] {
  return PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE, '--cpu-prof-name', `${tag}-${ERA}.cpuprofile`] : [];
}

async function startHttp(flags: readonly string[]): Promise<{ url: URL; child: ChildProcess }> {
  const child = spawn(process.execPath, [...nodeArgs('http'), MAIN, 'serve', ...flags, '--host', '127.0.0.1', '--port', '0'], {
    env: serverEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return { url: new URL(url), child };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** POSTs one call on a keep-alive agent and resolves with the parsed JSON-RPC answer. */
function post(url: URL, agent: Agent, call: { body: string; headers: Record<string, string> }): Promise<{ result?: { isError?: boolean } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-rls-user-id': HEAD_OFFICE_USER_ID,
          'content-length': Buffer.byteLength(call.body),
          ...call.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            // SSE answers carry the JSON-RPC message on a data: line.
            const json = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '');
            const answer = JSON.parse(json) as { result?: { isError?: boolean }; error?: unknown };
            if (answer.error || answer.result?.isError) reject(new Error(`call failed (${res.statusCode}): ${text.slice(0, 300)}`));
            else resolve(answer);
          } catch (error) {
            reject(new Error(`unreadable answer (${res.statusCode}): ${text.slice(0, 300)} ${(error as Error).message}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(call.body);
  });
}

/** User + system CPU time of a process, in ms (Linux: /proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

let serverPid = 0;

async function latency(label: string, once: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 1000; i++) await once(); // warm-up: JIT, pools, caches
  const samples: number[] = [];
  const cpu0 = cpuMs(serverPid);
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    await once();
    samples.push(performance.now() - t0);
  }
  const cpu = ((cpuMs(serverPid) - cpu0) / CALLS).toFixed(3);
  console.log(`${label}: ${stats(samples)}, server CPU ${cpu} ms/call`);
}

async function throughput(url: URL, clients: number): Promise<void> {
  const agents = Array.from({ length: clients }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  const samples: number[] = [];
  const cpu0 = cpuMs(serverPid);
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    agents.map(async (agent) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await post(url, agent, toolCall('get_current_utc_date', {}));
        samples.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = ((cpuMs(serverPid) - cpu0) / samples.length).toFixed(3);
  console.log(`HTTP get_current_utc_date at ${clients} clients: ${Math.round(samples.length / seconds)} calls/s, ${stats(samples)}, server CPU ${cpu} ms/call`);
  for (const agent of agents) agent.destroy();
}

/** A bare newline-delimited JSON-RPC client on the server's stdin/stdout (legacy era: initialize first). */
async function stdioBench(flags: readonly string[]): Promise<void> {
  const child = spawn(process.execPath, [...nodeArgs('stdio'), MAIN, 'serve', '--stdio', ...flags, '--rls-user-id', HEAD_OFFICE_USER_ID], {
    env: serverEnv(),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  serverPid = child.pid!;
  const waiting = new Map<number, (line: { result?: { isError?: boolean }; error?: unknown }) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as { id?: number; result?: { isError?: boolean }; error?: unknown };
    if (typeof message.id === 'number') waiting.get(message.id)?.(message);
  });
  const send = (method: string, params: Record<string, unknown>) =>
    new Promise<{ result?: { isError?: boolean }; error?: unknown }>((resolve) => {
      const id = nextId++;
      waiting.set(id, (answer) => {
        waiting.delete(id);
        resolve(answer);
      });
      child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  const init = await send('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'edge-bench', version: '1.0.0' } });
  if (init.error) throw new Error(`initialize failed: ${JSON.stringify(init.error)}`);
  child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  const call = async (name: string, args: Record<string, unknown>) => {
    const answer = await send('tools/call', { name, arguments: args });
    if (answer.error || answer.result?.isError) throw new Error(`${name} failed: ${JSON.stringify(answer).slice(0, 300)}`);
  };
  await latency('stdio get_current_utc_date', () => call('get_current_utc_date', {}));
  await latency('stdio execute_sales_query (one row)', () => call('execute_sales_query', { postgresql_query: ONE_ROW }));
  child.stdin!.end();
  await new Promise((resolve) => child.once('exit', resolve));
}

const t = await createTestDatabase('server', { customers: 120 });
try {
  console.log(`era ${ERA}, ${CALLS} calls per latency run, ${SECONDS} s throughput, node ${process.version}`);
  const { url, child } = await startHttp(t.flags);
  serverPid = child.pid!;
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await latency('HTTP get_current_utc_date', () => post(url, agent, toolCall('get_current_utc_date', {})));
    await latency('HTTP execute_sales_query (one row)', () => post(url, agent, toolCall('execute_sales_query', { postgresql_query: ONE_ROW })));
    agent.destroy();
    await throughput(url, 8);
  } finally {
    await stop(child);
  }
  if (ERA === 'legacy') await stdioBench(t.flags);
} finally {
  await t.cleanup();
}
