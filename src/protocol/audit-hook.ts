// AUDIT HOOK (issue 11) — temporary home. Every tool registered on a server after auditToolCalls() is wrapped so
// that its outcome is recorded in the audit trail (src/infra/audit.ts) when the call finishes. It is the one place
// tool calls finish today; when the call pipeline exists (identity, rate limits, ...), move `finishedCall` into
// its onCallFinished step and delete the registerTool wrapper.
//
// What is recorded comes from the call itself (tool, arguments, request id, client name, the identity the request
// asked for) and from the tool's answer (rows, truncated, the error text, classified below). Nothing here waits
// for the audit store: record() only queues.
import type { CallToolResult, McpServer, ServerContext } from '@modelcontextprotocol/server';
import { scopeOf } from '../db/context.js';
import type { AuditEntry, AuditOutcome } from '../infra/audit.js';
import type { Caller, ServerDeps } from './context.js';

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
    [/the query is empty|characters long; the limit is/i, 'refused', 'input'],
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

function clientNameOf(server: McpServer, ctx: ServerContext): string | undefined {
  const meta = ctx.mcpReq._meta as Record<string, unknown> | undefined;
  const fromMeta = meta?.['io.modelcontextprotocol/clientInfo'] as { name?: unknown } | undefined;
  if (typeof fromMeta?.name === 'string') return fromMeta.name;
  return server.server.getClientVersion()?.name;
}

/** Wraps server.registerTool so every tool registered afterwards reports its finished calls to deps.audit. */
export function auditToolCalls(server: McpServer, deps: ServerDeps, caller: Caller): void {
  const audit = deps.audit;
  if (!audit) return;
  const register = server.registerTool.bind(server) as (name: string, config: unknown, callback: (...args: unknown[]) => unknown) => unknown;
  const wrapped = (name: string, config: unknown, callback: (...args: unknown[]) => unknown) =>
    register(name, config, async (...callArgs: unknown[]) => {
      // Tools with an input schema are called (args, ctx); those without, (ctx).
      const ctx = callArgs.at(-1) as ServerContext;
      const args = callArgs.length > 1 ? callArgs[0] : undefined;
      const started = performance.now();
      const at = new Date();
      const finish = async (outcome: Pick<AuditEntry, 'outcome' | 'rows' | 'truncated' | 'refusal' | 'errorClass'>) => {
        const durationMs = performance.now() - started;
        const requested = ctx.http?.authInfo?.extra?.['userId'];
        const userId = caller.userIdOf({ requestedUserId: typeof requested === 'string' ? requested : undefined });
        const sub = ctx.http?.authInfo?.extra?.['sub'];
        // The directory is in memory: resolving again costs a map lookup, and says which scope the call ran under.
        const identity = userId === undefined ? undefined : await deps.db.resolveIdentity(userId).catch(() => undefined);
        audit.record({
          at,
          sub: typeof sub === 'string' ? sub : userId,
          userId: identity?.userId,
          role: identity?.role,
          storeScope: identity ? scopeOf(identity) : undefined,
          pii: identity?.pii,
          tool: name,
          text: requestText(name, args),
          ...outcome,
          durationMs,
          requestId: String(ctx.mcpReq.id),
          clientName: clientNameOf(server, ctx),
        });
      };
      try {
        const result = (await callback(...callArgs)) as CallToolResult;
        void finish(classifyOutcome(result)).catch((error: unknown) => deps.log.warn({ err: error }, 'audit record failed'));
        return result;
      } catch (error) {
        void finish({ outcome: 'error', errorClass: error instanceof Error ? error.name : 'internal' }).catch(() => undefined);
        throw error;
      }
    });
  (server as unknown as { registerTool: typeof wrapped }).registerTool = wrapped;
}
