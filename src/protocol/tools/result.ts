// Tool answers shared by the tools.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type CompactOutcome, markAsData, toJson } from '../../analytics/format.js';

export function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** A compact result as text marked as data (for the model) and as structured content (for the client). */
export function compactAnswer({ result, isError }: CompactOutcome, subject: string): CallToolResult {
  return {
    content: [{ type: 'text', text: markAsData(toJson(result), `${subject} ${isError ? 'error' : 'result'}`) }],
    structuredContent: result as unknown as Record<string, unknown>,
    ...(isError ? { isError: true } : {}),
  };
}
