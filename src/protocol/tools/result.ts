// Tool answers shared by the tools, and the rule for text arguments.
import type { CallToolResult } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { type CompactOutcome, markAsData, toJson } from '../../analytics/format.js';

/** A compact result as text marked as data (for the model) and as structured content (for the client). */
export function compactAnswer({ result, isError }: CompactOutcome, subject: string): CallToolResult {
  return {
    content: [{ type: 'text', text: markAsData(toJson(result), `${subject} ${isError ? 'error' : 'result'}`) }],
    structuredContent: result as unknown as Record<string, unknown>,
    ...(isError ? { isError: true } : {}),
  };
}

/** C0 controls but tab, newline and carriage return; DEL; C1 controls. None belongs in SQL, a name or a description. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

/**
 * A text argument: refused at the edge, with a message that names the problem, when it holds a control character
 * (a NUL would otherwise reach PostgreSQL, which cannot store it, as a confusing driver error).
 */
export function text(): z.ZodString {
  return z.string().refine((value) => !CONTROL_CHARACTER.test(value), {
    message: 'must not contain control characters (such as NUL, U+0000); only tab, newline and carriage return are allowed',
  });
}
