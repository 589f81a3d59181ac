// The one call pipeline every tool goes through (issues 8 and 11): identity → rate limit → execution → error
// mapping → listeners. A tool registers once with `registerTool` and gets all of it; none repeats a stage.
// Decisions:
// - Identity is resolved here, once per call, by the mode's IdentitySource (dev: the x-rls-user-id header or
//   --rls-user-id; jwt: the verified token's claims, narrowed by x-rls-user-id). The tool receives the Identity
//   and hands it to the services, which sign it into the RLS context unchanged.
// - The rate limit is checked after the identity (it is per identity) and before anything else: a limited call
//   never reaches the database. Then the arguments, against the tool's schema (the SDK's own check is bypassed:
//   input-validation.ts), so a malformed call is a VALIDATION_ERROR like any other refusal.
// - Every refusal and failure carries a stable code (ToolErrorCode) in structuredContent; a tool may shape its
//   own refusals (execute_sales_query answers its compact error shape, with the code in it).
// - The result cache (infra/cache) comes after the rate limit: a limited call is refused even when its answer is
//   cached, so a limit means the same thing whether or not the cache is warm (and a loop cannot read without end
//   from it). A tool declares what its answer depends on (`cache`); tools that declare nothing are not cached.
// - `onCallFinished` listeners see one record per call, after the answer is built (metrics and the audit trail
//   plug in here). A listener that throws is logged and ignored: it never changes an answer.
import type { AuthInfo, CallToolResult, McpServer, ServerContext, StandardSchemaWithJSON, ToolAnnotations } from '@modelcontextprotocol/server';
import type { Database, Identity } from '../db/types.js';
import { fairShareKey } from '../db/types.js';
import type { ResultCache } from '../infra/cache/result-cache.js';
import { AccessDeniedError, RateLimitedError, toolErrorCode, type ToolErrorCode, UnknownIdentityError } from '../infra/errors.js';
import type { Logger } from '../infra/logger.js';
import { annotateSpan, inSpan } from '../infra/tracing.js';
import { identityFromClaims, narrowIdentity, type StoreDirectory } from '../security/claims.js';
import type { ZavaClaims } from '../security/jwt.js';
import type { CallRateLimiter } from '../security/rate-limit.js';
import type { RevocationList } from '../security/revocation.js';
import type { Caller, InFlight } from './context.js';
import { advertised, validateArguments } from './input-validation.js';

/** What the transport knows of one call before the pipeline looks at it. */
export interface RawCall {
  /** HTTP: the per-request auth info the edge attached (dev: the header; jwt: the verified token). */
  readonly authInfo?: AuthInfo | undefined;
  /** stdio: the process's configured identity (dev) — jwt stdio puts its verified token in authInfo. */
  readonly processUserId?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly requestId?: string | number | undefined;
  readonly clientName?: string | undefined;
}

/** What a tool's handler gets: who is calling (resolved and allowed), and the call's abort signal. */
export interface ToolCall {
  readonly identity: Identity;
  readonly signal?: AbortSignal | undefined;
}

/** One finished call, as listeners (metrics, audit) see it. */
export interface CallRecord {
  readonly tool: string;
  readonly requestId: string | number | undefined;
  /** Who authenticated: "jwt:<sub>", the dev-mode manager UUID, or undefined when nobody could be identified. */
  readonly subject: string | undefined;
  /** The effective identity (after narrowing), when one was resolved. */
  readonly identity: Identity | undefined;
  readonly args: unknown;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly outcome: 'ok' | 'error';
  readonly code?: ToolErrorCode | undefined;
  readonly message?: string | undefined;
  /** The answer as the client receives it (rows, truncation: the audit trail reads them). */
  readonly result: CallToolResult;
  /** The client's name, from its 2026-07-28 envelope or its initialize handshake. */
  readonly clientName?: string | undefined;
}

export type CallListener = (record: CallRecord) => void;

/** A tool's handler as the pipeline calls it: with the resolved identity, or none for optional-identity tools. */
export type ToolHandler<Args> = (args: Args, call: ToolCall | { identity: undefined; signal?: AbortSignal | undefined }) => Promise<CallToolResult>;

/** How the identity of a call is found: one per auth mode. */
export interface IdentitySource {
  readonly mode: 'dev' | 'jwt';
  /** The identity of the call; throws UnknownIdentityError or AccessDeniedError when there is none. */
  resolve(call: RawCall): Promise<Identity>;
  /** Who is calling, without the database (rate-limit key of tools that need no identity); undefined: nobody. */
  callerKey(call: RawCall): string | undefined;
}

/** The x-rls-user-id a dev-mode HTTP edge put on the auth info (see headerIdentity in context.ts). */
export function requestedUserIdOf(authInfo: AuthInfo | undefined): string | undefined {
  const value = authInfo?.extra?.userId;
  return typeof value === 'string' ? value : undefined;
}

/** Dev mode: the manager UUID of the header (HTTP) or of the process (stdio), as today. */
export function devIdentities(db: Database): IdentitySource {
  return {
    mode: 'dev',
    resolve: (call) => db.resolveIdentity(requestedUserIdOf(call.authInfo) ?? call.processUserId),
    callerKey: (call) => (requestedUserIdOf(call.authInfo) ?? call.processUserId)?.trim().toLowerCase(),
  };
}

/** jwt mode: the verified claims decide; x-rls-user-id may only narrow. */
export function jwtIdentities(db: Database, stores: StoreDirectory, revocations?: Pick<RevocationList, 'check'>): IdentitySource {
  return {
    mode: 'jwt',
    async resolve(call) {
      const claims = call.authInfo?.extra?.claims as ZavaClaims | undefined;
      if (!claims) throw new UnknownIdentityError('no verified token: this server runs in jwt mode (Authorization: Bearer <JWT>)');
      // HTTP checked this at the edge (401); stdio's one token is checked here, per call.
      try {
        revocations?.check(claims);
      } catch (error) {
        throw new AccessDeniedError((error as Error).message);
      }
      const granted = identityFromClaims(claims, await stores.list());
      const requested = requestedUserIdOf(call.authInfo);
      if (requested === undefined) return granted;
      return narrowIdentity(granted, await db.resolveIdentity(requested));
    },
    callerKey(call) {
      const sub = (call.authInfo?.extra?.claims as ZavaClaims | undefined)?.sub;
      return typeof sub === 'string' ? `jwt:${sub}` : undefined;
    },
  };
}

export interface ToolDefinition<Args> {
  readonly title?: string;
  readonly description?: string;
  readonly inputSchema?: StandardSchemaWithJSON;
  readonly outputSchema?: StandardSchemaWithJSON;
  readonly annotations?: ToolAnnotations;
  /** 'optional': the tool answers without an identity (get_current_utc_date); it is still rate limited. */
  readonly identity?: 'required' | 'optional';
  /**
   * What this tool's answer depends on besides the caller's scope and the data (the result cache's key material),
   * or undefined for a call whose answer must not be cached. Absent: the tool is never cached.
   */
  readonly cache?: (args: Args) => unknown;
  /** How this tool answers a refusal or failure the pipeline raises; default: text plus {err, code}. */
  readonly refuse?: (args: Args, message: string, code: ToolErrorCode) => CallToolResult;
}

/** The default tool error: the message as text, and {err, code} as structured content. */
export function toolError(message: string, code: ToolErrorCode): CallToolResult {
  return { content: [{ type: 'text', text: message }], structuredContent: { err: message, code }, isError: true };
}

/** Where tools are registered: the server, the process's pipeline, and who the transport says is calling. */
export interface ToolHost {
  readonly server: McpServer;
  readonly pipeline: CallPipeline;
  readonly caller: Caller;
}

/** Key of a caller without an identity (optional-identity tools): one shared bucket. */
const ANONYMOUS = 'anonymous';

export class CallPipeline {
  private readonly listeners: CallListener[] = [];

  constructor(
    private readonly deps: {
      readonly identities: IdentitySource;
      readonly rateLimiter: CallRateLimiter;
      readonly inFlight: InFlight;
      readonly log: Logger;
      readonly cache?: ResultCache | undefined;
    },
  ) {}

  get mode(): 'dev' | 'jwt' {
    return this.deps.identities.mode;
  }

  /**
   * The identity of a request that is not a tool call (resources, prompts, completion), by the same rule as a tool
   * call's; throws UnknownIdentityError or AccessDeniedError when there is none.
   */
  identify(raw: RawCall): Promise<Identity> {
    return this.deps.identities.resolve(raw);
  }

  /** Adds a listener for finished calls (metrics, audit). Returns a function that removes it. */
  onCallFinished(listener: CallListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /** One tool call through every stage, inside its trace span (when tracing is on: infra/tracing.ts). */
  run<Args>(
    name: string,
    definition: ToolDefinition<Args>,
    handler: ToolHandler<Args>,
    args: Args,
    raw: RawCall,
  ): Promise<CallToolResult> {
    return inSpan(`tools/call ${name}`, { 'mcp.tool.name': name }, () => this.runStages(name, definition, handler, args, raw));
  }

  private async runStages<Args>(
    name: string,
    definition: ToolDefinition<Args>,
    handler: ToolHandler<Args>,
    args: Args,
    raw: RawCall,
  ): Promise<CallToolResult> {
    const startedAt = Date.now();
    const started = performance.now();
    let identity: Identity | undefined;
    let result: CallToolResult;
    const refuse = (message: string, code: ToolErrorCode) => (definition.refuse ?? ((_a: Args, m: string, c: ToolErrorCode) => toolError(m, c)))(args, message, code);
    try {
      result = await this.deps.inFlight.run(async () => {
        let call: Parameters<ToolHandler<Args>>[1];
        if (definition.identity === 'optional') {
          // No data, so the tool needs no identity: one that resolves is kept for the record (audit), one that
          // does not refuses nothing. Rate limited by who calls.
          identity = await this.deps.identities.resolve(raw).catch(() => undefined);
          await this.deps.rateLimiter.take(identity ? fairShareKey(identity) : (this.deps.identities.callerKey(raw) ?? ANONYMOUS), name);
          call = { identity: undefined, signal: raw.signal };
        } else {
          identity = await this.deps.identities.resolve(raw);
          await this.deps.rateLimiter.take(fairShareKey(identity), name);
          call = { identity, signal: raw.signal };
        }
        // The arguments are checked here, not by the SDK, so a malformed call is coded, counted and audited.
        const checked = await validateArguments<Args>(name, definition.inputSchema, args);
        if (!checked.ok) return refuse(checked.message, 'VALIDATION_ERROR');
        const run = () => handler(checked.args, call);
        // Keyed by the validated arguments (defaults applied), so calls that mean the same share an entry.
        const cache = this.deps.cache;
        const caller = call.identity;
        const material = caller && cache?.enabled ? definition.cache?.(checked.args) : undefined;
        return material === undefined || !caller || !cache ? run() : cache.through(name, material, caller, run);
      });
    } catch (error) {
      result = refuse(this.describe(error, name), toolErrorCode(error));
    }
    annotateSpan({ 'zava.outcome': result.isError ? 'error' : 'ok', ...(identity ? { 'zava.role': identity.role } : {}) });
    this.finished({
      tool: name,
      requestId: raw.requestId,
      subject: identity ? fairShareKey(identity) : undefined,
      identity,
      args,
      startedAt,
      durationMs: performance.now() - started,
      ...outcomeOf(result),
      result,
      clientName: raw.clientName,
    });
    return result;
  }

  private describe(error: unknown, tool: string): string {
    if (error instanceof UnknownIdentityError) return `${error.message}. No data is available without a known identity.`;
    if (error instanceof AccessDeniedError || error instanceof RateLimitedError) return error.message;
    this.deps.log.error({ err: error, tool }, 'tool call failed before it ran');
    return `${tool} failed inside the server (logged). Try again shortly.`;
  }

  private finished(record: CallRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch (error) {
        this.deps.log.warn({ err: error, tool: record.tool }, 'a call listener failed; ignored');
      }
    }
  }
}

function outcomeOf(result: CallToolResult): Pick<CallRecord, 'outcome' | 'code' | 'message'> {
  if (!result.isError) return { outcome: 'ok' };
  // The code is in structuredContent, or in _meta for tools whose output schema cannot hold an error (typed tools).
  const structured = result.structuredContent as { code?: unknown; err?: unknown } | undefined;
  const declared = structured?.code ?? result._meta?.['zava/code'];
  const code = typeof declared === 'string' ? (declared as ToolErrorCode) : 'INTERNAL_ERROR';
  const text = result.content?.[0]?.type === 'text' ? result.content[0].text : undefined;
  return { outcome: 'error', code, message: typeof structured?.err === 'string' ? structured.err : text };
}

/**
 * Registers a tool behind the pipeline: the one place a tool meets the SDK (it reads `ctx.http.authInfo` and
 * `ctx.mcpReq`), so tools depend on neither the SDK's context shape nor each other's stages.
 */
export function registerTool<Schema extends StandardSchemaWithJSON>(
  { server, pipeline, caller }: ToolHost,
  name: string,
  definition: ToolDefinition<StandardSchemaWithJSON.InferOutput<Schema>> & { readonly inputSchema: Schema; readonly identity?: 'required' },
  handler: (args: StandardSchemaWithJSON.InferOutput<Schema>, call: ToolCall) => Promise<CallToolResult>,
): void;
export function registerTool<Schema extends StandardSchemaWithJSON>(
  { server, pipeline, caller }: ToolHost,
  name: string,
  definition: ToolDefinition<StandardSchemaWithJSON.InferOutput<Schema>> & { readonly inputSchema: Schema; readonly identity: 'optional' },
  handler: ToolHandler<StandardSchemaWithJSON.InferOutput<Schema>>,
): void;
export function registerTool<Schema extends StandardSchemaWithJSON>(
  { server, pipeline, caller }: ToolHost,
  name: string,
  definition: ToolDefinition<StandardSchemaWithJSON.InferOutput<Schema>> & { readonly inputSchema: Schema },
  handler: (args: StandardSchemaWithJSON.InferOutput<Schema>, call: ToolCall) => Promise<CallToolResult>,
): void {
  const { identity: _identity, refuse: _refuse, cache: _cache, ...config } = definition;
  // The SDK lists the real schema but accepts any arguments: the pipeline validates them (input-validation.ts).
  server.registerTool(name, { ...config, inputSchema: advertised(config.inputSchema) } as typeof config & { inputSchema: Schema }, ((args: StandardSchemaWithJSON.InferOutput<Schema>, ctx: ServerContext) =>
    pipeline.run(name, definition, handler as ToolHandler<StandardSchemaWithJSON.InferOutput<Schema>>, args, {
      authInfo: ctx.http?.authInfo ?? caller.processAuthInfo?.(),
      processUserId: caller.processUserId,
      signal: ctx.mcpReq.signal,
      requestId: ctx.mcpReq.id,
      clientName: clientNameOf(server, ctx),
    })) as never);
}

/** What the transport says of a request's caller (any request: tools, resources, prompts, completion). */
export function rawCallOf(caller: Caller, ctx: ServerContext): RawCall {
  return {
    authInfo: ctx.http?.authInfo ?? caller.processAuthInfo?.(),
    processUserId: caller.processUserId,
    signal: ctx.mcpReq.signal,
    requestId: ctx.mcpReq.id,
  };
}

/** The calling client's name: its 2026-07-28 envelope says it per request; a 2025-era client said it at initialize. */
function clientNameOf(server: McpServer, ctx: ServerContext): string | undefined {
  const meta = ctx.mcpReq._meta as Record<string, unknown> | undefined;
  const fromMeta = meta?.['io.modelcontextprotocol/clientInfo'] as { name?: unknown } | undefined;
  if (typeof fromMeta?.name === 'string') return fromMeta.name;
  return server.server.getClientVersion()?.name;
}
