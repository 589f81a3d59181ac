// The HTTP edge's request limit (issue 11: "HTTP 429 with Retry-After where the request is refused before the MCP
// layer"): spawned servers flooded with real HTTP requests; past the limit a caller gets 429, Retry-After and a
// JSON-RPC error, other callers are unaffected, the caller is served again after the window; two jwt-mode replicas
// on one Redis share one budget per verified `sub`. The per-tool limits stay off here (the harness default), so every refusal is the edge's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { exportSPKI, generateKeyPair } from 'jose';
import { NO_EMBEDDING_ENV, signTestToken } from './support/tokens.js';
import { Writable } from 'node:stream';
import { runConfigCheck } from '../src/cli/config-check.js';
import { loadConfig } from '../src/infra/config.js';
import { ConfigError } from '../src/infra/errors.js';
import { startHttpServer, type HttpServerProcess } from './mcp-harness.js';

const LIMIT = 10;
const WINDOW_SEC = 5;
const SEATTLE = STORES[0]!.managerId;

/**
 * One raw JSON-RPC ping over HTTP (2025 era: this stateless server needs no handshake), as `userId` (dev mode's
 * header) or as nobody; `headers` adds a bearer token (jwt mode).
 */
function ping(url: string, userId?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
      ...(userId === undefined ? {} : { 'x-rls-user-id': userId }),
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
}

async function statusOf(response: Promise<Response>): Promise<number> {
  const answer = await response;
  await answer.text();
  return answer.status;
}

/** A refused request: 429, Retry-After in whole seconds within the window, and a JSON-RPC error that says when. */
async function assertRefused(response: Response): Promise<number> {
  assert.equal(response.status, 429);
  const retryAfter = Number(response.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= WINDOW_SEC, `Retry-After ${response.headers.get('retry-after')}`);
  const body = (await response.json()) as { jsonrpc: string; error: { code: number; message: string } };
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.error.code, -32000);
  assert.match(body.error.message, new RegExp(`at most ${LIMIT} requests every ${WINDOW_SEC} s.*Try again in ${retryAfter} s`));
  return retryAfter;
}

const EDGE_ENV = { ...NO_EMBEDDING_ENV, ZAVA_EDGE_RATE_LIMIT: String(LIMIT), ZAVA_EDGE_RATE_LIMIT_WINDOW_SEC: String(WINDOW_SEC) };

test('config check shows the edge limit and the shutdown delay, and refuses bad values naming the variable', () => {
  const printed = (env: Record<string, string>) => {
    let out = '';
    const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => ((out += chunk.toString()), done()) });
    assert.equal(runConfigCheck(loadConfig({}, env), sink, env), 0);
    return JSON.parse(out.replace(/\nconfiguration is valid\n$/, '')) as Record<string, unknown>;
  };
  const effective = printed({ ZAVA_EDGE_RATE_LIMIT: '300', ZAVA_EDGE_RATE_LIMIT_WINDOW_SEC: '10', ZAVA_SHUTDOWN_DELAY_MS: '5000' });
  assert.deepEqual(effective['edgeLimit'], { requests: 300, windowSec: 10 });
  assert.equal(effective['shutdownDelayMs'], 5000);
  const defaults = printed({});
  assert.deepEqual(defaults['edgeLimit'], { requests: 1200, windowSec: 60 });
  assert.equal(defaults['shutdownDelayMs'], 0);
  for (const [name, value, message] of [
    ['ZAVA_EDGE_RATE_LIMIT', '-1', /ZAVA_EDGE_RATE_LIMIT must be 0 \(off\) or more/],
    ['ZAVA_EDGE_RATE_LIMIT_WINDOW_SEC', '0', /ZAVA_EDGE_RATE_LIMIT_WINDOW_SEC must be greater than 0/],
    ['ZAVA_SHUTDOWN_DELAY_MS', 'soon', /ZAVA_SHUTDOWN_DELAY_MS must be a number/],
  ] as const) {
    assert.throws(() => loadConfig({}, { [name]: value }), (error: unknown) => error instanceof ConfigError && message.test(error.message), `${name}=${value}`);
  }
});

describe('the HTTP edge request limit (server)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let t: TestDatabase;
  const servers: HttpServerProcess[] = [];
  before(async () => {
    t = await createTestDatabase('server', { customers: 40, embeddings: false });
  });
  after(async () => {
    for (const server of servers) await server.stop();
    await t?.cleanup();
  });

  test('in memory: a flood past the limit gets 429 + Retry-After; other callers are unaffected; served again after the window', { timeout: 60_000 }, async () => {
    const http = await startHttpServer(t.flags, EDGE_ENV);
    servers.push(http);
    // Find a window's start, so the whole flood falls in one window.
    const statuses = await Promise.all(Array.from({ length: LIMIT }, () => statusOf(ping(http.url, SEATTLE))));
    assert.deepEqual(statuses, Array(LIMIT).fill(200));
    const refused = await Promise.all(Array.from({ length: 5 }, () => ping(http.url, SEATTLE)));
    let retryAfter = 0;
    for (const response of refused) retryAfter = Math.max(retryAfter, await assertRefused(response));
    // Another identity, and a caller who names nobody (counted by address), have budgets of their own.
    assert.equal(await statusOf(ping(http.url, HEAD_OFFICE_USER_ID)), 200);
    assert.equal(await statusOf(ping(http.url)), 200);
    // The header is case-insensitive UUID text: the same manager in capitals is the same caller.
    assert.equal(await statusOf(ping(http.url, SEATTLE.toUpperCase())), 429);
    // Health and readiness are never limited (load balancers poll them).
    assert.equal((await fetch(new URL('/health', http.url))).status, 200);
    const metrics = await (await fetch(new URL('/metrics', http.url))).text();
    assert.match(metrics, /^zava_http_requests_limited_total\{[^}]*\} 6$/m, 'each 429 counted');
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 200));
    assert.equal(await statusOf(ping(http.url, SEATTLE)), 200, 'served again after the window');
  });

  test('jwt mode, two replicas on one Redis: one budget per verified sub across both', { timeout: 60_000 }, async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const key = { kid: 'edge-test', alg: 'ES256' as const, privateKey, jwk: {} };
    const bearer = async (sub: string) => ({
      authorization: `Bearer ${await signTestToken({ key, sub, claims: { roles: ['store_manager'], allowed_stores: [STORES[0]!.name] } })}`,
    });
    const env = {
      ...EDGE_ENV,
      ZAVA_AUTH: 'jwt',
      ZAVA_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
      REDIS_URL: 'redis://127.0.0.1:6379',
      ZAVA_RATE_LIMIT_PREFIX: `zava-edge-test-${process.pid}-${Date.now()}`,
    };
    const [a, b] = await Promise.all([startHttpServer(t.flags, env), startHttpServer(t.flags, env)]);
    servers.push(a, b);
    const alice = await bearer('alice');
    const half = LIMIT / 2;
    const first = await Promise.all([
      ...Array.from({ length: half }, () => statusOf(ping(a.url, undefined, alice))),
      ...Array.from({ length: half }, () => statusOf(ping(b.url, undefined, alice))),
    ]);
    assert.deepEqual(first, Array(LIMIT).fill(200));
    // The budget is spent across both: each replica refuses her next request, whatever x-rls-user-id she adds
    // (the key is the verified sub, not a header).
    await assertRefused(await ping(a.url, undefined, alice));
    await assertRefused(await ping(b.url, SEATTLE, alice));
    // Another sub with the same store and role has a budget of its own, on either replica.
    assert.equal(await statusOf(ping(b.url, undefined, await bearer('bob'))), 200);
    // A request without a valid token is refused by authentication (401) before it is counted against anyone.
    assert.equal(await statusOf(ping(a.url)), 401);
  });
});
