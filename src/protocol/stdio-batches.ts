// JSON-RPC batches on stdio. MCP removed batches in revision 2025-06-18, and the SDK's stdio transport drops a
// line holding a JSON array without answering, so a client that sends one waits forever. This filter sits between
// stdin and the transport: a line whose first non-blank character is `[` is dropped and answered at once with
// an "invalid request" error; every other line passes through as it came (blanks before a message dropped). It
// looks only at the start of each line and never buffers one, so a huge line costs no memory here.
import { Transform, type TransformCallback } from 'node:stream';

export const BATCH_REFUSAL_MESSAGE = 'JSON-RPC batches are not supported (MCP removed them in revision 2025-06-18): send one request per message';

const NEWLINE = 0x0a;
const OPEN_BRACKET = 0x5b;
/** Blanks that may precede a message on its line: space, tab, carriage return. */
const BLANKS = new Set([0x20, 0x09, 0x0d]);

export class BatchRefusal extends Transform {
  /** Where in the current line we are: before its first non-blank byte, inside a passed line, or inside a refused one. */
  private state: 'start' | 'pass' | 'drop' = 'start';

  constructor(private readonly refuse: (message: string) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let from = 0; // start of the bytes still to pass on
    const pass = (to: number) => {
      if (to > from) this.push(chunk.subarray(from, to));
    };
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (this.state === 'start') {
        if (BLANKS.has(byte)) {
          // Blanks before a message mean nothing to JSON: dropped, so a batch after them is still seen.
          pass(i);
          from = i + 1;
        } else if (byte === OPEN_BRACKET) {
          pass(i);
          this.state = 'drop';
        } else if (byte !== NEWLINE) {
          this.state = 'pass';
        }
      } else if (byte === NEWLINE) {
        if (this.state === 'drop') {
          this.refuse(BATCH_REFUSAL_MESSAGE);
          from = i + 1;
        }
        this.state = 'start';
      }
    }
    if (this.state !== 'drop') pass(chunk.length);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.state === 'drop') this.refuse(BATCH_REFUSAL_MESSAGE);
    callback();
  }
}

/** The JSON-RPC answer to a refused batch: an invalid request with no id (a batch has none of its own). */
export function batchRefusalLine(message: string): string {
  return `${JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message } })}\n`;
}
