// `zava-mcp health [--url URL] [--detail]`: asks a running server whether it is ready (GET /ready) and prints the
// answer for a person; exits 0 when ready, 1 otherwise, so a container's HEALTHCHECK or a script can use it as is.
// --detail adds the operators' view (GET /health?detail=1: pools, slowest queries, cache, circuit, replicas); in
// jwt mode that view wants a super_admin token, taken from ZAVA_TOKEN as the stdio client's is.
import type { Config } from '../infra/config.js';
import { DataLoadError } from '../infra/errors.js';
import type { ReadinessReport } from '../infra/health.js';

const TIMEOUT_MS = 5_000;

/** The /ready URL of a server given as its base, its /mcp endpoint or /ready itself; by default this config's. */
export function readinessUrl(config: Pick<Config, 'host' | 'port'>, url?: string): URL {
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new DataLoadError(`--url must be an http(s) URL such as http://127.0.0.1:8000 (got "${url}")`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DataLoadError(`--url must be an http(s) URL (got "${url}")`);
    return new URL('/ready', parsed.origin);
  }
  // A server listening on every interface is asked on loopback.
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return new URL(`http://${host}:${config.port}/ready`);
}

export async function runHealth(
  config: Config,
  url: string | undefined,
  out: NodeJS.WritableStream = process.stdout,
  options: { detail?: boolean; token?: string | undefined } = {},
): Promise<number> {
  const target = readinessUrl(config, url);
  let response: Response;
  try {
    response = await fetch(target, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    out.write(`zava-mcp at ${target.origin}: not answering (${cause === 'TimeoutError' ? `no answer in ${TIMEOUT_MS / 1000} s` : cause})\n`);
    return 1;
  }
  let report: ReadinessReport;
  try {
    report = (await response.json()) as ReadinessReport;
  } catch {
    out.write(`zava-mcp at ${target.origin}: HTTP ${response.status}, not a zava-mcp readiness answer\n`);
    return 1;
  }
  out.write(`zava-mcp at ${target.origin}: ${report.status}\n`);
  for (const [name, component] of Object.entries(report.components ?? {})) {
    out.write(`  ${name.padEnd(12)} ${component.status.padEnd(8)} ${`${component.latencyMs} ms`.padStart(9)}  ${component.detail ?? ''}\n`);
  }
  const ready = response.status === 200 && report.status === 'ready';
  if (!options.detail) return ready ? 0 : 1;
  return (await printDetail(new URL('/health?detail=1', target.origin), options.token, out)) && ready ? 0 : 1;
}

/** The operators' view as indented JSON; false (with the reason printed) when it could not be read. */
async function printDetail(url: URL, token: string | undefined, out: NodeJS.WritableStream): Promise<boolean> {
  let response: Response;
  try {
    response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    out.write(`detail: not answering (${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name})\n`);
    return false;
  }
  if (response.status === 401 || response.status === 403) {
    out.write(`detail: refused (HTTP ${response.status}): in jwt mode the detailed view needs a super_admin token in ZAVA_TOKEN\n`);
    return false;
  }
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!response.ok || !body) {
    out.write(`detail: HTTP ${response.status}, not a zava-mcp health answer\n`);
    return false;
  }
  const { status: _status, ...detail } = body;
  out.write(`detail:\n${JSON.stringify(detail, null, 2).replace(/^/gm, '  ')}\n`);
  return true;
}
