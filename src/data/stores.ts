// The Zava Retail stores, their manager identities and the generator weights (SPEC.md, "Stores").
// The UUIDs are the reference system's, so configurations written for it keep working.

export const HEAD_OFFICE_USER_ID = '00000000-0000-0000-0000-000000000000';

export interface StoreDefinition {
  readonly storeId: number;
  readonly name: string;
  readonly managerId: string;
  readonly isOnline: boolean;
  readonly region: string;
  /** Share of customers whose primary store this is. */
  readonly customerWeight: number;
  /** Multiplies how many orders a customer places. */
  readonly orderFrequency: number;
  /** Multiplies how much goes into an order. */
  readonly orderValue: number;
}

export const STORES: readonly StoreDefinition[] = [
  { storeId: 1, name: 'Zava Retail Seattle', managerId: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', isOnline: false, region: 'Puget Sound', customerWeight: 30, orderFrequency: 1.5, orderValue: 1.3 },
  { storeId: 2, name: 'Zava Retail Bellevue', managerId: '6ba7b810-9dad-11d1-80b4-00c04fd430c8', isOnline: false, region: 'Puget Sound', customerWeight: 25, orderFrequency: 1.3, orderValue: 1.2 },
  { storeId: 3, name: 'Zava Retail Tacoma', managerId: 'a1b2c3d4-e5f6-7890-abcd-ef1234567890', isOnline: false, region: 'Puget Sound', customerWeight: 20, orderFrequency: 1.2, orderValue: 1.1 },
  { storeId: 4, name: 'Zava Retail Spokane', managerId: 'd8e9f0a1-b2c3-4567-8901-234567890abc', isOnline: false, region: 'Eastern Washington', customerWeight: 8, orderFrequency: 1.0, orderValue: 1.0 },
  { storeId: 5, name: 'Zava Retail Everett', managerId: '3b9ac9fa-cd5e-4b92-a7f2-b8c1d0e9f2a3', isOnline: false, region: 'Puget Sound', customerWeight: 7, orderFrequency: 0.9, orderValue: 0.95 },
  { storeId: 6, name: 'Zava Retail Redmond', managerId: 'e7f8a9b0-c1d2-3e4f-5678-90abcdef1234', isOnline: false, region: 'Puget Sound', customerWeight: 6, orderFrequency: 0.8, orderValue: 0.9 },
  { storeId: 7, name: 'Zava Retail Kirkland', managerId: '9c8b7a65-4321-fed0-9876-543210fedcba', isOnline: false, region: 'Puget Sound', customerWeight: 4, orderFrequency: 0.7, orderValue: 0.85 },
  { storeId: 8, name: 'Zava Retail Online', managerId: '2f4e6d8c-1a3b-5c7e-9f0a-b2d4f6e8c0a2', isOnline: true, region: 'Online', customerWeight: 30, orderFrequency: 1.5, orderValue: 1.5 },
];

export interface RegionalManagerDefinition {
  readonly managerId: string;
  readonly name: string;
  readonly regions: readonly string[];
}

/** Regional managers: one for the Puget Sound stores, one for eastern Washington and the online store. */
export const REGIONAL_MANAGERS: readonly RegionalManagerDefinition[] = [
  { managerId: '5a1e7c3d-8b2f-4e6a-9c0d-1f2e3a4b5c6d', name: 'Puget Sound regional manager', regions: ['Puget Sound'] },
  { managerId: '7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09', name: 'Eastern & Online regional manager', regions: ['Eastern Washington', 'Online'] },
];

/** Relative order volume per year, 2020–2026 (SPEC.md). */
export const YEAR_WEIGHTS: ReadonlyArray<readonly [number, number]> = [
  [2020, 1.0],
  [2021, 1.1],
  [2022, 1.21],
  [2023, 1.15],
  [2024, 1.265],
  [2025, 1.392],
  [2026, 1.531],
];
