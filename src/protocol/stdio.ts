// stdio for clients that spawn the server (Claude Desktop, VS Code "command" servers). stdout carries only
// the protocol; logs go to stderr. The identity is the process's: --rls-user-id / ZAVA_RLS_USER_ID. JSON-RPC
// batches are answered with an error before the SDK sees them (stdio-batches.ts).
// The SDK v2 entry `serveStdio` pins each connection to the era its opening exchange selects: 2026-07-28 (a
// `server/discover` probe, then enveloped requests) or 2025-era (the initialize handshake). One McpServer serves
// the connection (plus one for a discover probe, dropped if the client falls back to initialize).
import { serveStdio, StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import type { ServerDeps } from './context.js';
import { BatchRefusal, batchRefusalLine } from './stdio-batches.js';
import { createMcpServer } from './server.js';

export interface RunningStdioServer {
  /** Resolves when the client closes stdin (it is done with us). */
  readonly ended: Promise<void>;
  /** Stops reading requests, lets calls in progress finish (up to drainMs), then closes the transport. */
  close(drainMs: number): Promise<boolean>;
}

export async function startStdioServer(deps: ServerDeps, userId: string | undefined): Promise<RunningStdioServer> {
  const caller = { transport: 'stdio' as const, userIdOf: () => userId };
  const input = process.stdin.pipe(new BatchRefusal((message) => process.stdout.write(batchRefusalLine(message))));
  const transport = new StdioServerTransport(input, process.stdout);
  const ended = new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
  });
  const handle = serveStdio(() => createMcpServer(deps, caller), {
    transport,
    onerror: (error) => deps.log.debug({ err: error }, 'MCP stdio message refused or failed'),
  });
  return {
    ended,
    async close(drainMs: number): Promise<boolean> {
      // Stop taking requests, but keep the transport open so answers in progress can still be written.
      process.stdin.unpipe(input);
      process.stdin.pause();
      const drained = await deps.inFlight.drained(drainMs);
      await handle.close().catch(() => undefined);
      process.stdin.destroy();
      return drained;
    },
  };
}
