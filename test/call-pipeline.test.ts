// The call pipeline in-process (issue 11, for #8): identity → rate limit → tool → error mapping → listeners, on a
// real embedded database and the real in-memory limiter; and claims → identity, which the RLS context signs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_OFFICE_USER_ID, STORES } from '../src/data/stores.js';
import { CONTEXT_REUSE_MS, signContext, signContextReused } from '../src/db/context.js';
import { fairShareKey } from '../src/db/types.js';
import { AccessDeniedError } from '../src/infra/errors.js';
import { createLogger } from '../src/infra/logger.js';
import { InFlight } from '../src/protocol/context.js';
import { CallPipeline, devIdentities, jwtIdentities, type CallRecord } from '../src/protocol/pipeline.js';
import { identityFromClaims, StoreDirectory, subjectUuid, type StoreEntry } from '../src/security/claims.js';
import { createRateLimiter } from '../src/security/rate-limit.js';
import { RevocationList, revocationInsert } from '../src/security/revocation.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

const SEATTLE = STORES[0]!;
const ENTRIES: StoreEntry[] = STORES.map((s) => ({ storeId: s.storeId, name: s.name, managerId: s.managerId, region: s.region }));

describe('claims → identity', () => {
  test('each role grants through its own claim; the identity signs into the RLS context', () => {
    const admin = identityFromClaims({ sub: 'a', roles: ['super_admin'] }, ENTRIES);
    assert.deepEqual(admin, { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all', subject: 'jwt:a', pii: false });
    const one = identityFromClaims({ sub: 'b', roles: ['store_manager'], allowed_stores: [SEATTLE.name] }, ENTRIES);
    assert.deepEqual(one, { userId: SEATTLE.managerId, role: 'store_manager', storeIds: [SEATTLE.storeId], subject: 'jwt:b', pii: false });
    // Personal data: pii:read in scope (space-separated), scp or permissions; the v2 context carries it.
    for (const claim of [{ scope: 'openid pii:read' }, { scp: ['pii:read'] }, { permissions: ['read', 'pii:read'] }]) {
      const cleared = identityFromClaims({ sub: 'p', roles: ['store_manager'], allowed_stores: [1], ...claim }, ENTRIES);
      assert.equal(cleared.pii, true, JSON.stringify(claim));
      assert.match(signContext(Buffer.alloc(32), cleared, 1), /^v2\..*\.pii\./);
    }
    assert.equal(identityFromClaims({ sub: 'q', roles: ['super_admin'], scope: 'pii:readonly' }, ENTRIES).pii, false, 'an exact permission, not a prefix');
    const region = identityFromClaims({ sub: 'c', roles: ['regional_manager', 'store_manager'], allowed_regions: ['online'], allowed_stores: ['1'] }, ENTRIES);
    assert.deepEqual(region.storeIds, [1, 8]);
    assert.equal(region.userId, subjectUuid('c'));
    for (const identity of [admin, one, region]) assert.match(signContext(Buffer.alloc(32), identity, 1), /^v1\./);
    // A store_manager token's regions grant nothing.
    assert.throws(() => identityFromClaims({ sub: 'd', roles: ['store_manager'], allowed_regions: ['Online'] }, ENTRIES), AccessDeniedError);
  });

  test('a signed context is reused for one identity on one backend for a minute, and for nothing else', () => {
    const key = Buffer.alloc(32, 3);
    const now = 1_800_000_000_000;
    const seattle = identityFromClaims({ sub: 's', roles: ['store_manager'], allowed_stores: [SEATTLE.name] }, ENTRIES);
    const first = signContextReused(key, seattle, 10, now);
    assert.equal(first, signContext(key, seattle, 10, now), 'the value a fresh signature gives');
    assert.equal(signContextReused(key, seattle, 10, now + CONTEXT_REUSE_MS - 1), first);
    assert.notEqual(signContextReused(key, seattle, 10, now + CONTEXT_REUSE_MS), first, 'signed again after a minute');
    assert.notEqual(signContextReused(key, seattle, 11, now), first, 'another backend');
    assert.notEqual(signContextReused(key, { ...seattle, storeIds: [SEATTLE.storeId, 2] }, 10, now), first, 'another scope');
    assert.notEqual(signContextReused(key, { ...seattle, pii: true }, 10, now), first, 'the pii flag');
    assert.notEqual(signContextReused(key, { ...seattle, userId: HEAD_OFFICE_USER_ID }, 10, now), first, 'another user');
    assert.notEqual(signContextReused(Buffer.alloc(32, 4), seattle, 10, now), first, 'another key');
  });

  test('two holders of one store keep their own fair share (the queue keys on sub)', () => {
    const first = identityFromClaims({ sub: 'first', roles: ['store_manager'], allowed_stores: [1] }, ENTRIES);
    const second = identityFromClaims({ sub: 'second', roles: ['store_manager'], allowed_stores: [1] }, ENTRIES);
    assert.equal(first.userId, second.userId);
    assert.notEqual(fairShareKey(first), fairShareKey(second));
  });
});

describe('the call pipeline on the embedded backend', () => {
  let t: TestDatabase;
  const log = createLogger('silent', 'json');
  before(async () => {
    t = await createTestDatabase('embedded', { customers: 120 });
    // The identity directory loads once, within 5 s; on a busy shared machine the first load may need a retry.
    for (let i = 0; ; i++) {
      try {
        await t.db.resolveIdentity(SEATTLE.managerId);
        break;
      } catch (error) {
        if (i === 3) throw error;
      }
    }
  });
  after(async () => t?.cleanup());

  test('identity → rate limit → tool, one record per call with its stable code; a limited call never runs', async () => {
    const pipeline = new CallPipeline({
      identities: devIdentities(t.db),
      rateLimiter: createRateLimiter({ perMinute: 2, burst: 0, keyPrefix: 'test' }),
      inFlight: new InFlight(),
      log,
    });
    const records: CallRecord[] = [];
    pipeline.onCallFinished((record) => records.push(record));
    pipeline.onCallFinished(() => {
      throw new Error('a broken listener changes no answer');
    });
    let ran = 0;
    const tool = async (_args: unknown, call: { identity: unknown }) => {
      ran++;
      return { content: [{ type: 'text' as const, text: JSON.stringify(call.identity) }] };
    };
    const asSeattle = { authInfo: { token: '', clientId: 'x-rls-user-id', scopes: [], extra: { userId: SEATTLE.managerId } } };
    assert.equal((await pipeline.run('t', {}, tool, {}, asSeattle)).isError, undefined);
    assert.equal((await pipeline.run('t', {}, tool, {}, asSeattle)).isError, undefined);
    const limited = await pipeline.run('t', {}, tool, {}, asSeattle);
    assert.equal(limited.isError, true);
    assert.equal((limited.structuredContent as { code: string }).code, 'RATE_LIMITED');
    assert.equal(ran, 2, 'the limited call did not reach the tool');
    const nobody = await pipeline.run('t', {}, tool, {}, {});
    assert.equal((nobody.structuredContent as { code: string }).code, 'AUTHORIZATION_ERROR');
    assert.deepEqual(
      records.map((r) => [r.outcome, r.code, r.subject]),
      [
        ['ok', undefined, SEATTLE.managerId],
        ['ok', undefined, SEATTLE.managerId],
        ['error', 'RATE_LIMITED', SEATTLE.managerId],
        ['error', 'AUTHORIZATION_ERROR', undefined],
      ],
    );
    assert.ok(records.every((r) => r.tool === 't' && r.durationMs >= 0));
  });

  test('jwt identities: claims from the verified token, narrowed by x-rls-user-id, never widened', async () => {
    const identities = jwtIdentities(t.db, new StoreDirectory((sql) => t.db.ownerQuery(sql)));
    const auth = (claims: Record<string, unknown>, userId?: string) => ({
      authInfo: { token: '', clientId: 'c', scopes: [], extra: { claims, ...(userId ? { userId } : {}) } },
    });
    const region = { sub: 'r', roles: ['regional_manager'], allowed_regions: ['Puget Sound'] };
    assert.deepEqual((await identities.resolve(auth(region, SEATTLE.managerId))).storeIds, [SEATTLE.storeId]);
    assert.equal(fairShareKey(await identities.resolve(auth(region, SEATTLE.managerId))), 'jwt:r');
    await assert.rejects(identities.resolve(auth(region, STORES[3]!.managerId)), AccessDeniedError);
    await assert.rejects(identities.resolve(auth(region, HEAD_OFFICE_USER_ID)), AccessDeniedError);
  });
});

describe('the revocation list', () => {
  test('revoked by jti and by subject-before-time; fails closed when the database goes away (fail open when configured)', async () => {
    const t = await createTestDatabase('embedded', { seeded: false });
    try {
      const warnings: string[] = [];
      const closed = new RevocationList((sql) => t.db.ownerQuery(sql), { refreshMs: 50, maxStaleMs: 300, warn: (m) => warnings.push(m) });
      const open = new RevocationList((sql) => t.db.ownerQuery(sql), { refreshMs: 50, maxStaleMs: 300, failOpen: true });
      for (const request of [{ jti: 'j-1' }, { sub: 'mallory', before: '2026-01-01T00:00:00Z' }]) {
        const { sql, params } = revocationInsert(request);
        await t.db.withAdminTransaction((session) => session.query(sql, params));
      }
      await closed.start();
      await open.start();
      const jan = Date.parse('2026-01-01T00:00:00Z') / 1000;
      assert.throws(() => closed.check({ sub: 'x', jti: 'j-1' }), /revoked/);
      assert.throws(() => closed.check({ sub: 'mallory', iat: jan - 60 }), /revoked/);
      closed.check({ sub: 'mallory', iat: jan + 60 });
      closed.check({ sub: 'x', jti: 'j-2' });
      await t.db.close();
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.throws(() => closed.check({ sub: 'x', jti: 'j-2' }), /revocation list cannot be read/);
      open.check({ sub: 'x', jti: 'j-2' });
      assert.throws(() => open.check({ sub: 'x', jti: 'j-1' }), /revoked/, 'fail open still applies the last list');
      assert.equal(warnings.length, 1, 'one log line when reading starts failing');
      await closed.stop();
      await open.stop();
    } finally {
      await t.cleanup();
    }
  });
});
