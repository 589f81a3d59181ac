// The SQL guard (src/security/sql-guard.ts) as the analytics layer uses it: the first line of defence in front
// of Row Level Security. Loaded (its WASM parser warmed up) once, at start-up.
import { createCachedSqlGuard, warmUpSqlGuard } from '../security/sql-guard.js';

export interface GuardVerdict {
  readonly ok: boolean;
  readonly reason?: string | undefined;
}

export type SqlGuard = (sql: string) => Promise<GuardVerdict>;

/** The guard with its verdicts cached per SQL text (bounded; see createCachedSqlGuard). */
export async function loadSqlGuard(options: { maxLength?: number } = {}): Promise<SqlGuard> {
  await warmUpSqlGuard();
  const guard = createCachedSqlGuard(options);
  return (sql) => guard.check(sql);
}
