// Bearer JWT verification for jwt mode (issue 11), with `jose`.
// Decisions:
// - Algorithms are an allow-list, RS256 and ES256 only: `alg: none` and HS256 (a public key used as an HMAC
//   secret) are refused by jose before any signature check, whatever the token header says.
// - The key is a PEM public key (ZAVA_JWT_PUBLIC_KEY, a file or the PEM text) or a JWKS URL. jose's remote key
//   set caches the keys and fetches again when a token names a `kid` it does not hold (key rotation), at most
//   once per cooldown, with a fetch timeout: a JWKS endpoint that is down refuses new kids (401), never hangs a
//   request.
// - Issuer and audience are checked here, by jose (the SDK's bearer helper checks expiry and scopes, not the
//   audience). A token must carry exp: one that never expires is refused.
// - The verified claims travel on as the SDK's AuthInfo (`extra.claims`), which the pipeline maps to an Identity
//   (src/security/claims.ts). The token itself is never logged or passed to anything else.
// - A verified token is remembered (by its SHA-256, with its claims) for at most VERIFIED_TTL_MS and never past its
//   own exp: a client sends the same token with every request for as long as it lives, and an ES256 verification
//   costs about 0.2 ms of CPU each time (BENCHMARKS.md). Only successes are remembered, so a forged or altered
//   token is always checked in full; revocation is checked per request elsewhere (revocation.ts), whatever this
//   cache holds. The price: a key withdrawn from the JWKS still admits the tokens it signed, for at most a minute.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type KeyObject } from 'jose';
import { LRUCache } from 'lru-cache';
import type { AuthInfo } from '@modelcontextprotocol/server';
import { OAuthError, OAuthErrorCode } from '@modelcontextprotocol/server';
import { ConfigError } from '../infra/errors.js';

export const JWT_ALGORITHMS = ['RS256', 'ES256'] as const;

export interface JwtSettings {
  /** PEM text of the public key (SPKI), or undefined when a JWKS URL is used. */
  readonly publicKeyPem?: string | undefined;
  readonly jwksUrl?: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  /** Seconds of clock skew tolerated on exp/nbf/iat. */
  readonly clockToleranceSec: number;
  /** Longest a JWKS fetch may take. */
  readonly jwksTimeoutMs: number;
  /** Least time between two JWKS fetches for unknown kids (a flood of made-up kids cannot flood the IdP). */
  readonly jwksCooldownMs: number;
}

/** Reads ZAVA_JWT_PUBLIC_KEY: PEM text as given, or the file it names. */
export function readPublicKeySetting(value: string): string {
  if (value.includes('-----BEGIN')) return value.replace(/\\n/g, '\n');
  try {
    return readFileSync(value, 'utf8');
  } catch (error) {
    throw new ConfigError(`ZAVA_JWT_PUBLIC_KEY: cannot read the PEM file ${value} (${(error as Error).message})`);
  }
}

/** The claims jwt mode reads; anything else in the token is ignored. */
export interface ZavaClaims extends JWTPayload {
  roles?: unknown;
  role?: unknown;
  allowed_stores?: unknown;
  allowed_regions?: unknown;
  scope?: unknown;
  scp?: unknown;
  permissions?: unknown;
}

/** Longest a verified token is taken on trust without a new signature check (see the header). */
export const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX_TOKENS = 10_000;

export class JwtVerifier {
  private readonly verified = new LRUCache<string, ZavaClaims>({ max: VERIFIED_MAX_TOKENS, ttl: VERIFIED_TTL_MS });

  private constructor(
    private readonly key: KeyObject | JWTVerifyGetKey,
    private readonly settings: JwtSettings,
  ) {}

  /** How many verified tokens are remembered (for tests and the operators' view). */
  get rememberedTokens(): number {
    return this.verified.size;
  }

  static async create(settings: JwtSettings): Promise<JwtVerifier> {
    if (settings.publicKeyPem) {
      const alg = /BEGIN (EC )?PUBLIC KEY/.test(settings.publicKeyPem) ? await detectAlgorithm(settings.publicKeyPem) : undefined;
      if (!alg) throw new ConfigError('ZAVA_JWT_PUBLIC_KEY must be a PEM public key ("-----BEGIN PUBLIC KEY-----"), RSA or EC P-256');
      return new JwtVerifier(await importSPKI(settings.publicKeyPem, alg), settings);
    }
    if (settings.jwksUrl) {
      const jwks = createRemoteJWKSet(new URL(settings.jwksUrl), {
        timeoutDuration: settings.jwksTimeoutMs,
        cooldownDuration: settings.jwksCooldownMs,
        cacheMaxAge: 10 * 60_000,
      });
      return new JwtVerifier(jwks, settings);
    }
    throw new ConfigError('ZAVA_AUTH=jwt needs ZAVA_JWT_PUBLIC_KEY (a PEM file) or ZAVA_JWT_JWKS_URL');
  }

  /** For tests and tools that hold a JWKS document in memory. */
  static fromJwks(jwks: Parameters<typeof createLocalJWKSet>[0], settings: JwtSettings): JwtVerifier {
    return new JwtVerifier(createLocalJWKSet(jwks), settings);
  }

  /** The verified claims, or an OAuthError(invalid_token) that says why, in words safe to send to the client. */
  async verify(token: string): Promise<ZavaClaims> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const known = this.verified.get(digest);
    // Remembered, and still within its exp (with the tolerance): the signature, issuer and audience were checked.
    if (known && (known.exp ?? 0) + this.settings.clockToleranceSec > Date.now() / 1000) return known;
    if (known) this.verified.delete(digest); // expired since: the full check below says so
    try {
      const options = {
        algorithms: [...JWT_ALGORITHMS],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: this.settings.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      };
      const { payload } =
        typeof this.key === 'function' ? await jwtVerify(token, this.key, options) : await jwtVerify(token, this.key, options);
      const claims = payload as ZavaClaims;
      const remaining = (claims.exp ?? 0) * 1000 + this.settings.clockToleranceSec * 1000 - Date.now();
      if (remaining > 0) this.verified.set(digest, claims, { ttl: Math.min(VERIFIED_TTL_MS, remaining) });
      return claims;
    } catch (error) {
      throw new OAuthError(OAuthErrorCode.InvalidToken, describeJoseError(error));
    }
  }

  /** The SDK's verifier interface (OAuthTokenVerifier), so its bearer helper can drive this. */
  async verifyAccessToken(token: string): Promise<AuthInfo> {
    const claims = await this.verify(token);
    return authInfoOf(token, claims, this.settings.audience, this.settings.clockToleranceSec);
  }
}

export function scopesOf(claims: ZavaClaims): string[] {
  const out = new Set<string>();
  for (const value of [claims.scope, claims.scp, claims.permissions]) {
    if (typeof value === 'string') for (const s of value.split(/\s+/)) if (s) out.add(s);
    if (Array.isArray(value)) for (const s of value) if (typeof s === 'string') out.add(s);
  }
  return [...out];
}

export function authInfoOf(token: string, claims: ZavaClaims, audience: string, clockToleranceSec = 0): AuthInfo {
  const clientId = typeof claims.azp === 'string' ? claims.azp : typeof claims.client_id === 'string' ? claims.client_id : String(claims.sub);
  return {
    token,
    clientId,
    scopes: scopesOf(claims),
    // The SDK's bearer helper refuses past expiresAt with no tolerance of its own: give it ours.
    expiresAt: claims.exp === undefined ? undefined : claims.exp + clockToleranceSec,
    // The audience was checked by jose; reported so the SDK's resource check (when configured) sees it too.
    resource: new URL(/^https?:\/\//.test(audience) ? audience : `urn:zava:${encodeURIComponent(audience)}`),
    extra: { claims },
  };
}

async function detectAlgorithm(pem: string): Promise<'RS256' | 'ES256' | undefined> {
  const { createPublicKey } = await import('node:crypto');
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType === 'rsa') return 'RS256';
    if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
    return undefined;
  } catch {
    return undefined;
  }
}

/** jose's reasons, in words for the client (never the token). */
function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'the token is not valid yet (nbf)';
    if (error.claim === 'iss') return 'the token was issued by another issuer';
    if (error.claim === 'aud') return 'the token is for another audience';
    if (error.reason === 'missing') return `the token lacks the required "${error.claim}" claim`;
    return `the token's "${error.claim}" claim is not valid`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return `the token's algorithm is not allowed (accepted: ${JWT_ALGORITHMS.join(', ')})`;
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'the token was signed with a key this server does not know (unknown kid)';
  if (error instanceof joseErrors.JWKSTimeout) return 'the signing keys could not be fetched in time; try again';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is not valid';
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return 'the token is malformed';
  if (error instanceof joseErrors.JOSENotSupported) return 'the token uses an unsupported algorithm or key type';
  if (error instanceof joseErrors.JWKSInvalid || error instanceof joseErrors.JOSEError) return `the token could not be verified (${error.code})`;
  return 'the token could not be verified (the signing keys are unavailable)';
}
