// jwt mode against a real OAuth 2.0 / OpenID Connect provider (issue 11): `oidc-provider` on a loopback port
// issues client-credentials access tokens as JWTs (ES256, audience mcp-server, the role claims added the way an
// IdP's claim mapping would); the server is pointed at its issuer and JWKS, and official SDK clients call tools.
// One backend: what is under test is the provider's tokens and discovery, not the data layer (auth-jwt.test.ts
// runs the identity × table matrix on both).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { Client as V2Client, ClientCredentialsProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { STORES } from '../src/data/stores.js';
import { type HttpServerProcess, startHttpServer } from './mcp-harness.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

import { NO_EMBEDDING_ENV, storesSeen } from './support/tokens.js';

const SEATTLE = STORES[0]!;

/** The claims each client's tokens carry: what an IdP's claim mapping (app roles, groups) would add. */
const CLIENT_CLAIMS: Record<string, Record<string, unknown>> = {
  'seattle-app': { roles: ['store_manager'], allowed_stores: [SEATTLE.name] },
  'hq-app': { roles: ['super_admin'] },
};

async function startProvider(): Promise<{ issuer: string; server: Server }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'oidc-test-1', alg: 'ES256', use: 'sig' };
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = (id: string) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  });
  const provider = new Provider(issuer, {
    clients: Object.keys(CLIENT_CLAIMS).map(client),
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://zava.example/mcp',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'mcp pii:read', audience: 'mcp-server', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    ttl: { ClientCredentials: 600 },
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => CLIENT_CLAIMS[token.clientId ?? ''] ?? {},
  });
  server.on('request', provider.callback());
  return { issuer, server };
}

async function clientCredentialsToken(issuer: string, clientId: string): Promise<string> {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientId}-secret`).toString('base64')}` },
    body: 'grant_type=client_credentials&scope=mcp',
  });
  const body = (await response.json()) as { access_token?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.access_token!;
}

describe('jwt mode with a real OIDC provider (oidc-provider, client credentials)', () => {
  let idp: { issuer: string; server: Server };
  let t: TestDatabase;
  let http: HttpServerProcess;

  before(async () => {
    idp = await startProvider();
    t = await createTestDatabase('embedded', { customers: 120, open: false }); // the spawned server opens it
    http = await startHttpServer(t.flags, {
      ...NO_EMBEDDING_ENV,
      ZAVA_AUTH: 'jwt',
      ZAVA_JWT_JWKS_URL: `${idp.issuer}/jwks`,
      ZAVA_JWT_ISSUER: idp.issuer,
      ZAVA_RATE_LIMIT_PER_MINUTE: '0',
    });
  });
  after(async () => {
    await http?.stop();
    idp?.server.closeAllConnections();
    idp?.server.close();
    await t?.cleanup();
  });

  test('a client-credentials token from the provider runs tools as its claims say (store manager: one store)', async () => {
    assert.deepEqual(await storesSeen(http.url, await clientCredentialsToken(idp.issuer, 'seattle-app')), [SEATTLE.storeId]);
  });

  test('the protected-resource metadata names the provider as the authorization server', async () => {
    const doc = (await (await fetch(`${new URL(http.url).origin}/.well-known/oauth-protected-resource/mcp`)).json()) as { authorization_servers: string[] };
    assert.deepEqual(doc.authorization_servers, [idp.issuer]);
  });

  test('the SDK client discovers the provider from the 401 and gets its own token (ClientCredentialsProvider)', async () => {
    const authProvider = new ClientCredentialsProvider({ clientId: 'hq-app', clientSecret: 'hq-app-secret', scope: 'mcp', expectedIssuer: idp.issuer });
    const client = new V2Client({ name: 'zava-oidc-test', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(http.url), { authProvider }));
    try {
      const raw = await client.callTool({ name: 'execute_sales_query', arguments: { postgresql_query: 'SELECT count(DISTINCT store_id) FROM retail.orders' } });
      assert.notEqual(raw.isError, true, JSON.stringify(raw.content));
      assert.equal(Number((raw.structuredContent as { r: unknown[][] }).r[0]![0]), STORES.length);
    } finally {
      await client.close();
    }
  });
});
