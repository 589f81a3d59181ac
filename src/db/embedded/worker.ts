// The worker thread that owns the embedded PGlite database. It answers one request at a time; the main
// thread (embedded/backend.ts) decides what a transaction is and terminates this worker on a timeout.
import { mkdirSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { VALUE_PARSERS } from '../values.js';
import type { ColumnInfo } from '../types.js';
import type { WorkerErrorInfo, WorkerReply, WorkerRequest, WorkerRows } from './protocol.js';

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

async function open(dataDir: string): Promise<{ backendPid: number }> {
  mkdirSync(dataDir, { recursive: true });
  db = await PGlite.create(dataDir, { extensions: { vector }, parsers: VALUE_PARSERS });
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
  /** The column definition list of the zava_exec.run call. */
  readonly definitions: string;
}

/** Shapes of recently run statements: the server's own queries repeat with new parameters. */
const shapes = new Map<string, SandboxShape>();
const MAX_SHAPES = 256;

async function describeShape(sql: string): Promise<SandboxShape> {
  const described = await database().describeQuery(sql);
  const fields = described.resultFields;
  if (fields.length === 0) throw Object.assign(new Error('only statements that return rows can run here'), { code: '0A000' });
  await describeTypes(fields.map((f) => f.dataTypeID));
  const definitions = fields.map((field, index) => {
    const type = typeNames.get(field.dataTypeID);
    if (!type || type.pseudo) {
      throw Object.assign(
        new Error(`column "${field.name}" has type ${type?.name ?? field.dataTypeID}, which cannot be returned; cast it, e.g. ::text`),
        { code: '42804' },
      );
    }
    return `c${index + 1} ${type.name}`;
  });
  const shape = { columns: fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })), definitions: definitions.join(', ') };
  if (shapes.size >= MAX_SHAPES) shapes.delete(shapes.keys().next().value!);
  shapes.set(sql, shape);
  return shape;
}

/**
 * Runs untrusted SQL inside zava_exec.run (SECURITY DEFINER, owned by the sandbox role). The statement is
 * described first (parse analysis only, nothing runs) to learn its columns, which become the column
 * definition list of the set-returning call, so values keep their PostgreSQL types.
 */
async function sandbox(sql: string, params: readonly unknown[], maxRows: number): Promise<WorkerRows> {
  const cached = shapes.get(sql);
  const shape = cached ?? (await describeShape(sql));
  const run = (definitions: string) =>
    database().query<unknown[]>(`SELECT * FROM zava_exec.run($1, $2::text[], $3::int) AS t(${definitions})`, [sql, asText(params), maxRows + 1], {
      rowMode: 'array',
    });
  let result;
  try {
    result = await run(shape.definitions);
  } catch (error) {
    // A failing statement is described afresh next time, in case the schema changed under a cached shape
    // ("structure of query does not match function result type").
    if (cached) shapes.delete(sql);
    throw error;
  }
  const truncated = result.rows.length > maxRows;
  return { columns: shape.columns, rows: truncated ? result.rows.slice(0, maxRows) : result.rows, truncated };
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
      return open(request.dataDir);
    case 'exec':
      await database().exec(request.sql);
      return null;
    case 'query':
      return query(request.sql, request.params);
    case 'copy':
      return copy(request.table, request.columns, request.csv);
    case 'sandbox':
      if (request.begin) await database().exec(request.begin);
      return sandbox(request.sql, request.params, request.maxRows);
    case 'close':
      await db?.close();
      db = undefined;
      return null;
  }
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
  };
}

port.on('message', async ({ id, request }: { id: number; request: WorkerRequest }) => {
  let reply: WorkerReply;
  try {
    reply = { id, ok: true, value: await handle(request) };
  } catch (error) {
    reply = { id, ok: false, error: errorInfo(error) };
  }
  port.postMessage(reply);
});
