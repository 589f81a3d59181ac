// Tool arguments are validated inside the call pipeline, not by the SDK (issue 12: every error a client sees
// carries a stable code and is counted and audited).
// Decisions:
// - The SDK validates a tool's input schema before our handler runs and answers a failure with a bare tool error
//   (no code, no metric, no audit row). So each tool is registered with `advertised(schema)`: the SDK lists the
//   real JSON Schema in tools/list (clients and models see exactly what they saw before) but accepts anything, and
//   the pipeline validates with the real schema (`validateArguments`) and answers VALIDATION_ERROR through the
//   tool's own refusal shape.
// - The SDK's element cap (maxToolInputElements) raises the same bare error, so the cap moves here too: counted
//   before the schema runs, so a huge argument tree costs one bounded walk, not a validation of every element.
import type { StandardSchemaWithJSON } from '@modelcontextprotocol/server';

/** Most array elements and object members one tools/call's arguments may hold (the largest honest call: 50 table names). */
export const MAX_TOOL_INPUT_ELEMENTS = 1000;

/** The schema as the SDK sees it: the real JSON Schema for tools/list, and a validation that accepts anything. */
export function advertised<Schema extends StandardSchemaWithJSON>(schema: Schema): Schema {
  const standard = schema['~standard'];
  return {
    '~standard': {
      version: 1,
      vendor: 'zava-mcp',
      validate: (value: unknown) => ({ value }),
      jsonSchema: standard.jsonSchema,
    },
  } as unknown as Schema;
}

export type Validated<Args> = { readonly ok: true; readonly args: Args } | { readonly ok: false; readonly message: string };

/** The arguments checked against the tool's real schema: its parsed value (defaults filled), or what is wrong. */
export async function validateArguments<Args>(tool: string, schema: StandardSchemaWithJSON | undefined, args: unknown): Promise<Validated<Args>> {
  const input = args ?? {};
  if (countElements(input, MAX_TOOL_INPUT_ELEMENTS) > MAX_TOOL_INPUT_ELEMENTS) {
    return { ok: false, message: `invalid arguments for ${tool}: they hold more than ${MAX_TOOL_INPUT_ELEMENTS} elements` };
  }
  if (!schema) return { ok: true, args: input as Args };
  const result = await schema['~standard'].validate(input);
  if (!result.issues || result.issues.length === 0) return { ok: true, args: (result as { value: Args }).value };
  const problems = result.issues.map((issue) => {
    const path = (issue.path ?? []).map((part) => String(typeof part === 'object' ? part.key : part)).join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  return { ok: false, message: `invalid arguments for ${tool}: ${problems.join('; ')}` };
}

/** Array elements and object members in a value, counting stops once past `limit`. */
function countElements(value: unknown, limit: number): number {
  let count = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && count <= limit) {
    const next = pending.pop();
    if (next === null || typeof next !== 'object') continue;
    const children = Array.isArray(next) ? next : Object.values(next);
    count += children.length;
    if (count > limit) break;
    for (const child of children) pending.push(child);
  }
  return count;
}
