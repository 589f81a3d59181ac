// What the server backend adds to the `pg` driver at the wire, so that nothing PostgreSQL sends can take the
// process down, and a running statement can be stopped at once.
//
// - guardConnection: pg-protocol buffers a whole message before parsing it and throws from the socket's 'data'
//   handler when it cannot (ERR_STRING_TOO_LONG for a ~512 MB value), which nothing catches: the process exits.
//   Each message's declared length is checked as its header arrives, before it is buffered: a message over the
//   limit destroys the connection (failing only the call on it). Any error thrown while pg parses or dispatches
//   a chunk destroys the connection the same way instead of escaping. And a connection always has an 'error'
//   listener (pg-pool has none while a client is checked out, so a socket error then was an uncaught 'error').
// - cancelRequest: the protocol's CancelRequest (process id + secret key, on a new socket, no authentication),
//   which is what `pg`'s own Client#cancel sends, without needing a second login or a free pool connection.
//   PostgreSQL accepts it before any TLS negotiation and without consulting pg_hba.
import net from 'node:net';
import type pg from 'pg';

/** A connection's stream, as pg holds it (net.Socket or tls.TLSSocket). */
type Stream = NodeJS.EventEmitter & { destroy(error?: Error): void };

/** A message from PostgreSQL larger than the limit: the connection was closed before reading it. */
export class WireLimitError extends Error {
  constructor(readonly declaredBytes: number, readonly limitBytes: number) {
    super(`the database sent a ${declaredBytes}-byte message; the limit is ${limitBytes}`);
    this.name = 'WireLimitError';
  }
}

/**
 * Installs the message-size check and the exception barrier on a connected client (pool 'connect' event: the
 * stream is then between messages). `onError` hears about every connection error (logging); it never throws.
 */
export function guardConnection(client: pg.Client, limitBytes: number, onError: (error: Error) => void): void {
  client.on('error', onError);
  const stream = (client as unknown as { connection: { stream: Stream } }).connection.stream;
  const listeners = stream.listeners('data') as ((chunk: Buffer) => void)[];
  // Message framing: 1 type byte, then a 4-byte length that counts itself. `skip` bytes of the current message
  // remain; a header split across chunks is gathered in `header`.
  let skip = 0;
  const header = Buffer.alloc(5);
  let headerBytes = 0;
  const check = (chunk: Buffer): void => {
    let offset = 0;
    while (offset < chunk.length) {
      if (skip > 0) {
        const step = Math.min(skip, chunk.length - offset);
        skip -= step;
        offset += step;
        continue;
      }
      const take = Math.min(5 - headerBytes, chunk.length - offset);
      chunk.copy(header, headerBytes, offset, offset + take);
      headerBytes += take;
      offset += take;
      if (headerBytes < 5) return;
      headerBytes = 0;
      const length = header.readUInt32BE(1);
      if (length > limitBytes) throw new WireLimitError(length, limitBytes);
      skip = length - 4;
    }
  };
  for (const listener of listeners) {
    stream.removeListener('data', listener);
    stream.on('data', (chunk: Buffer) => {
      try {
        check(chunk);
        listener(chunk);
      } catch (error) {
        // The parser's state is unknown now: this connection is finished, and only its call fails.
        stream.removeAllListeners('data');
        stream.destroy(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }
}

/** Sends PostgreSQL's CancelRequest for the backend `pid` (best effort, bounded in time). */
export function cancelRequest(target: { host: string; port: number }, pid: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = target.host.startsWith('/')
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect(target.port, target.host);
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(5_000, done);
    socket.once('error', done);
    socket.once('close', done);
    socket.once('connect', () => {
      const message = Buffer.alloc(16);
      message.writeInt32BE(16, 0);
      message.writeInt32BE(80877102, 4); // the cancel request code
      message.writeInt32BE(pid, 8);
      message.writeInt32BE(secretKey, 12);
      // PostgreSQL closes the socket once it has read the request.
      socket.end(message);
    });
  });
}
