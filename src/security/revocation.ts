// Revoked tokens (issue 11): by jti, and every token of a subject issued before a time. The list lives in the
// database (zava_auth.revocations, owner-only, migration 11), so every replica sees the same one; each process
// keeps it in memory and re-reads it every `refreshMs` (2 s), and at once when PostgreSQL notifies
// `zava_revocations` (server backend): a revocation is in force on every replica within a few seconds.
//
// The database unreachable: the list in memory keeps serving while it is younger than `maxStaleMs`; past that,
// every token is refused (fail closed, the default) or accepted on the last list (ZAVA_REVOCATION_FAIL_OPEN=true),
// with one log line when it starts failing and one when it recovers.
import pg from 'pg';
import { OAuthError, OAuthErrorCode } from '@modelcontextprotocol/server';
import type { RowSet } from '../db/types.js';
import { errorMessage } from '../infra/errors.js';
import type { ZavaClaims } from './jwt.js';

export interface RevocationOptions {
  readonly refreshMs?: number;
  readonly maxStaleMs?: number;
  readonly failOpen?: boolean;
  /** Owner URL of a PostgreSQL server to LISTEN on (server backend); undefined: polling only. */
  readonly listenUrl?: string | undefined;
  readonly warn?: (message: string) => void;
  readonly info?: (message: string) => void;
}

export class RevocationList {
  private jtis = new Set<string>();
  /** sub → tokens issued before this time (seconds since the epoch) are revoked. */
  private subjects = new Map<string, number>();
  private loadedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private failing = false;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly ownerQuery: (sql: string) => Promise<RowSet>,
    private readonly options: RevocationOptions = {},
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 2_000);
    this.timer.unref();
    if (this.options.listenUrl) await this.listen(this.options.listenUrl).catch((error) => this.options.warn?.(`revocations: LISTEN failed (${errorMessage(error)}); polling only`));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.listener?.end().catch(() => undefined);
  }

  /** Throws OAuthError(invalid_token) for a revoked token, or when the list is too old to trust (fail closed). */
  check(claims: ZavaClaims): void {
    const stale = Date.now() - this.loadedAt > (this.options.maxStaleMs ?? 10_000);
    if (stale && !this.options.failOpen) {
      throw new OAuthError(OAuthErrorCode.InvalidToken, 'the token revocation list cannot be read right now, so tokens are refused; try again shortly');
    }
    if (typeof claims.jti === 'string' && this.jtis.has(claims.jti)) throw new OAuthError(OAuthErrorCode.InvalidToken, 'the token has been revoked');
    const before = typeof claims.sub === 'string' ? this.subjects.get(claims.sub) : undefined;
    if (before !== undefined && (typeof claims.iat !== 'number' || claims.iat < before)) {
      throw new OAuthError(OAuthErrorCode.InvalidToken, 'the token has been revoked (all tokens of its subject issued before a time)');
    }
  }

  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<void> {
    try {
      const result = await this.ownerQuery(
        `SELECT jti, sub, floor(extract(epoch FROM before))::bigint::text FROM zava_auth.revocations`,
      );
      const jtis = new Set<string>();
      const subjects = new Map<string, number>();
      for (const [jti, sub, before] of result.rows as [string | null, string | null, string | null][]) {
        if (jti !== null) jtis.add(jti);
        else if (sub !== null && before !== null) subjects.set(sub, Math.max(subjects.get(sub) ?? 0, Number(before)));
      }
      this.jtis = jtis;
      this.subjects = subjects;
      this.loadedAt = Date.now();
      if (this.failing) this.options.info?.('revocations: the list can be read again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) {
        this.options.warn?.(
          `revocations: cannot read the list (${errorMessage(error)}); ${this.options.failOpen ? 'accepting tokens on the last list read (ZAVA_REVOCATION_FAIL_OPEN=true)' : 'refusing every token once the list is older than its limit (fail closed)'}`,
        );
      }
      this.failing = true;
    }
  }

  private async listen(url: string): Promise<void> {
    const client = new pg.Client({ connectionString: url, application_name: 'zava-mcp revocations' });
    client.on('error', () => undefined); // polling carries on; the next start listens again
    client.on('notification', () => void this.refresh());
    await client.connect();
    await client.query('LISTEN zava_revocations');
    this.listener = client;
  }
}

/** `zava-mcp auth revoke`: one row, by jti or by subject and time. */
export function revocationInsert(request: { jti?: string | undefined; sub?: string | undefined; before?: string | undefined; reason?: string | undefined }): {
  sql: string;
  params: (string | null)[];
} {
  return {
    sql: 'INSERT INTO zava_auth.revocations (jti, sub, before, reason) VALUES ($1, $2, $3::timestamptz, $4) RETURNING id',
    params: [request.jti ?? null, request.jti ? null : request.sub ?? null, request.jti ? null : request.before ?? new Date().toISOString(), request.reason ?? null],
  };
}
