// The audit trail's store (migration 10): batched inserts, the retention prune and the reads of `audit tail`, all
// as the owner. The query role cannot reach zava_audit at all.
import type { AuditEntry } from '../infra/audit.js';
import { auditText } from '../infra/audit.js';
import { AUDIT_SCHEMA } from './migrations.js';
import type { ManagedDatabase, RowSet, SqlParam } from './types.js';

const COLUMNS = [
  ['at', 'timestamptz'], ['sub', 'text'], ['user_id', 'text'], ['role', 'text'], ['store_scope', 'text'], ['pii', 'boolean'],
  ['tool', 'text'], ['request_text', 'text'], ['outcome', 'text'], ['row_count', 'integer'], ['truncated', 'boolean'],
  ['refusal', 'text'], ['error_class', 'text'], ['duration_ms', 'real'], ['request_id', 'text'], ['client_name', 'text'],
] as const;

const INSERT = `INSERT INTO ${AUDIT_SCHEMA}.tool_calls (${COLUMNS.map(([name]) => name).join(', ')})
  SELECT ${COLUMNS.map(([name]) => name).join(', ')}
    FROM json_to_recordset($1::json) AS x(${COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')})`;

/**
 * One INSERT for the whole batch, in autocommit: a single round trip whatever its size (a BEGIN/COMMIT around it
 * cost two more per batch, which at low call rates is a round trip or two per call), and on the embedded backend
 * no refresh of the readers' snapshot (ownerQuery never makes one).
 */
export async function writeAuditEntries(db: ManagedDatabase, entries: readonly AuditEntry[]): Promise<void> {
  const rows = entries.map((e) => ({
    at: e.at.toISOString(),
    sub: e.sub ?? null,
    user_id: e.userId ?? null,
    role: e.role ?? null,
    store_scope: e.storeScope ?? null,
    pii: e.pii ?? null,
    tool: e.tool,
    request_text: auditText(e.text) ?? null,
    outcome: e.outcome,
    row_count: e.rows ?? null,
    truncated: e.truncated ?? null,
    refusal: auditText(e.refusal) ?? null,
    error_class: e.errorClass ?? null,
    duration_ms: e.durationMs,
    request_id: e.requestId ?? null,
    client_name: e.clientName ?? null,
  }));
  // NUL cannot be stored in text: a tool refuses it at the edge, but the audit must never fail on it.
  const json = JSON.stringify(rows).replaceAll('\\u0000', '\\ufffd');
  await db.ownerQuery(INSERT, [json]);
}

/** Deletes rows older than `days` (0 keeps everything); returns how many went. */
export async function pruneAudit(db: ManagedDatabase, days: number): Promise<number> {
  if (days <= 0) return 0;
  return db.withAdminTransaction(async (session) => {
    await session.query(`SELECT set_config('zava.audit_prune', 'on', true)`);
    const result = await session.query(
      `WITH gone AS (DELETE FROM ${AUDIT_SCHEMA}.tool_calls WHERE at < now() - make_interval(days => $1::int) RETURNING 1) SELECT count(*) FROM gone`,
      [days],
    );
    return Number(result.rows[0]?.[0] ?? 0);
  }, { visibleToReaders: false });
}

export interface AuditQuery {
  readonly sub?: string | undefined;
  readonly since?: Date | undefined;
  /** Most rows (the newest), default 50. */
  readonly limit?: number | undefined;
}

/** The newest rows matching, oldest first (as a log reads). */
export async function readAudit(db: ManagedDatabase, query: AuditQuery): Promise<RowSet> {
  const where: string[] = [];
  const params: SqlParam[] = [];
  if (query.sub !== undefined) {
    params.push(query.sub);
    where.push(`sub = $${params.length}`);
  }
  if (query.since !== undefined) {
    params.push(query.since.toISOString());
    where.push(`at >= $${params.length}::timestamptz`);
  }
  params.push(query.limit ?? 50);
  return db.ownerQuery(
    `SELECT * FROM (
       SELECT id, at, sub, user_id, role, store_scope, pii, tool, outcome, row_count, truncated, refusal, error_class,
              duration_ms, request_id, client_name, request_text
         FROM ${AUDIT_SCHEMA}.tool_calls ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY id DESC LIMIT $${params.length}::int) newest
      ORDER BY id`,
    params,
  );
}
