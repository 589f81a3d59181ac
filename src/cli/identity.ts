// Builds the identity side of a serving process from configuration (issue 11): the auth mode's identity source,
// the HTTP edge (dev header or bearer tokens), the stdio token, the rate limiter, and the call pipeline.
import { readFileSync } from 'node:fs';
import type { AuthInfo } from '@modelcontextprotocol/server';
import type { Config } from '../infra/config.js';
import { ConfigError, errorMessage } from '../infra/errors.js';
import type { Logger } from '../infra/logger.js';
import type { Database } from '../db/types.js';
import { DEV_AUTH, type HttpAuth, jwtAuth } from '../protocol/auth.js';
import type { InFlight } from '../protocol/context.js';
import type { ResultCache } from '../infra/cache/result-cache.js';
import { CallPipeline, devIdentities, jwtIdentities } from '../protocol/pipeline.js';
import { StoreDirectory } from '../security/claims.js';
import { JwtVerifier, readPublicKeySetting, type JwtSettings, type ZavaClaims } from '../security/jwt.js';
import { RevocationList } from '../security/revocation.js';
import { createRateLimiter } from '../security/rate-limit.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function jwtSettings(config: Config): JwtSettings {
  return {
    publicKeyPem: config.auth.publicKey ? readPublicKeySetting(config.auth.publicKey) : undefined,
    jwksUrl: config.auth.jwksUrl,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    clockToleranceSec: config.auth.clockToleranceSec,
    jwksTimeoutMs: config.auth.jwksTimeoutMs,
    jwksCooldownMs: config.auth.jwksCooldownMs,
  };
}

/**
 * Dev mode trusts a header, which is no authentication: HTTP on anything but loopback is refused at start,
 * unless ZAVA_ALLOW_INSECURE_DEV_AUTH=true (demos), which is logged as an error on every start.
 */
export function checkDevModeBinding(config: Config, stdio: boolean, log: Logger): void {
  if (config.auth.mode !== 'dev' || stdio || LOOPBACK_HOSTS.has(config.host)) return;
  if (config.auth.allowInsecureDev) {
    log.error(
      { host: config.host },
      'INSECURE: dev identity mode on a non-loopback interface (ZAVA_ALLOW_INSECURE_DEV_AUTH=true): anyone who reaches this port can claim any identity, head office included. Never run this in production.',
    );
    return;
  }
  throw new ConfigError(
    `refusing to serve dev identity mode on ${config.host}: the x-rls-user-id header is not authentication, so it is only allowed on loopback ` +
      `(127.0.0.1, ::1, localhost). To serve other hosts, use tokens: ZAVA_AUTH=jwt with ZAVA_JWT_PUBLIC_KEY=<PEM file> (try ` +
      '`zava-mcp auth keygen --out keys` and `zava-mcp auth token --key keys/private.pem --sub me --role super_admin`) or ' +
      'ZAVA_JWT_JWKS_URL=<your identity provider\'s JWKS URL>; see README "Production identity". ' +
      '(For a demo only: ZAVA_ALLOW_INSECURE_DEV_AUTH=true.)',
  );
}

/** The stdio process's token in jwt mode: verified at start, verified again (re-read from its file) when it expires. */
export class StdioToken {
  private current: AuthInfo | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private lastAttempt = 0;

  private constructor(
    private readonly verifier: JwtVerifier,
    private readonly source: { token?: string | undefined; tokenFile?: string | undefined },
    private readonly log: Logger,
  ) {}

  static async start(verifier: JwtVerifier, source: { token?: string | undefined; tokenFile?: string | undefined }, log: Logger): Promise<StdioToken> {
    if (!source.token && !source.tokenFile) throw new ConfigError('stdio in jwt mode needs a token: ZAVA_TOKEN=<JWT> or ZAVA_TOKEN_FILE=<file>');
    const holder = new StdioToken(verifier, source, log);
    try {
      holder.accept(await verifier.verifyAccessToken(holder.read()));
    } catch (error) {
      throw new ConfigError(`the stdio token (ZAVA_TOKEN${source.tokenFile ? ' / ZAVA_TOKEN_FILE' : ''}) was refused: ${errorMessage(error)}`);
    }
    return holder;
  }

  /**
   * The verified token, or undefined once it has expired and no valid one replaced it. Without a valid token,
   * the file is read again at most once a second, on the calls that find none.
   */
  authInfo(): AuthInfo | undefined {
    if (this.current?.expiresAt !== undefined && this.current.expiresAt * 1000 <= Date.now()) this.current = undefined;
    if (!this.current && Date.now() - this.lastAttempt >= 1_000) void this.refresh();
    return this.current;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private read(): string {
    // A file wins: it is what a token refresher rewrites.
    return (this.source.tokenFile ? readFileSync(this.source.tokenFile, 'utf8') : this.source.token ?? '').trim();
  }

  private accept(info: AuthInfo): void {
    this.current = info;
    clearTimeout(this.timer);
    if (info.expiresAt !== undefined) {
      // setTimeout's longest delay is about 24.8 days; a longer token is re-checked then.
      this.timer = setTimeout(() => void this.refresh(), Math.min(2 ** 31 - 1, Math.max(0, info.expiresAt * 1000 - Date.now())));
      this.timer.unref();
    }
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      this.lastAttempt = Date.now();
      try {
        this.accept(await this.verifier.verifyAccessToken(this.read()));
        this.log.info('stdio token verified again');
      } catch (error) {
        this.current = undefined;
        this.log.error(`the stdio token is no longer valid (${errorMessage(error)}): every data tool answers with an error until ZAVA_TOKEN_FILE holds a valid token`);
      }
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }
}

export interface IdentityStack {
  readonly pipeline: CallPipeline;
  readonly httpAuth: HttpAuth;
  readonly stdioToken?: StdioToken | undefined;
  close(): Promise<void>;
}

export async function createIdentityStack(
  config: Config,
  db: Database,
  inFlight: InFlight,
  log: Logger,
  stdio: boolean,
  /** The result cache the pipeline looks answers up in (absent: none). */
  cache?: ResultCache,
): Promise<IdentityStack> {
  const rateLimiter = createRateLimiter(config.rateLimit, (message) => log.warn(message));
  try {
    if (config.auth.mode === 'dev') {
      return {
        pipeline: new CallPipeline({ identities: devIdentities(db), rateLimiter, inFlight, log, cache }),
        httpAuth: DEV_AUTH,
        close: () => rateLimiter.close(),
      };
    }
    const verifier = await JwtVerifier.create(jwtSettings(config));
    const revocations = new RevocationList((sql) => db.ownerQuery(sql), {
      failOpen: config.auth.revocationFailOpen,
      listenUrl: config.databaseUrl,
      warn: (message) => log.warn(message),
      info: (message) => log.info(message),
    });
    await revocations.start();
    try {
      const stdioToken = stdio ? await StdioToken.start(verifier, config.auth, log) : undefined;
      const stores = new StoreDirectory((sql) => db.ownerQuery(sql));
      return {
        pipeline: new CallPipeline({ identities: jwtIdentities(db, stores, revocations), rateLimiter, inFlight, log, cache }),
        httpAuth: jwtAuth({
          verifier,
          issuer: config.auth.issuer,
          authorizationServers: config.auth.authorizationServers,
          check: async (authInfo) => revocations.check(authInfo.extra?.claims as ZavaClaims),
        }),
        stdioToken,
        async close() {
          stdioToken?.stop();
          await revocations.stop();
          await rateLimiter.close();
        },
      };
    } catch (error) {
      await revocations.stop();
      throw error;
    }
  } catch (error) {
    await rateLimiter.close();
    throw error;
  }
}
