// The slow-query record (and the statement metrics' feed). Every statement a tool runs in an identity-scoped transaction is timed here, whatever
// the tool (execute_sales_query, search, the typed analytics); one that takes ZAVA_SLOW_QUERY_MS or longer (or
// hits the statement timeout) is logged at warn — one line per slow call — and counted per fingerprint.
// Decisions:
// - The statement is identified by libpg-query's fingerprint (PostgreSQL's own normalization: the same query
//   with other constants has the same fingerprint) and shown normalized (constants replaced by $1, $2 …), so no
//   customer e-mail or other literal from a WHERE clause reaches the log.
// - Only the role and the store scope of the identity are recorded, never who it was.
// - Fingerprinting costs a parse, paid only by calls that were slow anyway; fast calls cost a clock read.
// - The per-fingerprint table is bounded (least recently slow dropped first) and feeds the operators' view
//   (GET /health?detail=1).
import { fingerprintSync, loadModule, normalizeSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { annotateSpan, inSpan } from '../infra/tracing.js';
import { withIdentityWrapped } from './decorate.js';
import type { Database, Identity, ReadSession } from './types.js';

export interface SlowQueryStats {
  readonly fingerprint: string;
  /** The statement with its constants replaced by placeholders (at most 500 characters). */
  readonly statement: string;
  readonly count: number;
  readonly maxMs: number;
  readonly totalMs: number;
  readonly lastAt: string;
}

export interface SlowQueryEvent {
  readonly fingerprint: string;
  readonly statement: string;
  readonly ms: number;
  readonly rows: number | null;
  readonly outcome: 'ok' | 'failed';
  readonly role: Identity['role'];
  readonly stores: 'all' | number;
}

const MAX_STATEMENT_CHARS = 500;
const MAX_FINGERPRINTS = 500;

export class SlowQueryLog {
  private readonly stats = new LRUCache<string, { statement: string; count: number; maxMs: number; totalMs: number; lastAt: number }>({ max: MAX_FINGERPRINTS });
  private ready = false;

  constructor(
    readonly thresholdMs: number,
    private readonly report: (event: SlowQueryEvent) => void,
  ) {
    // The parser's WASM module; until it is loaded a slow statement is recorded under a plain hash of its text.
    void loadModule().then(() => (this.ready = true), () => undefined);
  }

  /** Times one statement; records it when it was slow. */
  observe(sql: string, ms: number, rows: number | null, identity: Identity, failed: boolean): void {
    if (ms < this.thresholdMs) return;
    const { fingerprint, statement } = this.identify(sql);
    const entry = this.stats.get(fingerprint) ?? { statement, count: 0, maxMs: 0, totalMs: 0, lastAt: 0 };
    entry.count++;
    entry.maxMs = Math.max(entry.maxMs, ms);
    entry.totalMs += ms;
    entry.lastAt = Date.now();
    this.stats.set(fingerprint, entry);
    this.report({
      fingerprint,
      statement,
      ms: Math.round(ms),
      rows,
      outcome: failed ? 'failed' : 'ok',
      role: identity.role,
      stores: identity.storeIds === 'all' ? 'all' : identity.storeIds.length,
    });
  }

  /** The slowest statements seen (by their slowest run), for the operators' view. */
  top(limit = 10): SlowQueryStats[] {
    return [...this.stats.entries()]
      .map(([fingerprint, s]) => ({
        fingerprint,
        statement: s.statement,
        count: s.count,
        maxMs: Math.round(s.maxMs),
        totalMs: Math.round(s.totalMs),
        lastAt: new Date(s.lastAt).toISOString(),
      }))
      .sort((a, b) => b.maxMs - a.maxMs)
      .slice(0, limit);
  }

  private identify(sql: string): { fingerprint: string; statement: string } {
    if (this.ready) {
      try {
        return { fingerprint: fingerprintSync(sql), statement: clip(normalizeSync(sql)) };
      } catch {
        // not parseable (it failed in PostgreSQL too): fall through
      }
    }
    // Unparsed text may hold literals: only its length and hash are kept.
    return { fingerprint: `text:${hash(sql)}`, statement: `(unparsed statement of ${sql.length} characters)` };
  }
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_STATEMENT_CHARS ? `${oneLine.slice(0, MAX_STATEMENT_CHARS)}…` : oneLine;
}

function hash(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The database as tools see it, with every identity-scoped statement timed into `slow`. Only withIdentity is
 * wrapped; everything else is the database itself.
 */
export function withSlowQueryLog<D extends Database>(
  db: D,
  slow: SlowQueryLog,
  /** Told of every statement (metrics): its time, rows, whether it was cut short or failed, and the role. */
  onStatement?: (sample: { ms: number; rows: number | null; truncated: boolean; failed: boolean; role: string }) => void,
): D {
  const withIdentity: Database['withIdentity'] = (identity, work, options) =>
    db.withIdentity(
      identity,
      (session) => {
        const timed: ReadSession = {
          query: (sql, params, queryOptions) =>
            inSpan('db.statement', { 'db.system': 'postgresql', 'zava.role': identity.role }, async () => {
              const started = performance.now();
              try {
                const rows = await session.query(sql, params, queryOptions);
                annotateSpan({ 'zava.rows': rows.rowCount, 'zava.truncated': rows.truncated });
                const ms = performance.now() - started;
                slow.observe(sql, ms, rows.rowCount, identity, false);
                onStatement?.({ ms, rows: rows.rowCount, truncated: rows.truncated, failed: false, role: identity.role });
                return rows;
              } catch (error) {
                const ms = performance.now() - started;
                slow.observe(sql, ms, null, identity, true);
                onStatement?.({ ms, rows: null, truncated: false, failed: true, role: identity.role });
                throw error;
              }
            }),
        };
        return work(timed);
      },
      options,
    );
  return withIdentityWrapped(db, withIdentity);
}
