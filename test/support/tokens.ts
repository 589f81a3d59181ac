// Hand-signed tokens and a JWKS endpoint the tests control (rotation, outage), plus SDK clients that send a
// bearer token. Real keys, real signatures, a real HTTP endpoint on loopback: nothing mocked.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import assert from 'node:assert/strict';
import { query, wrap, type Client, type ClientKind } from '../mcp-harness.js';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'RS256';
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function newSigningKey(alg: 'ES256' | 'RS256' = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `k-${randomUUID().slice(0, 8)}`;
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface TokenOptions {
  readonly key: SigningKey;
  readonly claims?: Record<string, unknown>;
  readonly sub?: string | undefined;
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
  /** Seconds from now; negative for an expired token; null for none. */
  readonly expiresIn?: number | null;
  readonly notBefore?: number | undefined;
  readonly kid?: string | undefined;
}

/**
 * For suites that never search: an embedding provider that refuses at once, so a spawned server starts without
 * embedding the catalog (it logs that search is unavailable) instead of spending the local model's minute on it.
 */
export const NO_EMBEDDING_ENV: Readonly<Record<string, string>> = { ZAVA_EMBEDDING_PROVIDER: 'ollama', OLLAMA_HOST: 'http://127.0.0.1:9', ZAVA_EMBEDDING_MAX_RETRIES: '0' };

export const ISSUER = 'zava-auth';
export const AUDIENCE = 'mcp-server';

export async function signTestToken(options: TokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ ...options.claims })
    .setProtectedHeader({ alg: options.key.alg, kid: options.kid ?? options.key.kid, typ: 'JWT' })
    .setIssuedAt()
    .setJti(randomUUID())
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE);
  if (options.sub !== undefined) jwt = jwt.setSubject(options.sub);
  if (options.expiresIn !== null) jwt = jwt.setExpirationTime(now + (options.expiresIn ?? 600));
  if (options.notBefore !== undefined) jwt = jwt.setNotBefore(now + options.notBefore);
  return jwt.sign(options.key.privateKey);
}

/** An unsigned token (alg "none"), as an attacker would send it. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, exp: now + 600, iat: now, ...claims })}.`;
}

/** A JWKS endpoint on loopback whose keys the test sets, and which can be made to fail. */
export class JwksServer {
  keys: JWK[] = [];
  down = false;
  fetches = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(keys: JWK[]): Promise<JwksServer> {
    let self: JwksServer | undefined;
    const server = createServer((req, res) => {
      self!.fetches++;
      if (self!.down) {
        res.writeHead(503).end('down');
        return;
      }
      const body = JSON.stringify({ keys: self!.keys });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new JwksServer(server, `http://127.0.0.1:${port}/jwks`);
    self.keys = keys;
    return self;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const CLIENT_INFO = { name: 'zava-mcp-auth-tests', version: '1.0.0' };

/** An official SDK client over Streamable HTTP that sends `Authorization: Bearer <token>` (and any extra headers). */
export async function connectWithToken(url: string, token: string, extraHeaders: Record<string, string> = {}, kind: ClientKind = 'v2'): Promise<Client> {
  const headers = { authorization: `Bearer ${token}`, ...extraHeaders };
  if (kind === 'v1') {
    const client = new V1Client(CLIENT_INFO);
    await client.connect(new V1StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
    return wrap('v1', client);
  }
  const client = new V2Client(CLIENT_INFO, { versionNegotiation: { mode: 'auto' } });
  await client.connect(new V2StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return wrap('v2', client);
}

/** One raw JSON-RPC tools/call over HTTP (2025 era, no handshake needed by this stateless server). */
export async function rawToolCall(url: string, headers: Record<string, string>, sql = 'SELECT 1'): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'execute_sales_query', arguments: { postgresql_query: sql } } }),
  });
}

/** The stores whose orders a token (and extra headers) sees, through execute_sales_query; fails on a tool error. */
export async function storesSeen(url: string, token: string, extraHeaders: Record<string, string> = {}): Promise<number[]> {
  const client = await connectWithToken(url, token, extraHeaders);
  try {
    const answer = await query(client, 'SELECT DISTINCT store_id FROM retail.orders ORDER BY 1');
    assert.equal(answer.isError, false, answer.text);
    return answer.result.r.map((row) => Number(row[0]));
  } finally {
    await client.close();
  }
}
