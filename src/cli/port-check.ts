// Whether the HTTP port can be had, asked before the database is opened: a port in use should cost the operator
// one line and no wait, not a stack trace after the database has been opened and prepared.
import { createServer } from 'node:net';
import { ConfigError } from '../infra/errors.js';

export async function assertPortAvailable(host: string, port: number): Promise<void> {
  if (port === 0) return; // any free port will do
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, () => resolve());
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new ConfigError(`port ${port} on ${host} is already in use (another zava-mcp?); pick another with --port N or PORT=N (0 picks a free one)`);
    }
    if (code === 'EACCES') throw new ConfigError(`not allowed to listen on port ${port} on ${host}; use a port above 1023 with --port N or PORT=N`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      throw new ConfigError(`cannot listen on ${host}: no such local address; set --host or ZAVA_HOST to an address of this machine (127.0.0.1, 0.0.0.0)`);
    }
    throw error;
  } finally {
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}
