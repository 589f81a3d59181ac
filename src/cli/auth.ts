// `zava-mcp auth keygen` and `zava-mcp auth token`: try jwt mode locally in two commands, without an identity
// provider. The token carries the claims a real provider would be configured to issue (README "Production
// identity"), signed ES256 with the key pair keygen wrote; issuer and audience come from the configuration.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, SignJWT, calculateJwkThumbprint, exportJWK } from 'jose';
import type { Config } from '../infra/config.js';
import { ConfigError } from '../infra/errors.js';
import { TOKEN_ROLES, type TokenRole } from '../security/claims.js';
import { revocationInsert } from '../security/revocation.js';
import { withDatabase } from './db.js';
import { prepareSchema } from './migrate.js';

/** Writes DIR/private.pem (PKCS#8, owner-only) and DIR/public.pem (SPKI), an ES256 (P-256) pair. */
export async function runKeygen(outDir: string | undefined, out: NodeJS.WritableStream = process.stderr): Promise<{ privatePath: string; publicPath: string }> {
  if (!outDir) throw new ConfigError('auth keygen needs --out DIR');
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  mkdirSync(outDir, { recursive: true });
  const privatePath = path.join(outDir, 'private.pem');
  const publicPath = path.join(outDir, 'public.pem');
  writeFileSync(privatePath, await exportPKCS8(privateKey), { mode: 0o600, flag: 'wx' });
  writeFileSync(publicPath, await exportSPKI(publicKey), { mode: 0o644, flag: 'wx' });
  out.write(`wrote ${privatePath} (keep it secret) and ${publicPath}\nserve with: ZAVA_AUTH=jwt ZAVA_JWT_PUBLIC_KEY=${publicPath} zava-mcp serve\n`);
  return { privatePath, publicPath };
}

export interface TokenRequest {
  readonly key?: string | undefined;
  readonly sub?: string | undefined;
  readonly role?: string | undefined;
  readonly stores?: readonly string[] | undefined;
  readonly regions?: readonly string[] | undefined;
  readonly pii?: boolean | undefined;
  readonly ttl?: string | undefined;
}

/** "1h", "30m", "45s", "2d" → seconds. */
export function parseTtl(ttl: string): number {
  const match = /^(\d+)\s*([smhd])$/.exec(ttl.trim());
  if (!match) throw new ConfigError(`--ttl must look like 30m, 1h or 2d (got "${ttl}")`);
  const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  if (seconds <= 0) throw new ConfigError('--ttl must be more than 0');
  return seconds;
}

/** A signed token for `request`, issuer and audience from `config`. */
export async function signToken(config: Config, request: TokenRequest): Promise<string> {
  if (!request.key) throw new ConfigError('auth token needs --key DIR/private.pem (from `zava-mcp auth keygen`)');
  if (!request.sub) throw new ConfigError('auth token needs --sub NAME (who the token is for)');
  if (!request.role || !(TOKEN_ROLES as readonly string[]).includes(request.role)) {
    throw new ConfigError(`auth token needs --role ${TOKEN_ROLES.join('|')}`);
  }
  const role = request.role as TokenRole;
  if (role === 'store_manager' && !request.stores?.length) throw new ConfigError('a store_manager token needs at least one --store (a store name, id or manager UUID)');
  if (role === 'regional_manager' && !request.regions?.length) throw new ConfigError('a regional_manager token needs at least one --region');
  const pem = readFileSync(request.key, 'utf8');
  const key = await importPKCS8(pem, 'ES256', { extractable: true }).catch(() => {
    throw new ConfigError(`${request.key} is not an ES256 (P-256) private key in PKCS#8 PEM; make one with \`zava-mcp auth keygen --out DIR\``);
  });
  const kid = await calculateJwkThumbprint(await exportJWK(key).then(({ d: _d, ...pub }) => pub));
  const claims: Record<string, unknown> = { roles: [role] };
  if (request.stores?.length) claims.allowed_stores = [...request.stores];
  if (request.regions?.length) claims.allowed_regions = [...request.regions];
  if (request.pii) claims.scope = 'pii:read';
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
    .setSubject(request.sub)
    .setIssuer(config.auth.issuer)
    .setAudience(config.auth.audience)
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime(Math.floor(Date.now() / 1000) + parseTtl(request.ttl ?? '1h'))
    .sign(key);
}

/**
 * `zava-mcp auth revoke --jti ID | --sub NAME [--before TIME] [--reason TEXT]`: writes the revocation list every
 * replica reads (in force within seconds). --sub without --before revokes every token of that subject issued
 * until now.
 */
export async function runRevoke(
  config: Config,
  request: { jti?: string | undefined; sub?: string | undefined; before?: string | undefined; reason?: string | undefined },
  out: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  if (!request.jti === !request.sub) throw new ConfigError('auth revoke needs either --jti ID or --sub NAME [--before TIME]');
  if (request.jti && request.before) throw new ConfigError('--before goes with --sub, not --jti');
  if (request.before !== undefined && Number.isNaN(Date.parse(request.before))) throw new ConfigError(`--before must be a date and time, e.g. 2026-07-01T12:00:00Z (got "${request.before}")`);
  await withDatabase(config, async (db) => {
    await prepareSchema(db, config);
    const { sql, params } = revocationInsert(request);
    await db.withAdminTransaction((session) => session.query(sql, params));
    out.write(
      request.jti
        ? `revoked the token with jti ${request.jti} on ${db.location}\n`
        : `revoked every token of subject "${request.sub}" issued before ${request.before ?? 'now'} on ${db.location}\n`,
    );
  });
}
