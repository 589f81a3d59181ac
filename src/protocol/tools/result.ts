// Tool answers shared by the tools.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}
