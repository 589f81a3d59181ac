// The jwt verifier's memory of verified tokens (issue 11's cost of jwt mode): a token checked once is taken on trust
// until its exp (or a minute), a forged or altered one is never remembered, and an expired one is refused even
// after it was remembered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JwtVerifier, type JwtSettings } from '../src/security/jwt.js';
import { AUDIENCE, ISSUER, newSigningKey, signTestToken } from './support/tokens.js';

const SETTINGS: JwtSettings = { issuer: ISSUER, audience: AUDIENCE, clockToleranceSec: 0, jwksTimeoutMs: 1_000, jwksCooldownMs: 1_000 };

test('a verified token is remembered, and answers the same claims without another signature check', async () => {
  const key = await newSigningKey('ES256');
  const verifier = JwtVerifier.fromJwks({ keys: [key.jwk] }, SETTINGS);
  const token = await signTestToken({ key, sub: 'alice', claims: { scope: 'pii:read' } });
  const first = await verifier.verify(token);
  assert.equal(first.sub, 'alice');
  assert.equal(verifier.rememberedTokens, 1);
  // The same claims object comes back: taken from memory, not verified again (what that saves is measured by
  // bench/auth.ts, not timed here).
  for (let i = 0; i < 200; i++) assert.equal(await verifier.verify(token), first);
  assert.equal(verifier.rememberedTokens, 1, 'one entry per token, however often it is sent');
});

test('an altered or foreign-signed token is refused every time and never remembered', async () => {
  const key = await newSigningKey('ES256');
  const other = await newSigningKey('ES256');
  const verifier = JwtVerifier.fromJwks({ keys: [key.jwk] }, SETTINGS);
  const token = await signTestToken({ key, sub: 'alice' });
  await verifier.verify(token);
  // The same header and signature over another payload: the remembered token must not vouch for it.
  const [header, , signature] = token.split('.');
  const payload = Buffer.from(JSON.stringify({ sub: 'mallory', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
  for (let i = 0; i < 2; i++) await assert.rejects(verifier.verify(`${header}.${payload}.${signature}`), /signature is not valid/);
  const foreign = await signTestToken({ key: other, kid: key.kid, sub: 'mallory' });
  for (let i = 0; i < 2; i++) await assert.rejects(verifier.verify(foreign), /signature is not valid/);
  assert.equal(verifier.rememberedTokens, 1, 'only the genuine token');
});

test('a remembered token is refused once it expires', async () => {
  const key = await newSigningKey('ES256');
  const verifier = JwtVerifier.fromJwks({ keys: [key.jwk] }, SETTINGS);
  const token = await signTestToken({ key, sub: 'alice', expiresIn: 2 });
  assert.equal((await verifier.verify(token)).sub, 'alice');
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  await assert.rejects(verifier.verify(token), /expired/);
  assert.equal(verifier.rememberedTokens, 0);
});
