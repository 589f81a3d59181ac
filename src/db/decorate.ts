// A database whose identity-scoped reads go through a wrapper (the slow-query record, the data-version capture),
// everything else being the database itself.
import type { Database } from './types.js';

export function withIdentityWrapped<D extends Database>(db: D, withIdentity: Database['withIdentity']): D {
  // Methods are bound once, not on every access: tools reach the database through this on every call.
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property === 'withIdentity') return withIdentity;
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!bound.has(property)) bound.set(property, (value as (...args: unknown[]) => unknown).bind(target));
      return bound.get(property);
    },
  });
}
