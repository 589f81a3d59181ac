// Identity beyond the HTTP edge (issue 11): dev mode refused off loopback; rate limits per identity and tool,
// shared through the Redis service by two server processes on one database; jwt mode on stdio, with the token
// verified at start and again when it expires.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { importPKCS8 } from 'jose';
import { STORES } from '../src/data/stores.js';
import { runCli } from './support/cli.js';
import { createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { connectStdio, query, startHttpServer, textOf, type HttpServerProcess } from './mcp-harness.js';
import { connectWithToken, NO_EMBEDDING_ENV, rawToolCall, signTestToken, type SigningKey } from './support/tokens.js';

const SEATTLE = STORES[0]!;
const BELLEVUE = STORES[1]!;

test('dev mode on a non-loopback interface is refused at start, saying how to configure tokens', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'zava-devbind-'));
  const result = await runCli(['serve', '--host', '0.0.0.0', '--port', '0', '--data-dir', path.join(dir, 'pglite')], { ZAVA_LOG_FORMAT: 'json' }).finally(() =>
    rm(dir, { recursive: true, force: true }),
  );
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /refusing to serve dev identity mode on 0\.0\.0\.0/);
  assert.match(result.stderr, /ZAVA_AUTH=jwt/);
  assert.match(result.stderr, /ZAVA_ALLOW_INSECURE_DEV_AUTH/);
});

const redisSkip = await (async () => {
  const { createConnection } = await import('node:net');
  return new Promise<string | false>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port: 6379 }, () => {
      socket.end();
      resolve(false);
    });
    socket.once('error', (error) => resolve(process.env.ZAVA_REQUIRE_SERVICES === '1' ? false : `Redis unavailable: ${error.message}`));
  });
})();
const pgSkip = (await serverUnavailableReason()) ?? false;

describe('rate limits and stdio jwt on the server backend', { skip: pgSkip || redisSkip }, () => {
  let t: TestDatabase;
  let a: HttpServerProcess;
  let b: HttpServerProcess;
  let keys: string;
  const cliToken = async (sub: string, store: string, ttl = '10m') => {
    const result = await runCli(['auth', 'token', '--key', path.join(keys, 'private.pem'), '--sub', sub, '--role', 'store_manager', '--store', store, '--ttl', ttl]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };

  before(async () => {
    t = await createTestDatabase('server', { customers: 120 });
    keys = path.join(await mkdtemp(path.join(tmpdir(), 'zava-replicas-')), 'keys');
    const keygen = await runCli(['auth', 'keygen', '--out', keys]);
    assert.equal(keygen.code, 0, keygen.stderr);
    // Two jwt-mode replicas on one database, sharing Redis under a prefix of this run only.
    const env = {
      ...NO_EMBEDDING_ENV,
      ZAVA_AUTH: 'jwt',
      ZAVA_JWT_PUBLIC_KEY: path.join(keys, 'public.pem'),
      REDIS_URL: 'redis://127.0.0.1:6379',
      ZAVA_RATE_LIMIT_PER_MINUTE: '3',
      ZAVA_RATE_LIMIT_BURST: '0',
      ZAVA_RATE_LIMIT_PREFIX: `zava-test-${randomBytes(6).toString('hex')}`,
    };
    [a, b] = await Promise.all([startHttpServer(t.flags, env), startHttpServer(t.flags, env)]);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await t?.cleanup();
    if (keys) await rm(path.dirname(keys), { recursive: true, force: true });
  });

  test('the limit is shared by two replicas through Redis, per identity and tool; a limited call never reaches the database', async () => {
    const alice = await cliToken('alice', SEATTLE.name);
    const seattleA = await connectWithToken(a.url, alice);
    const seattleB = await connectWithToken(b.url, alice, {}, 'v1');
    const bellevueA = await connectWithToken(a.url, await cliToken('bob', BELLEVUE.name));
    try {
      for (const client of [seattleA, seattleB, seattleA]) {
        const answer = await query(client, 'SELECT count(*) FROM retail.orders');
        assert.equal(answer.isError, false, answer.text);
      }
      // The fourth call in the minute, on the other replica: refused, with the time to wait, before any SQL.
      const started = Date.now();
      const limited = await query(seattleB, 'SELECT pg_sleep(3)');
      assert.ok(Date.now() - started < 2_500, 'the limited call did not run its 3 s query');
      assert.equal(limited.isError, true);
      assert.equal(limited.result.code, 'RATE_LIMITED');
      assert.match(limited.result.err!, /rate limit reached for execute_sales_query: at most 3 calls a minute.*Try again in \d+ s/);
      assert.deepEqual(limited.result.r, []);
      // Another identity, and another tool of the same identity, have their own budgets.
      assert.equal((await query(bellevueA, 'SELECT count(*) FROM retail.orders')).isError, false);
      const date = await seattleA.callTool({ name: 'get_current_utc_date', arguments: {} });
      assert.equal(date.isError, undefined, textOf(date));
      const schemas = await seattleB.callTool({ name: 'get_multiple_table_schemas', arguments: { table_names: ['retail.stores'] } });
      assert.notEqual(schemas.isError, true, textOf(schemas));
    } finally {
      await Promise.all([seattleA.close(), seattleB.close(), bellevueA.close()]);
    }
  });

  test('revocation by jti and by subject reaches both replicas within 5 s (auth revoke)', async () => {
    const carol = await cliToken('carol', SEATTLE.name);
    const carolLater = await cliToken('carol', SEATTLE.name);
    const dave = await cliToken('dave', BELLEVUE.name);
    const status = async (url: string, token: string) => (await rawToolCall(url, { authorization: `Bearer ${token}` }, 'SELECT 1')).status;
    for (const url of [a.url, b.url]) assert.equal(await status(url, carol), 200);
    const payload = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string; iat: number };
    const waitRefused = async (token: string) => {
      const started = Date.now();
      for (const url of [a.url, b.url]) {
        while ((await status(url, token)) !== 401) {
          assert.ok(Date.now() - started < 5_000, `revocation in force on ${url} within 5 s`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const byJti = await runCli(['auth', 'revoke', '--jti', payload(carol).jti, ...t.flags]);
    assert.equal(byJti.code, 0, byJti.stderr);
    await waitRefused(carol);
    const challenge = (await rawToolCall(a.url, { authorization: `Bearer ${carol}` })).headers.get('www-authenticate') ?? '';
    assert.match(challenge, /revoked/);
    // Another token of the same subject is untouched by a jti revocation.
    assert.equal(await status(a.url, carolLater), 200);
    // Every token of dave issued before now (iat is in whole seconds: revoke from the next second).
    const before = new Date((payload(dave).iat + 1) * 1000).toISOString();
    const bySub = await runCli(['auth', 'revoke', '--sub', 'dave', '--before', before, ...t.flags]);
    assert.equal(bySub.code, 0, bySub.stderr);
    await waitRefused(dave);
    // The query role cannot read the list (another subject: carol's calls above used up her rate limit).
    const peek = await connectWithToken(a.url, await cliToken('erin', SEATTLE.name));
    try {
      const answer = await query(peek, 'SELECT count(*) FROM zava_auth.revocations');
      assert.equal(answer.isError, true);
      assert.match(answer.result.err!, /permission denied|refused/);
    } finally {
      await peek.close();
    }
  });

  test('stdio in jwt mode: the token decides the identity; an invalid token stops the start; an expired one is re-read from its file', async () => {
    // The key pair and the first token from the CLI, as a person trying jwt mode would make them.
    const dir = await mkdtemp(path.join(tmpdir(), 'zava-stdio-jwt-'));
    const keygen = await runCli(['auth', 'keygen', '--out', path.join(dir, 'keys')]);
    assert.equal(keygen.code, 0, keygen.stderr);
    const pem = path.join(dir, 'keys', 'public.pem');
    const privatePem = path.join(dir, 'keys', 'private.pem');
    const key: SigningKey = { kid: 'cli', alg: 'ES256', privateKey: await importPKCS8(await readFile(privatePem, 'utf8'), 'ES256'), jwk: {} };
    const tokenFile = path.join(dir, 'token');
    const env = { ...NO_EMBEDDING_ENV, ZAVA_AUTH: 'jwt', ZAVA_JWT_PUBLIC_KEY: pem, ZAVA_TOKEN_FILE: tokenFile, ZAVA_JWT_CLOCK_TOLERANCE_SEC: '0', ZAVA_RATE_LIMIT_PER_MINUTE: '0' };

    await writeFile(tokenFile, await signTestToken({ key, sub: 'stdio-user', claims: { roles: ['store_manager'] }, expiresIn: -10 }));
    const refused = await runCli(['serve', '--stdio', ...t.flags], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /stdio token .* was refused: .*expired/);

    const cliToken = await runCli(['auth', 'token', '--key', privatePem, '--sub', 'stdio-user', '--role', 'store_manager', '--store', SEATTLE.name, '--ttl', '20s']);
    assert.equal(cliToken.code, 0, cliToken.stderr);
    await writeFile(tokenFile, cliToken.stdout.trim());
    const stdio = await connectStdio(t.flags, undefined, env, 'v1');
    try {
      const answer = await query(stdio.client, 'SELECT DISTINCT store_id FROM retail.orders ORDER BY 1');
      assert.equal(answer.isError, false, `${answer.text}\n${stdio.stderr()}`);
      assert.deepEqual(answer.result.r, [[SEATTLE.storeId]]);
      // Wait for the CLI token's own expiry (20 s from its making, part of which the start took).
      const exp = (JSON.parse(Buffer.from(cliToken.stdout.trim().split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 500));
      const expired = await query(stdio.client, 'SELECT 1');
      assert.equal(expired.isError, true);
      assert.equal(expired.result.code, 'AUTHORIZATION_ERROR');
      await writeFile(tokenFile, await signTestToken({ key, sub: 'stdio-user', claims: { roles: ['store_manager'], allowed_stores: [BELLEVUE.storeId] }, expiresIn: 600 }));
      let again = await query(stdio.client, 'SELECT DISTINCT store_id FROM retail.orders ORDER BY 1');
      for (let i = 0; i < 20 && again.isError; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        again = await query(stdio.client, 'SELECT DISTINCT store_id FROM retail.orders ORDER BY 1');
      }
      assert.equal(again.isError, false, again.text);
      assert.deepEqual(again.result.r, [[BELLEVUE.storeId]]);
    } finally {
      await stdio.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
