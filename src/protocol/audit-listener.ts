// The audit trail's step of the call pipeline (issue 11): every finished tool call becomes one audit entry
// (src/infra/audit.ts). What is recorded comes from the pipeline's record of the call (tool, arguments, request id,
// client name, the authenticated subject and the effective identity) and from the tool's answer (rows, truncated,
// the refusal or error, classified below). Nothing here waits for the audit store: record() only queues.
import type { CallToolResult } from '@modelcontextprotocol/server';
import { scopeOf } from '../db/context.js';
import type { AuditEntry, AuditOutcome, AuditSink } from '../infra/audit.js';
import type { CallListener } from './pipeline.js';

/** The text an audit row keeps for each tool's arguments: its SQL, its search text, its table names. */
function requestText(tool: string, args: unknown): string | undefined {
  if (typeof args !== 'object' || args === null) return undefined;
  const a = args as Record<string, unknown>;
  if (tool === 'execute_sales_query' && typeof a['postgresql_query'] === 'string') return a['postgresql_query'];
  if (tool === 'semantic_search_products' && typeof a['query_description'] === 'string') return a['query_description'];
  if (tool === 'get_multiple_table_schemas' && Array.isArray(a['table_names'])) return a['table_names'].map(String).join(', ');
  return undefined;
}

/**
 * Refused, failed or answered, from the tool's answer. The tools answer failures as text (the compact `err`), so the
 * class is read from the wording the services use (analytics/query.ts, describeCommonFailure).
 */
export function classifyOutcome(result: CallToolResult): Pick<AuditEntry, 'outcome' | 'rows' | 'truncated' | 'refusal' | 'errorClass'> {
  const structured = result.structuredContent as Record<string, unknown> | undefined;
  if (!result.isError) {
    const rows = typeof structured?.['n'] === 'number' ? structured['n'] : undefined;
    return { outcome: 'ok', rows, truncated: structured?.['truncated'] === true };
  }
  const first = result.content?.[0];
  const message = typeof structured?.['err'] === 'string' ? structured['err'] : first && first.type === 'text' ? first.text : '';
  const refused = /^query refused: (.*)$/s.exec(message);
  if (refused) return { outcome: 'refused', refusal: refused[1]!.slice(0, 500), errorClass: 'guard' };
  const rules: Array<[RegExp, AuditOutcome, string]> = [
    [/no identity given|unknown identity|is not a UUID|No data is available without a known identity/i, 'refused', 'identity'],
    [/the query is empty|characters long; the limit is|^invalid arguments for /i, 'refused', 'input'],
    [/statement timeout/i, 'error', 'timeout'],
    [/database is unavailable/i, 'error', 'unavailable'],
    [/waited|too many|queue/i, 'error', 'busy'],
    [/cancel/i, 'error', 'cancelled'],
    [/unknown tables?|Valid tables/i, 'refused', 'unknown_table'],
    [/inside the server/i, 'error', 'internal'],
  ];
  for (const [pattern, outcome, errorClass] of rules) {
    if (pattern.test(message)) return outcome === 'refused' ? { outcome, errorClass, refusal: message.slice(0, 500) } : { outcome, errorClass };
  }
  return { outcome: 'error', errorClass: 'query_error' };
}

/** The audit trail as a listener of the call pipeline: one entry per finished call, queued (record() never waits). */
export function auditListener(audit: AuditSink): CallListener {
  return (record) => {
    const { identity } = record;
    audit.record({
      at: new Date(record.startedAt),
      sub: record.subject,
      userId: identity?.userId,
      role: identity?.role,
      storeScope: identity ? scopeOf(identity) : undefined,
      pii: identity?.pii,
      tool: record.tool,
      text: requestText(record.tool, record.args),
      ...classifyOutcome(record.result),
      durationMs: record.durationMs,
      requestId: record.requestId === undefined ? undefined : String(record.requestId),
      clientName: record.clientName,
    });
  };
}
