// `zava-mcp audit tail`: the newest rows of the audit trail (migration 10), oldest first, optionally for one
// subject and from a point in time. Read as the owner; the query role cannot see this table.
import { readAudit } from '../db/audit.js';
import type { Config } from '../infra/config.js';
import { ConfigError } from '../infra/errors.js';
import { prepareSchema } from './migrate.js';
import { parseWholeNumber, withDatabase } from './db.js';

export interface AuditTailFlags {
  sub?: string | undefined;
  since?: string | undefined;
  limit?: string | undefined;
  json?: boolean | undefined;
}

/** "2026-11-26", "2026-11-26T10:00:00Z", or a span back from now: "90s", "15m", "2h", "7d". */
export function parseSince(text: string, now = Date.now()): Date {
  const span = /^(\d+)\s*([smhd])$/i.exec(text.trim());
  if (span) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[span[2]!.toLowerCase() as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(span[1]) * unit);
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new ConfigError(`--since must be a date (2026-11-26, 2026-11-26T10:00:00Z) or a span such as 15m, 2h, 7d (got "${text}")`);
  return date;
}

export async function runAuditTail(config: Config, flags: AuditTailFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const since = flags.since !== undefined ? parseSince(flags.since) : undefined;
  const limit = parseWholeNumber('--limit', flags.limit) ?? 50;
  if (limit < 1 || limit > 100_000) throw new ConfigError('--limit must be from 1 to 100000');
  return withDatabase(config, async (db) => {
    await prepareSchema(db, config);
    const result = await readAudit(db, { sub: flags.sub, since, limit });
    const names = result.columns.map((c) => c.name);
    for (const row of result.rows) {
      const entry = Object.fromEntries(names.map((name, i) => [name, row[i]]));
      if (flags.json) {
        out.write(`${JSON.stringify(entry)}\n`);
        continue;
      }
      const fields = [
        String(entry['at']),
        `sub=${entry['sub'] ?? '-'}`,
        `scope=${entry['store_scope'] ?? '-'}`,
        String(entry['tool']),
        String(entry['outcome']),
        entry['row_count'] !== null ? `rows=${entry['row_count']}${entry['truncated'] ? ' (truncated)' : ''}` : '',
        entry['error_class'] ? `class=${entry['error_class']}` : '',
        `${Number(entry['duration_ms']).toFixed(1)}ms`,
        `req=${entry['request_id'] ?? '-'}`,
        entry['client_name'] ? `client=${entry['client_name']}` : '',
        entry['refusal'] ? `why=${JSON.stringify(entry['refusal'])}` : '',
        entry['request_text'] ? JSON.stringify(entry['request_text']) : '',
      ].filter(Boolean);
      out.write(`${fields.join(' ')}\n`);
    }
    return 0;
  });
}
