// Logs on stderr (fd 2), never stdout: on stdio, stdout carries the MCP protocol itself. JSON lines for machines
// (a log collector, a pipe, CI); readable lines for a person at a terminal, such as the first-run summary of
// `npm start`. ZAVA_LOG_FORMAT chooses: `json`, `pretty`, or `auto` (pretty only when stderr is a terminal).
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { traceFields } from './tracing.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

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
    redact: { paths: ['password', '*.password', 'databaseUrl', '*.databaseUrl', 'authorization', '*.authorization'], censor: '***' },
  };
  const human = isHumanFormat(format);
  // Synchronous writes either way: a line logged just before exit (shutdown, fatal error) is not lost.
  if (human) {
    return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}
