// 2025-era Streamable HTTP (the initialize handshake; VS Code and most clients of 2025), stateless, JSON answers.
// Why not a transport per request: the SDK's stateless idiom builds a Streamable HTTP transport, a web Request and
// a web Response for every POST, connects a server to it and closes it again (an SdkError per close); that was
// most of the edge's cost per call. Here one McpServer stays connected to one channel for the life of the process,
// as on stdio, and each POST is one message in and one answer out: its JSON-RPC id is swapped for a process-unique
// one on the way in (two clients may both send id 1) and swapped back on the way out. The caller's identity rides
// with the message as the SDK's per-request auth info, and a client that goes away cancels its call through the
// SDK's own cancellation (notifications/cancelled), which aborts the handler's signal.
// What the SDK's stateless transport checks, this does too: Accept, MCP-Protocol-Version, a JSON-RPC message.
// Notifications and posted responses get 202; server-to-client messages have no stream to ride on and are dropped,
// as in the SDK's JSON mode (no tool here sends any).
import {
  type AuthInfo,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResponse,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type MessageExtraInfo,
  type RequestId,
  SUPPORTED_PROTOCOL_VERSIONS,
  type Transport,
} from '@modelcontextprotocol/server';

export type LegacyAnswer =
  | { readonly status: 200; readonly body: JSONRPCMessage }
  | { readonly status: 202 }
  | { readonly status: 400 | 406 | 503; readonly code: number; readonly message: string };

interface Waiting {
  readonly id: RequestId;
  resolve(message: JSONRPCMessage): void;
}

export class LegacyHttpChannel implements Transport {
  onmessage?: (message: JSONRPCMessage, extra?: MessageExtraInfo) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();
  private closed = false;

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (!isJSONRPCResultResponse(message) && !isJSONRPCErrorResponse(message)) return;
    const waiting = typeof message.id === 'number' ? this.waiting.get(message.id) : undefined;
    if (!waiting) return; // its client went away
    this.waiting.delete(message.id as number);
    waiting.resolve({ ...message, id: waiting.id });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }

  /** Serves one POSTed message; `whenGone` registers what to do if the client goes away before its answer. */
  async handle(
    body: unknown,
    headers: { readonly accept?: string | undefined; readonly protocolVersion?: string | undefined },
    authInfo: AuthInfo | undefined,
    whenGone: (listener: () => void) => void,
  ): Promise<LegacyAnswer> {
    if (this.closed) return { status: 503, code: -32000, message: 'the server is shutting down; try again' };
    const accept = headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return { status: 406, code: -32000, message: 'Not Acceptable: the client must accept both application/json and text/event-stream' };
    }
    if (headers.protocolVersion !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(headers.protocolVersion)) {
      return { status: 400, code: -32000, message: `Bad Request: unsupported protocol version ${headers.protocolVersion} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})` };
    }
    const extra: MessageExtraInfo = authInfo ? { authInfo } : {};
    if (isJSONRPCRequest(body)) return { status: 200, body: await this.request(body, extra, whenGone) };
    if (isJSONRPCNotification(body)) {
      // A client's cancellation names its own request id, which no longer identifies a call here; the call is
      // cancelled when that client's request closes instead.
      if (body.method !== 'notifications/cancelled') this.onmessage?.(body, extra);
      return { status: 202 };
    }
    if (isJSONRPCResponse(body)) return { status: 202 };
    return { status: 400, code: -32600, message: 'Invalid Request: the body is not a JSON-RPC 2.0 request, notification or response' };
  }

  private request(message: JSONRPCRequest, extra: MessageExtraInfo, whenGone: (listener: () => void) => void): Promise<JSONRPCMessage> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      this.waiting.set(id, { id: message.id, resolve });
      whenGone(() => {
        if (!this.waiting.delete(id)) return;
        this.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'the client closed its request' } });
      });
      this.onmessage?.({ ...message, id }, extra);
    });
  }
}
