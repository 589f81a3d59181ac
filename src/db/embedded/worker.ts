// A worker thread that owns one PGlite instance: the writer (the data directory) or a reader (a private copy
// of it). It answers one request at a time; the main thread (embedded/engine.ts) decides what a transaction is
// and terminates this worker on a timeout or a cancellation.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { VALUE_PARSERS } from '../values.js';
import type { ColumnInfo } from '../types.js';
import type { OpenSettings, WorkerErrorInfo, WorkerReply, WorkerRequest, WorkerRows } from './protocol.js';

if (!parentPort) throw new Error('embedded/worker.js must run as a worker thread');
const port = parentPort;

let db: PGlite | undefined;
/** format_type() per type OID, for the sandbox's column definition list. */
const typeNames = new Map<number, { name: string; pseudo: boolean }>();

function database(): PGlite {
  if (!db) throw new Error('the embedded database is not open');
  return db;
}

const asText = (params: readonly unknown[]) => params.map((p) => (p === null || p === undefined ? null : String(p)));

/** A refusal of this worker's own (not PostgreSQL's): a clean error about the query, not an engine failure. */
class Refusal extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/**
 * Caps the WebAssembly heap PGlite creates. PGlite allocates its memory with a fixed maximum of 2 GB and no
 * option to lower it, and a heap never shrinks; with this cap a statement that builds huge values gets
 * PostgreSQL's own "out of memory" error instead of growing the process by gigabytes. Only this thread's
 * WebAssembly.Memory is affected.
 */
function capWebAssemblyHeap(maxBytes: number): void {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
  }
  // The project's TypeScript has no DOM/WebAssembly typings: the one constructor used is described here.
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (descriptor: MemoryDescriptor) => object } }).WebAssembly;
  const pages = Math.floor(maxBytes / 65_536);
  const Original = wasm.Memory;
  wasm.Memory = class Capped extends Original {
    constructor(descriptor: MemoryDescriptor) {
      super({ ...descriptor, maximum: Math.max(descriptor.initial, Math.min(descriptor.maximum ?? pages, pages)) });
    }
  };
}

function heapBytes(): number {
  return (db as unknown as { mod?: { HEAPU8?: Uint8Array } } | undefined)?.mod?.HEAPU8?.byteLength ?? 0;
}

async function open(settings: OpenSettings): Promise<{ backendPid: number }> {
  mkdirSync(settings.dataDir, { recursive: true });
  // PostgreSQL removes leftover temporary files when the postmaster starts; PGlite runs single-user and never
  // does, so the files of a statement cut short (a terminated worker, a killed process) would stay forever.
  rmSync(path.join(settings.dataDir, 'base', 'pgsql_tmp'), { recursive: true, force: true });
  if (settings.heapMaxBytes !== undefined) capWebAssemblyHeap(settings.heapMaxBytes);
  const startParams = settings.sharedBuffers ? [...PGlite.defaultStartParams, '-c', `shared_buffers=${settings.sharedBuffers}`] : undefined;
  db = await PGlite.create(settings.dataDir, { extensions: { vector }, parsers: VALUE_PARSERS, ...(startParams ? { startParams } : {}) });
  const result = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return { backendPid: result.rows[0]!.pid };
}

async function query(sql: string, params: readonly unknown[]): Promise<WorkerRows> {
  const result = await database().query<unknown[]>(sql, asText(params), { rowMode: 'array' });
  return { columns: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })), rows: result.rows, truncated: false };
}

async function describeTypes(oids: number[]): Promise<void> {
  const missing = [...new Set(oids)].filter((oid) => !typeNames.has(oid));
  if (missing.length === 0) return;
  const result = await database().query<{ oid: number; name: string; pseudo: boolean }>(
    `SELECT oid::int AS oid, format_type(oid, NULL) AS name, typtype = 'p' AS pseudo FROM pg_type WHERE oid = ANY($1::oid[])`,
    [missing],
  );
  for (const row of result.rows) typeNames.set(row.oid, { name: row.name, pseudo: row.pseudo });
}

interface SandboxShape {
  readonly columns: ColumnInfo[];
  /** The call of zava_exec.run with the statement's column definition list. */
  readonly run: string;
}

/** Shapes of recently run statements: the server's own queries repeat with new parameters. */
const shapes = new Map<string, SandboxShape>();
const MAX_SHAPES = 256;

async function describeShape(sql: string): Promise<SandboxShape> {
  const described = await database().describeQuery(sql);
  const fields = described.resultFields;
  if (fields.length === 0) throw new Refusal('only statements that return rows can run here', '0A000');
  await describeTypes(fields.map((f) => f.dataTypeID));
  const definitions = fields.map((field, index) => {
    const type = typeNames.get(field.dataTypeID);
    if (!type || type.pseudo) {
      throw new Refusal(`column "${field.name}" has type ${type?.name ?? field.dataTypeID}, which cannot be returned; cast it, e.g. ::text`, '42804');
    }
    return `c${index + 1} ${type.name}`;
  });
  const run = `SELECT * FROM zava_exec.run($1, $2::text[], $3::int) AS t(${definitions.join(', ')})`;
  const shape = { columns: fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })), run };
  if (shapes.size >= MAX_SHAPES) shapes.delete(shapes.keys().next().value!);
  shapes.set(sql, shape);
  return shape;
}

/**
 * Runs untrusted SQL inside zava_exec.run (SECURITY DEFINER, owned by the sandbox role). The statement is
 * described first (parse analysis only, nothing runs) to learn its columns, which become the column
 * definition list of the set-returning call, so values keep their PostgreSQL types. The statement arrives
 * already bounded (db/bounded.ts: PostgreSQL refuses a row over the row cap and sends nothing past the byte
 * budget), so no value larger than the cap ever leaves the engine.
 */
async function sandbox(request: Extract<WorkerRequest, { op: 'sandbox' }>): Promise<WorkerRows> {
  const { sql, params, maxRows } = request;
  const cached = shapes.get(sql);
  const shape = cached ?? (await describeShape(sql));
  try {
    const result = await database().query<unknown[]>(shape.run, [sql, asText(params), maxRows], { rowMode: 'array' });
    return { columns: shape.columns, rows: result.rows, truncated: false };
  } catch (error) {
    // A failing statement is described afresh next time, in case the schema changed under a cached shape
    // ("structure of query does not match function result type").
    if (cached) shapes.delete(sql);
    throw error;
  }
}

async function copy(table: string, columns: readonly string[], csv: string): Promise<null> {
  await database().query(`COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' WITH (FORMAT csv)`, [], {
    blob: new Blob([csv]),
  });
  return null;
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.op) {
    case 'open':
      return open(request.settings);
    case 'exec':
      await database().exec(request.sql);
      return null;
    case 'query':
      return query(request.sql, request.params);
    case 'copy':
      return copy(request.table, request.columns, request.csv);
    case 'sandbox':
      if (request.begin) await database().exec(request.begin);
      return sandbox(request);
    case 'close':
      await db?.close();
      db = undefined;
      return null;
    case 'crash':
      setImmediate(() => {
        throw new Error('embedded worker crash requested by a test');
      });
      return null;
  }
}

/**
 * Whether the engine itself failed, judged by origin: PostgreSQL's own errors arrive as ErrorResponses (with a
 * severity); anything else is a JavaScript or WebAssembly exception from inside PGlite. Two ErrorResponses also
 * mean a broken session: a FATAL or PANIC, and the protocol-level loss of the statement being parsed (what a
 * WebAssembly stack overflow in the parser leaves behind), raised from postgres.c's protocol message handlers,
 * which no SQL text reaches; and the buffer manager's internal errors.
 */
function isUnsound(error: unknown): boolean {
  if (error instanceof Refusal) return false;
  const e = error as Partial<Record<'severity' | 'code' | 'file' | 'routine', unknown>> | null;
  if (!e || typeof e !== 'object' || typeof e.severity !== 'string') return true;
  if (e.severity === 'FATAL' || e.severity === 'PANIC') return true;
  if (e.file === 'postgres.c' && typeof e.routine === 'string' && e.routine.startsWith('exec_') && e.code === '26000') return true;
  return e.file === 'bufmgr.c' && e.code === 'XX000';
}

function errorInfo(error: unknown): WorkerErrorInfo {
  const e = error as Partial<Record<'message' | 'code' | 'hint' | 'detail' | 'position' | 'internalPosition', string>>;
  const position = Number(e.internalPosition ?? e.position);
  return {
    message: e.message ?? String(error),
    ...(e.code ? { code: e.code } : {}),
    ...(e.hint ? { hint: e.hint } : {}),
    ...(e.detail ? { detail: e.detail } : {}),
    ...(Number.isFinite(position) ? { position } : {}),
    ...(isUnsound(error) ? { unsound: true } : {}),
  };
}

port.on('message', async ({ id, request }: { id: number; request: WorkerRequest }) => {
  let reply: WorkerReply;
  try {
    reply = { id, ok: true, value: await handle(request), heapBytes: heapBytes() };
  } catch (error) {
    reply = { id, ok: false, error: errorInfo(error), heapBytes: heapBytes() };
  }
  port.postMessage(reply);
});
