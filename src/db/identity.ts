// Resolves manager UUIDs to identities from the database's own tables (stores.rls_user_id for store
// managers, zava_private.regional_managers for regional managers, the fixed head-office UUID). The directory
// is small, so it is loaded whole and refreshed after a short time instead of queried per call.
//
// A refresh never holds calls up: once a directory is loaded, calls resolve from it while a stale one reloads
// in the background. A load has a time limit (a stuck owner read would otherwise block every caller); when a
// refresh fails or runs out of time, the previous directory keeps serving, the failure is logged once until a
// load succeeds again, and the next refresh is tried after the usual interval. The first load has a longer limit:
// with no directory yet there is nothing else to serve, and giving up early only fails the call while the same
// owner read is still on its way (an embedded database's owner reads queue behind a write, such as a seed).
import { HEAD_OFFICE_USER_ID } from '../data/stores.js';
import { DatabaseUnavailableError, UnknownIdentityError } from '../infra/errors.js';
import type { Identity, IdentityRole, RowSet } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REFRESH_AFTER_MS = 60_000;
/** Dev mode: head office reads personal data in clear, managers see it masked. */
export const DEFAULT_PII_READ_ROLES: readonly IdentityRole[] = ['head_office'];

export interface IdentityDirectoryOptions {
  /** Longest a refresh may take while a previous directory serves (default 5 s). */
  readonly timeoutMs?: number;
  /** Longest the first load may take, callers waiting on it (default 30 s). */
  readonly firstLoadTimeoutMs?: number;
  readonly warn?: (message: string) => void;
  /** Roles whose identities may read personal data in clear (config ZAVA_PII_READ_ROLES; default head office). */
  readonly piiReadRoles?: readonly IdentityRole[];
}

export class IdentityDirectory {
  private identities: Map<string, Identity> | undefined;
  private loadedAt = 0;
  private loading: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly ownerQuery: (sql: string) => Promise<RowSet>,
    private readonly options: IdentityDirectoryOptions = {},
  ) {}

  async resolve(userId: string | undefined | null): Promise<Identity> {
    if (userId === undefined || userId === null || userId.trim() === '') {
      throw new UnknownIdentityError('no identity given: set the x-rls-user-id header (HTTP) or ZAVA_RLS_USER_ID (stdio)');
    }
    const id = userId.trim().toLowerCase();
    if (!UUID.test(id)) throw new UnknownIdentityError(`identity "${truncate(userId)}" is not a UUID`);
    if (!this.identities) await this.refresh();
    else if (Date.now() - this.loadedAt > REFRESH_AFTER_MS) void this.refresh().catch(() => undefined);
    const identity = this.identities?.get(id);
    if (!identity) throw new UnknownIdentityError(`unknown identity ${id}: it is not a store, regional or head-office manager`);
    return identity;
  }

  /** Reloads the directory; concurrent callers share one load. Rejects only when there is no directory at all. */
  async refresh(): Promise<void> {
    const limit = this.identities ? (this.options.timeoutMs ?? 5_000) : (this.options.firstLoadTimeoutMs ?? 30_000);
    this.loading ??= this.loadWithin(limit).finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async loadWithin(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DatabaseUnavailableError(`loading the identity directory took longer than ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.load(), timeout]);
      this.failing = false;
    } catch (error) {
      if (!this.identities) throw error;
      // Keep serving the previous directory; try again after the usual interval.
      this.loadedAt = Date.now();
      if (!this.failing) {
        this.failing = true;
        this.options.warn?.(`refreshing the identity directory failed (${error instanceof Error ? error.message : String(error)}); still serving the previous one`);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async load(): Promise<void> {
    const stores = await this.ownerQuery('SELECT store_id, rls_user_id::text, region FROM retail.stores ORDER BY store_id');
    const regional = await this.ownerQuery(
      'SELECT rls_user_id::text, region FROM zava_private.regional_managers ORDER BY rls_user_id, region',
    );
    const next = new Map<string, Identity>();
    const piiRoles = new Set(this.options.piiReadRoles ?? DEFAULT_PII_READ_ROLES);
    const add = (identity: Omit<Identity, 'pii'>) => next.set(identity.userId, { ...identity, pii: piiRoles.has(identity.role) });
    add({ userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' });
    const storesByRegion = new Map<string, number[]>();
    for (const [storeId, managerId, region] of stores.rows as [number, string, string][]) {
      add({ userId: managerId, role: 'store_manager', storeIds: [storeId] });
      storesByRegion.set(region, [...(storesByRegion.get(region) ?? []), storeId]);
    }
    const regionsByManager = new Map<string, string[]>();
    for (const [managerId, region] of regional.rows as [string, string][]) {
      regionsByManager.set(managerId, [...(regionsByManager.get(managerId) ?? []), region]);
    }
    for (const [managerId, regions] of regionsByManager) {
      const storeIds = [...new Set(regions.flatMap((region) => storesByRegion.get(region) ?? []))].sort((a, b) => a - b);
      add({ userId: managerId, role: 'regional_manager', storeIds });
    }
    this.identities = next;
    this.loadedAt = Date.now();
  }
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
