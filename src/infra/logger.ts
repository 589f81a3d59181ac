// Logs on stderr (fd 2), never stdout: on stdio, stdout carries the MCP protocol itself. JSON lines for machines
// (a log collector, a pipe, CI); readable lines for a person at a terminal, such as the first-run summary of
// `npm start`. ZAVA_LOG_FORMAT chooses: `json`, `pretty`, or `auto` (pretty only when stderr is a terminal).
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { traceFields } from './tracing.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

// Secrets and personal data never reach a log line (issue 11). Two layers:
// - redact paths: fields that hold a secret by name (passwords, tokens, connection strings, authorization headers)
//   are replaced whole, wherever a caller puts them;
// - scrubbing: every string of every line (the message, fields, an error's message and stack) is rewritten so that
//   e-mail addresses, phone numbers, bearer tokens, JWTs and passwords inside connection URLs are masked. A caller's
//   SQL in a refusal reason or a driver's error message may quote a customer's e-mail; the scrub catches it there.
const REDACT_PATHS = [
  'password', '*.password', 'queryRolePassword', '*.queryRolePassword',
  'databaseUrl', '*.databaseUrl', 'queryDatabaseUrl', '*.queryDatabaseUrl', 'connectionString', '*.connectionString',
  'token', '*.token', 'accessToken', '*.accessToken', 'authorization', '*.authorization', 'headers.authorization',
  '*.headers.authorization', 'headers.cookie', '*.headers.cookie',
];

const SCRUBS: ReadonlyArray<readonly [RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // user:password@ in any URL (postgres://, redis://, https://)
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi, '$1:***@'],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer ***'],
  // JWT/JWS compact form: three base64url parts, the first a JSON header ("eyJ")
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, '***jwt***'],
  // e-mail addresses, but not the user@host of a URL (postgres://postgres@127.0.0.1 stays readable)
  [/(?<!\/\/[^\s@]*)([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)/g, (_m, first: string, domain: string) => `${first}***@${domain}`],
  // phone numbers: 7+ digits with at least one of the usual separators (a plain count stays), keeping the last four
  [/(?<![\w.])\+?\(?\d{1,4}\)?(?:[\s.-]?\(?\d{2,4}\)?){1,3}[\s.-]?(\d{4})\b(?!\.\d)/g, (match: string, last: string) =>
    match.replace(/\D/g, '').length >= 7 && /[\s.()-]/.test(match) ? `***-***-${last}` : match],
];

/** A string with e-mails, phones, bearer tokens, JWTs and URL passwords masked. */
export function scrubText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SCRUBS) out = out.replace(pattern, replacement as string);
  return out;
}

/** A value with every string scrubbed (objects and arrays copied; errors become plain objects pino's serializer keeps). */
export function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    const plain: Record<string, unknown> = { type: value.name, message: scrubText(value.message), stack: value.stack ? scrubText(value.stack) : undefined };
    for (const [key, field] of Object.entries(value)) plain[key] = scrubValue(field, depth + 1);
    if (value.cause !== undefined) plain['cause'] = scrubValue(value.cause, depth + 1);
    return plain;
  }
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) copy[key] = scrubValue(field, depth + 1);
  return copy;
}

/** Whether logs (and progress) are written for a person rather than as JSON lines. */
export function isHumanFormat(format: LogFormat): boolean {
  return format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
}

export function createLogger(level: string, format: LogFormat = 'auto', name = 'zava-mcp'): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // The trace of the call a line is written in (when tracing is on), so logs and traces join.
    mixin: traceFields,
    // Identities and SQL are logged by the callers deliberately; nothing here adds headers or bodies.
    redact: { paths: REDACT_PATHS, censor: '***' },
    // Runs only for enabled levels: a debug line that is not written costs nothing here.
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => scrubValue(arg)) as Parameters<typeof method>);
      },
    },
  };
  const human = isHumanFormat(format);
  // Synchronous writes either way: a line logged just before exit (shutdown, fatal error) is not lost.
  if (human) {
    return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}
