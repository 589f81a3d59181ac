// jwt mode end to end (issue 11): a spawned server verifying bearer tokens against a JWKS endpoint the test
// controls, official SDK clients sending the tokens. Every refusal case is its own test (401 with the
// WWW-Authenticate challenge, no tool run); the identity × table matrix per role; narrowing and impersonation
// with x-rls-user-id; key rotation; the JWKS endpoint down; the protected-resource metadata.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS, STORES } from '../src/data/stores.js';
import { backendsUnderTest, createTestDatabase, type TestDatabase } from './support/databases.js';
import { query, startHttpServer, type HttpServerProcess } from './mcp-harness.js';
import { runCli } from './support/cli.js';
import { normalize, PROBE, truthSql } from './support/rls-probe.js';
import { AUDIENCE, connectWithToken, ISSUER, JwksServer, newSigningKey, NO_EMBEDDING_ENV, rawToolCall, signTestToken, storesSeen, unsignedToken, type SigningKey } from './support/tokens.js';

const SEATTLE = STORES[0]!;
const BELLEVUE = STORES[1]!;
const SPOKANE = STORES[3]!;
const PUGET_SOUND = STORES.filter((s) => s.region === 'Puget Sound').map((s) => s.storeId);

/** The token-holders of the matrix: every role, allowed_stores given each of the three accepted ways. */
const ROLES: { label: string; claims: Record<string, unknown>; storeIds: readonly number[] }[] = [
  { label: 'super_admin', claims: { roles: ['super_admin'] }, storeIds: STORES.map((s) => s.storeId) },
  { label: 'regional_manager (Puget Sound)', claims: { roles: ['regional_manager'], allowed_regions: ['Puget Sound'] }, storeIds: PUGET_SOUND },
  {
    label: 'regional_manager (Eastern Washington + Online)',
    claims: { roles: ['regional_manager'], allowed_regions: REGIONAL_MANAGERS[1]!.regions },
    storeIds: STORES.filter((s) => REGIONAL_MANAGERS[1]!.regions.includes(s.region)).map((s) => s.storeId),
  },
  { label: 'store_manager by name', claims: { roles: ['store_manager'], allowed_stores: [SEATTLE.name] }, storeIds: [SEATTLE.storeId] },
  { label: 'store_manager by id', claims: { roles: 'store_manager', allowed_stores: [SPOKANE.storeId] }, storeIds: [SPOKANE.storeId] },
  { label: 'store_manager by manager UUID, two stores', claims: { roles: ['store_manager'], allowed_stores: [BELLEVUE.managerId, SEATTLE.managerId] }, storeIds: [SEATTLE.storeId, BELLEVUE.storeId] },
];

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`jwt mode on the ${kind} backend`, { skip }, () => {
    let t: TestDatabase;
    let http: HttpServerProcess;
    let jwks: JwksServer;
    let es: SigningKey;
    let rs: SigningKey;
    const truth = new Map<string, unknown[]>();
    const token = (claims: Record<string, unknown>, extra: Partial<Parameters<typeof signTestToken>[0]> = {}) =>
      signTestToken({ key: es, sub: 'tester', claims, ...extra });

    before(async () => {
      es = await newSigningKey('ES256');
      rs = await newSigningKey('RS256');
      jwks = await JwksServer.start([es.jwk, rs.jwk]);
      t = await createTestDatabase(kind, { customers: 120 });
      for (const role of ROLES) truth.set(role.label, normalize((await t.db.ownerQuery(truthSql(role.storeIds))).rows[0]!));
      if (kind === 'embedded') await t.db.close();
      http = await startHttpServer(t.flags, {
        ...NO_EMBEDDING_ENV,
        ZAVA_AUTH: 'jwt',
        ZAVA_JWT_JWKS_URL: jwks.url,
        ZAVA_JWT_JWKS_COOLDOWN_MS: '100',
        ZAVA_JWT_JWKS_TIMEOUT_MS: '2000',
        ZAVA_JWT_CLOCK_TOLERANCE_SEC: '5',
        ZAVA_OAUTH_AUTHORIZATION_SERVERS: 'https://login.example.com/tenant',
        ZAVA_RATE_LIMIT_PER_MINUTE: '0',
      });
    });
    after(async () => {
      await http?.stop();
      await jwks?.close();
      await t?.cleanup();
    });

    async function expectRefused(headers: Record<string, string>, description: RegExp): Promise<void> {
      const response = await rawToolCall(http.url, headers, 'SELECT count(*) FROM retail.orders');
      assert.equal(response.status, 401);
      const challenge = response.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer /);
      assert.match(challenge, /error="invalid_token"/);
      assert.match(challenge, new RegExp(`resource_metadata="${new URL(http.url).origin}/\\.well-known/oauth-protected-resource/mcp"`));
      const body = await response.text();
      assert.doesNotMatch(body, /"result"/, 'no tool ran');
      assert.match(decodeURIComponent(challenge + body), description);
    }

    test('no Authorization header → 401 with the challenge', () => expectRefused({}, /./));
    test('a non-Bearer scheme → 401', () => expectRefused({ authorization: 'Basic dXNlcjpwYXNz' }, /./));
    test('a token signed by an unknown key with a known kid (bad signature) → 401', async () => {
      const other = await newSigningKey('ES256');
      await expectRefused({ authorization: `Bearer ${await signTestToken({ key: other, kid: es.kid, sub: 'x', claims: { roles: ['super_admin'] } })}` }, /signature/);
    });
    test('a tampered payload → 401', async () => {
      const good = await token({ roles: ['store_manager'], allowed_stores: [SEATTLE.storeId] });
      const [h, , s] = good.split('.');
      const forged = Buffer.from(JSON.stringify({ sub: 'tester', roles: ['super_admin'], iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
      await expectRefused({ authorization: `Bearer ${h}.${forged}.${s}` }, /signature/);
    });
    test('the wrong issuer → 401', async () => expectRefused({ authorization: `Bearer ${await token({ roles: ['super_admin'] }, { issuer: 'someone-else' })}` }, /issuer/));
    test('the wrong audience → 401', async () => expectRefused({ authorization: `Bearer ${await token({ roles: ['super_admin'] }, { audience: 'another-api' })}` }, /audience/));
    test('an expired token (past the clock tolerance) → 401', async () => expectRefused({ authorization: `Bearer ${await token({ roles: ['super_admin'] }, { expiresIn: -60 })}` }, /expired/));
    test('a token not valid yet (nbf past the clock tolerance) → 401', async () => expectRefused({ authorization: `Bearer ${await token({ roles: ['super_admin'] }, { notBefore: 120 })}` }, /not valid yet/));
    test('a token without exp → 401', async () => expectRefused({ authorization: `Bearer ${await token({ roles: ['super_admin'] }, { expiresIn: null })}` }, /exp/));
    test('an unknown kid → 401', async () => expectRefused({ authorization: `Bearer ${await token({ roles: ['super_admin'] }, { kid: 'nobody-knows-me' })}` }, /unknown kid|key this server does not know/));
    test('alg none → 401', () => expectRefused({ authorization: `Bearer ${unsignedToken({ sub: 'x', roles: ['super_admin'] })}` }, /algorithm|malformed/));
    test('HS256 signed with the public key as the secret → 401', async () => {
      const { SignJWT } = await import('jose');
      const secret = new TextEncoder().encode(JSON.stringify(es.jwk));
      const hs = await new SignJWT({ roles: ['super_admin'] })
        .setProtectedHeader({ alg: 'HS256', kid: es.kid })
        .setSubject('x')
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('10m')
        .sign(secret);
      await expectRefused({ authorization: `Bearer ${hs}` }, /algorithm/);
    });
    test('garbage instead of a JWT → 401', () => expectRefused({ authorization: 'Bearer not.a.jwt' }, /malformed|could not be verified/));

    test('within the clock tolerance, an just-expired token still works; RS256 works too', async () => {
      const fresh = await signTestToken({ key: rs, sub: 'rs', claims: { roles: ['super_admin'] }, expiresIn: -2 });
      const client = await connectWithToken(http.url, fresh);
      try {
        const answer = await query(client, 'SELECT count(*) FROM retail.stores');
        assert.equal(answer.isError, false, answer.text);
        assert.equal(Number(answer.result.r[0]![0]), STORES.length);
      } finally {
        await client.close();
      }
    });

    test('protected-resource metadata (RFC 9728), plain and path-suffixed', async () => {
      const origin = new URL(http.url).origin;
      for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
        const response = await fetch(`${origin}${path}`);
        assert.equal(response.status, 200, path);
        const doc = (await response.json()) as Record<string, unknown>;
        assert.equal(doc.resource, http.url);
        assert.deepEqual(doc.authorization_servers, ['https://login.example.com/tenant']);
        assert.deepEqual(doc.bearer_methods_supported, ['header']);
      }
    });

    for (const [index, role] of ROLES.entries()) {
      test(`identity × table through jwt: ${role.label} sees exactly its stores (${index % 2 === 0 ? 'v2' : 'v1'} client)`, async () => {
        const client = await connectWithToken(http.url, await token(role.claims, { sub: `matrix-${index}` }), {}, index % 2 === 0 ? 'v2' : 'v1');
        try {
          const answer = await query(client, PROBE);
          assert.equal(answer.isError, false, answer.text);
          assert.deepEqual(normalize(answer.result.r[0]!), truth.get(role.label));
        } finally {
          await client.close();
        }
      });
    }

    test('claims that grant nothing, or name unknown stores or regions, get a clear AUTHORIZATION_ERROR and no data', async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{}, /grants no role/],
        [{ roles: ['auditor'] }, /grants no role/],
        [{ roles: ['store_manager'] }, /grants no store/],
        [{ roles: ['regional_manager'], allowed_stores: [1] }, /grants no store/],
        [{ roles: ['store_manager'], allowed_stores: ['Zava Retail Atlantis'] }, /unknown store "Zava Retail Atlantis"/],
        [{ roles: ['store_manager'], allowed_stores: [99] }, /unknown store "99"/],
        [{ roles: ['regional_manager'], allowed_regions: ['Mars'] }, /unknown region/],
      ];
      for (const [claims, pattern] of cases) {
        const client = await connectWithToken(http.url, await token(claims));
        try {
          const answer = await query(client, 'SELECT count(*) FROM retail.orders');
          assert.equal(answer.isError, true, JSON.stringify(claims));
          assert.equal(answer.result.code, 'AUTHORIZATION_ERROR');
          assert.match(answer.result.err!, pattern);
          assert.deepEqual(answer.result.r, []);
        } finally {
          await client.close();
        }
      }
    });

    test('x-rls-user-id narrows a wider token: a Puget Sound regional token as the Seattle manager sees Seattle only', async () => {
      const wide = await token({ roles: ['regional_manager'], allowed_regions: ['Puget Sound'] });
      assert.deepEqual(await storesSeen(http.url, wide), PUGET_SOUND);
      assert.deepEqual(await storesSeen(http.url, wide, { 'x-rls-user-id': SEATTLE.managerId }), [SEATTLE.storeId]);
    });

    test('impersonation: a Seattle token with Bellevue\'s (or head office\'s) x-rls-user-id sees nothing of it', async () => {
      for (const other of [BELLEVUE.managerId, HEAD_OFFICE_USER_ID, REGIONAL_MANAGERS[0]!.managerId]) {
        const client = await connectWithToken(http.url, await token({ roles: ['store_manager'], allowed_stores: [SEATTLE.storeId] }), { 'x-rls-user-id': other });
        try {
          const answer = await query(client, 'SELECT count(*) FROM retail.orders');
          assert.equal(answer.isError, true, answer.text);
          assert.equal(answer.result.code, 'AUTHORIZATION_ERROR');
          assert.match(answer.result.err!, /outside what your token allows/);
          assert.deepEqual(answer.result.r, []);
          const schemas = await client.callTool({ name: 'get_multiple_table_schemas', arguments: { table_names: ['retail.orders'] } });
          assert.equal(schemas.isError, true);
          assert.equal((schemas.structuredContent as { code?: string }).code, 'AUTHORIZATION_ERROR');
        } finally {
          await client.close();
        }
      }
    });

    test('the operators\' health view needs a super_admin token; plain /health and /ready need none', async () => {
      const detail = new URL('/health?detail=1', http.url);
      assert.equal((await fetch(new URL('/health', http.url))).status, 200);
      assert.ok([200, 503].includes((await fetch(new URL('/ready', http.url))).status));
      const anonymous = await fetch(detail);
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer /);
      const manager = await fetch(detail, { headers: { authorization: `Bearer ${await token({ roles: ['store_manager'], allowed_stores: [SEATTLE.storeId] })}` } });
      assert.equal(manager.status, 403);
      const admin = await fetch(detail, { headers: { authorization: `Bearer ${await token({ roles: ['super_admin'] })}` } });
      assert.equal(admin.status, 200);
      assert.ok('slowQueries' in ((await admin.json()) as Record<string, unknown>));
      // `zava-mcp health --detail` asks with ZAVA_TOKEN: refused without one or with a manager's, shown with head office's.
      const cli = (token?: string) => runCli(['health', '--url', http.url, '--detail'], token ? { ZAVA_TOKEN: token } : {});
      for (const refused of [await cli(), await cli(await token({ roles: ['store_manager'], allowed_stores: [SEATTLE.storeId] }))]) {
        assert.equal(refused.code, 1, refused.stdout + refused.stderr);
        assert.match(refused.stdout, /detail: refused \(HTTP 40[13]\): in jwt mode the detailed view needs a super_admin token in ZAVA_TOKEN/);
        assert.doesNotMatch(refused.stdout, /slowQueries/);
      }
      const shown = await cli(await token({ roles: ['super_admin'] }));
      assert.match(shown.stdout, /\ndetail:\n[\s\S]*"slowQueries": \{/, shown.stdout + shown.stderr);
    });

    test('personal data: the token\'s pii:read decides, for every role; narrowing to head office does not add it', async () => {
      const emails = async (bearer: string, headers: Record<string, string> = {}) => {
        const client = await connectWithToken(http.url, bearer, headers);
        try {
          const answer = await query(client, 'SELECT email FROM retail.customers ORDER BY customer_id LIMIT 3');
          assert.equal(answer.isError, false, answer.text);
          return answer.result.r.map((row) => String(row[0]));
        } finally {
          await client.close();
        }
      };
      const masked = /^.\*\*\*@/;
      const admin = await emails(await token({ roles: ['super_admin'] }));
      assert.ok(admin.length === 3 && admin.every((e) => masked.test(e)), `super_admin without pii:read: ${admin.join(', ')}`);
      const cleared = await emails(await token({ roles: ['super_admin'], scope: 'openid pii:read' }));
      assert.ok(cleared.every((e) => !masked.test(e) && e.includes('@')), `with pii:read in scope: ${cleared.join(', ')}`);
      const seattle = await emails(await token({ roles: ['store_manager'], allowed_stores: [SEATTLE.storeId], permissions: ['pii:read'] }));
      assert.ok(seattle.every((e) => !masked.test(e)), 'a store manager with pii:read in permissions');
      const narrowed = await emails(await token({ roles: ['super_admin'] }), { 'x-rls-user-id': HEAD_OFFICE_USER_ID });
      assert.ok(narrowed.every((e) => masked.test(e)), 'narrowing to the head-office UUID (pii in dev mode) adds nothing');
    });

    test('key rotation: a token signed by a key published after start is accepted (unknown kid → JWKS fetched again)', async () => {
      const rotated = await newSigningKey('ES256');
      jwks.keys = [rotated.jwk, es.jwk];
      await new Promise((resolve) => setTimeout(resolve, 150)); // past the test's JWKS cooldown
      const client = await connectWithToken(http.url, await signTestToken({ key: rotated, sub: 'rotated', claims: { roles: ['super_admin'] } }));
      try {
        const answer = await query(client, 'SELECT count(*) FROM retail.stores');
        assert.equal(answer.isError, false, answer.text);
      } finally {
        await client.close();
      }
    });

    test('JWKS endpoint down: cached keys keep working, a new kid is refused with 401 (no hang)', async () => {
      jwks.down = true;
      try {
        await new Promise((resolve) => setTimeout(resolve, 150));
        const unknown = await newSigningKey('ES256');
        const started = Date.now();
        await expectRefused({ authorization: `Bearer ${await signTestToken({ key: unknown, sub: 'x', claims: { roles: ['super_admin'] } })}` }, /./);
        assert.ok(Date.now() - started < 5_000, 'refused within the JWKS timeout');
        const client = await connectWithToken(http.url, await token({ roles: ['super_admin'] }));
        try {
          const answer = await query(client, 'SELECT count(*) FROM retail.stores');
          assert.equal(answer.isError, false, answer.text);
        } finally {
          await client.close();
        }
      } finally {
        jwks.down = false;
      }
    });

    test('the server logs no token', () => {
      assert.doesNotMatch(http.stderr(), /eyJ[A-Za-z0-9_-]{10,}\./);
    });
  });
}
