// Resolves manager UUIDs to identities from the database's own tables (stores.rls_user_id for store
// managers, zava_private.regional_managers for regional managers, the fixed head-office UUID). The directory
// is small, so it is loaded whole and refreshed after a short time instead of queried per call.
import { HEAD_OFFICE_USER_ID } from '../data/stores.js';
import { UnknownIdentityError } from '../infra/errors.js';
import type { Identity, RowSet } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REFRESH_AFTER_MS = 60_000;

export class IdentityDirectory {
  private identities = new Map<string, Identity>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

  constructor(private readonly ownerQuery: (sql: string) => Promise<RowSet>) {}

  async resolve(userId: string | undefined | null): Promise<Identity> {
    if (userId === undefined || userId === null || userId.trim() === '') {
      throw new UnknownIdentityError('no identity given: set the x-rls-user-id header (HTTP) or ZAVA_RLS_USER_ID (stdio)');
    }
    const id = userId.trim().toLowerCase();
    if (!UUID.test(id)) throw new UnknownIdentityError(`identity "${truncate(userId)}" is not a UUID`);
    if (Date.now() - this.loadedAt > REFRESH_AFTER_MS) await this.refresh();
    const identity = this.identities.get(id);
    if (!identity) throw new UnknownIdentityError(`unknown identity ${id}: it is not a store, regional or head-office manager`);
    return identity;
  }

  /** Reloads the directory; concurrent callers share one load. */
  async refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<void> {
    const stores = await this.ownerQuery('SELECT store_id, rls_user_id::text, region FROM retail.stores ORDER BY store_id');
    const regional = await this.ownerQuery(
      'SELECT rls_user_id::text, region FROM zava_private.regional_managers ORDER BY rls_user_id, region',
    );
    const next = new Map<string, Identity>();
    next.set(HEAD_OFFICE_USER_ID, { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all' });
    const storesByRegion = new Map<string, number[]>();
    for (const [storeId, managerId, region] of stores.rows as [number, string, string][]) {
      next.set(managerId, { userId: managerId, role: 'store_manager', storeIds: [storeId] });
      storesByRegion.set(region, [...(storesByRegion.get(region) ?? []), storeId]);
    }
    const regionsByManager = new Map<string, string[]>();
    for (const [managerId, region] of regional.rows as [string, string][]) {
      regionsByManager.set(managerId, [...(regionsByManager.get(managerId) ?? []), region]);
    }
    for (const [managerId, regions] of regionsByManager) {
      const storeIds = [...new Set(regions.flatMap((region) => storesByRegion.get(region) ?? []))].sort((a, b) => a - b);
      next.set(managerId, { userId: managerId, role: 'regional_manager', storeIds });
    }
    this.identities = next;
    this.loadedAt = Date.now();
  }
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
