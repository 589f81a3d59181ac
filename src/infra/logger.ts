// Structured JSON logs on stderr (fd 2), never stdout: on stdio, stdout carries the MCP protocol itself.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'zava-mcp'): Logger {
  // Synchronous writes: a line logged just before exit (shutdown, fatal error) is not lost.
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Identities and SQL are logged by the callers deliberately; nothing here adds headers or bodies.
      redact: { paths: ['password', '*.password', 'databaseUrl', '*.databaseUrl', 'authorization', '*.authorization'], censor: '***' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
