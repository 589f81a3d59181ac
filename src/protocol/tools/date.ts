// get_current_utc_date: the server's clock, so "last quarter" means the same thing to the model and the data.
import { z } from 'zod';
import { registerTool, type ToolHost } from '../pipeline.js';

export function registerDateTool(host: ToolHost): void {
  registerTool(
    host,
    'get_current_utc_date',
    {
      title: 'Current UTC date and time',
      description:
        'Get the current date and time in UTC, as an ISO-8601 timestamp. Use it to turn relative periods ' +
        '("this year", "last quarter", "past 30 days") into exact dates before writing SQL.',
      inputSchema: z.object({}),
      outputSchema: z.object({
        current_utc_date: z.string().optional().describe('ISO-8601 UTC timestamp, e.g. 2025-06-30T14:05:09.123Z (absent only on error)'),
        err: z.string().optional().describe('what went wrong (rate limit), when the call was refused'),
        code: z.string().optional().describe('stable error code, when err is set'),
      }),
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
      // The clock is no one's data: answered without an identity (still rate limited).
      identity: 'optional',
    },
    async () => {
      const now = new Date().toISOString();
      return { content: [{ type: 'text', text: now }], structuredContent: { current_utc_date: now } };
    },
  );
}
