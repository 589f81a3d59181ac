// Verified token claims → the Identity the data layer signs into the RLS context (src/db/context.ts).
// Decisions:
// - The token decides: `roles` super_admin → every store; regional_manager → the stores of `allowed_regions`;
//   store_manager → `allowed_stores`. Several roles grant the union. Each role grants only through its own
//   claim, so a store_manager token with allowed_regions gains nothing from them.
// - `allowed_stores` entries may be store ids (8 or "8"), manager UUIDs (stores.rls_user_id, what dev mode
//   uses) or exact store names ("Zava Retail Seattle", what `zava-mcp auth token --store` writes): all cheap to
//   accept from the store directory. Anything that names no store, or a region with no store, is an error that
//   says which value, never silently dropped: a typo in an IdP mapping must not look like "no sales".
// - A token that grants nothing (no known role, or a role without its claim) is refused with AccessDeniedError:
//   the caller sees nothing and is told why.
// - Identity.userId stays what the signed context expects (a UUID): head office's for super_admin, the store's
//   manager UUID for a one-store manager, otherwise a UUID derived from the subject. Identity.subject carries
//   "jwt:<sub>", so the fair queue keys on who authenticated.
// - x-rls-user-id with a token only narrows: the named manager's stores must all be within the token's grant.
import { createHash } from 'node:crypto';
import { HEAD_OFFICE_USER_ID } from '../data/stores.js';
import type { Identity, RowSet } from '../db/types.js';
import { AccessDeniedError } from '../infra/errors.js';
import type { ZavaClaims } from './jwt.js';

export const TOKEN_ROLES = ['super_admin', 'regional_manager', 'store_manager'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

export interface StoreEntry {
  readonly storeId: number;
  readonly name: string;
  readonly managerId: string;
  readonly region: string;
}

const REFRESH_AFTER_MS = 60_000;

/** The stores, their names, manager UUIDs and regions: small, loaded whole, refreshed after a minute. */
export class StoreDirectory {
  private stores: StoreEntry[] | undefined;
  private loadedAt = 0;
  private loading: Promise<StoreEntry[]> | undefined;

  constructor(private readonly ownerQuery: (sql: string) => Promise<RowSet>) {}

  async list(): Promise<readonly StoreEntry[]> {
    if (this.stores && Date.now() - this.loadedAt < REFRESH_AFTER_MS) return this.stores;
    // A stale list keeps serving while one load refreshes it.
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    if (this.stores) {
      this.loading.catch(() => undefined);
      return this.stores;
    }
    return this.loading;
  }

  private async load(): Promise<StoreEntry[]> {
    const result = await this.ownerQuery('SELECT store_id, store_name, rls_user_id::text, region FROM retail.stores ORDER BY store_id');
    this.stores = (result.rows as [number, string, string, string][]).map(([storeId, name, managerId, region]) => ({
      storeId: Number(storeId),
      name,
      managerId: managerId.toLowerCase(),
      region,
    }));
    this.loadedAt = Date.now();
    return this.stores;
  }
}

function stringList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  if (typeof value === 'number') return [String(value)];
  return [];
}

/** PII_READ in the token's `scope` (space-separated, OAuth), `scp` or `permissions` (arrays: Entra ID, Auth0). */
export const PII_READ = 'pii:read';
export function hasPiiRead(claims: ZavaClaims): boolean {
  return [claims.scope, claims.scp, claims.permissions].some((value) => stringList(value).includes(PII_READ));
}

export function rolesOf(claims: ZavaClaims): TokenRole[] {
  const named = [...stringList(claims.roles), ...stringList(claims.role)];
  return TOKEN_ROLES.filter((role) => named.includes(role));
}

/** A stable UUID-shaped id for a subject that manages no single store (the signed context wants a UUID). */
export function subjectUuid(sub: string): string {
  const h = createHash('sha256').update(`zava-subject:${sub}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The identity a token grants. Throws AccessDeniedError when it grants nothing or names unknown stores/regions. */
export function identityFromClaims(claims: ZavaClaims, stores: readonly StoreEntry[]): Identity {
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  if (!sub) throw new AccessDeniedError('the token has no subject (sub)');
  const subject = `jwt:${sub}`;
  const pii = hasPiiRead(claims);
  const roles = rolesOf(claims);
  if (roles.length === 0) {
    throw new AccessDeniedError(`the token grants no role: "roles" must include one of ${TOKEN_ROLES.join(', ')}. No data is available without one.`);
  }
  if (roles.includes('super_admin')) return { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all', subject, pii };
  const granted = new Set<number>();
  if (roles.includes('regional_manager')) {
    const regions = stringList(claims.allowed_regions);
    const known = new Set(stores.map((s) => s.region.toLowerCase()));
    const unknown = regions.filter((r) => !known.has(r.toLowerCase()));
    if (unknown.length > 0) {
      throw new AccessDeniedError(`the token names unknown region(s) ${unknown.map((r) => `"${r}"`).join(', ')}; known regions: ${[...new Set(stores.map((s) => s.region))].join(', ')}`);
    }
    for (const store of stores) if (regions.some((r) => r.toLowerCase() === store.region.toLowerCase())) granted.add(store.storeId);
  }
  if (roles.includes('store_manager')) {
    for (const entry of stringList(claims.allowed_stores)) {
      const store = findStore(entry, stores);
      if (!store) throw new AccessDeniedError(`the token names an unknown store "${entry.slice(0, 80)}" in allowed_stores (give store ids, store names or manager UUIDs)`);
      granted.add(store.storeId);
    }
  }
  if (granted.size === 0) {
    throw new AccessDeniedError(
      `the token grants no store: role ${roles.join(', ')} needs ${roles.includes('regional_manager') ? '"allowed_regions"' : ''}${roles.length > 1 ? ' or ' : ''}${roles.includes('store_manager') ? '"allowed_stores"' : ''}. No data is available without one.`,
    );
  }
  const storeIds = [...granted].sort((a, b) => a - b);
  const only = storeIds.length === 1 ? stores.find((s) => s.storeId === storeIds[0]) : undefined;
  const role = roles.includes('regional_manager') || storeIds.length > 1 ? 'regional_manager' : 'store_manager';
  return { userId: only && role === 'store_manager' ? only.managerId : subjectUuid(sub), role, storeIds, subject, pii };
}

function findStore(entry: string, stores: readonly StoreEntry[]): StoreEntry | undefined {
  const value = entry.trim();
  if (/^\d+$/.test(value)) return stores.find((s) => s.storeId === Number(value));
  const lower = value.toLowerCase();
  return stores.find((s) => s.managerId === lower || s.name.toLowerCase() === lower);
}

/**
 * x-rls-user-id next to a token: honoured only where it narrows. `requested` is the dev-mode identity the header
 * names (resolved by the data layer); it must lie within what the token grants.
 */
export function narrowIdentity(granted: Identity, requested: Identity): Identity {
  const inside =
    granted.storeIds === 'all' ||
    (requested.storeIds !== 'all' && requested.storeIds.every((id) => (granted.storeIds as readonly number[]).includes(id)));
  if (!inside) {
    throw new AccessDeniedError(
      `x-rls-user-id ${requested.userId} is outside what your token allows: it may only narrow to stores the token grants. Nothing was run.`,
    );
  }
  // The token decides personal-data access too: narrowing to an identity the directory would clear grants nothing.
  return { ...requested, subject: granted.subject ?? requested.userId, pii: granted.pii === true };
}
