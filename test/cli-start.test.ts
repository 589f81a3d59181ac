// Starting the server as an operator does: version and help, mistakes refused at start with one line (no stack
// trace, nothing opened), `npm start` stopped by a signal sent to npm, and several replicas starting at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PG_ADMIN_URL, createServerDatabaseUrl, createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { loadConfig } from '../src/infra/config.js';
import { migrateDatabase, openDatabase } from '../src/db/open.js';
import { runCli as run } from './support/cli.js';
import { connectHttp, connectStdio, query, startHttpServer } from './mcp-harness.js';
import { STORES } from '../src/data/stores.js';
import { waitFor } from './support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const NO_STACK = /\n\s+at /;

describe('zava-mcp start-up', () => {
  test('--version and -v print the version on stdout', async () => {
    for (const flag of ['--version', '-v']) {
      const result = await run([flag]);
      assert.equal(result.code, 0);
      assert.equal(result.stdout.trim(), `zava-mcp ${VERSION}`);
    }
  });

  test('--help works on every command and shows that command', async () => {
    for (const [command, shows] of [
      [['serve'], /zava-mcp serve \[/],
      [['db', 'migrate'], /zava-mcp db migrate \[/],
      [['db', 'seed'], /--end-date/],
      [['embeddings', 'rebuild'], /zava-mcp embeddings rebuild/],
      [['catalog', 'import'], /zava-mcp catalog import <file\.json>/],
      [['audit', 'tail'], /zava-mcp audit tail \[--sub/],
    ] as const) {
      const result = await run([...command, '--help']);
      assert.equal(result.code, 0, command.join(' '));
      assert.match(result.stdout, shows);
      assert.doesNotMatch(result.stdout, /zava-mcp db migrate/.source === shows.source ? /zava-mcp serve \[/ : /^$/);
    }
    const all = await run(['--help']);
    assert.equal(all.code, 0);
    for (const word of ['serve', 'db migrate', 'db seed', 'embeddings rebuild', 'catalog import', 'audit tail', '--version']) assert.ok(all.stdout.includes(word), word);
  });

  test('audit tail refuses a malformed --since or --limit before opening anything', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'zava-audit-'));
    const dir = path.join(root, 'db');
    const since = await run(['audit', 'tail', '--data-dir', dir, '--since', 'last tuesday']);
    assert.equal(since.code, 1);
    assert.match(since.stderr, /--since must be a date .* or a span such as 15m/);
    const limit = await run(['audit', 'tail', '--data-dir', dir, '--limit', '0']);
    assert.equal(limit.code, 1);
    assert.match(limit.stderr, /--limit must be from 1 to 100000/);
    assert.equal(existsSync(dir), false, 'nothing was created');
    await rm(root, { recursive: true, force: true });
  });

  test('a malformed --rls-user-id or --end-date is refused at start, before anything is opened', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'zava-start-'));
    try {
      const dir = path.join(root, 'db');
      const identity = await run(['serve', '--stdio', '--data-dir', dir, '--rls-user-id', 'seattle']);
      assert.equal(identity.code, 1);
      assert.match(identity.stderr, /--rls-user-id must be a manager UUID/);
      assert.doesNotMatch(identity.stderr, NO_STACK);
      const endDate = await run(['db', 'seed', '--data-dir', dir, '--end-date', '2026-13-01']);
      assert.equal(endDate.code, 1);
      assert.match(endDate.stderr, /--end-date: end date must be a date like/);
      assert.equal(existsSync(dir), false, 'no database was created');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('config check prints the effective settings with secrets masked, and names a bad one', async () => {
    const ok = await run(['config', 'check'], {
      DATABASE_URL: 'postgres://owner:hunter2@db.example:5432/zava',
      ZAVA_QUERY_ROLE_PASSWORD: 'query-secret',
      ZAVA_QUERY_DATABASE_URL: 'postgres://zava_query:other-secret@replica.example/zava',
      ZAVA_MAX_ROWS: '50',
    });
    assert.equal(ok.code, 0, ok.stderr);
    const effective = JSON.parse(ok.stdout.slice(0, ok.stdout.lastIndexOf('}') + 1)) as Record<string, unknown>;
    assert.equal(effective.databaseUrl, 'postgres://owner:***@db.example:5432/zava');
    assert.equal(effective.queryDatabaseUrl, 'postgres://zava_query:***@replica.example/zava');
    assert.equal(effective.queryRolePassword, '***');
    assert.equal(effective.maxRows, 50);
    assert.equal(effective.backend, 'server');
    assert.doesNotMatch(ok.stdout, /hunter2|query-secret|other-secret/);
    const bad = await run(['config', 'check'], { ZAVA_MAX_ROWS: 'many', ZAVA_EMBEDDING_PROVIDER: 'local' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ZAVA_MAX_ROWS must be a number/);
    const badProvider = await run(['config', 'check'], { ZAVA_EMBEDDING_PROVIDER: 'telepathy' });
    assert.equal(badProvider.code, 1);
    assert.match(badProvider.stderr, /ZAVA_EMBEDDING_PROVIDER must be one of/);
  });

  test('a port in use is one line naming the port, before the database is opened', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'zava-start-'));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const dir = path.join(root, 'db');
      const started = Date.now();
      const result = await run(['serve', '--data-dir', dir, '--port', String(port)]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`zava-mcp: port ${port} on 127\\.0\\.0\\.1 is already in use.*--port`));
      assert.equal(existsSync(dir), false, 'the database was not opened');
      // No wait for the port (no retry loop): bounded loosely, as a process start under the suite's load and
      // coverage took 7.6 s once; the order (port before database) is what the line above proves.
      assert.ok(Date.now() - started < 20_000, `refused after ${Date.now() - started} ms`);
    } finally {
      blocker.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('zava-mcp start-up on a database', () => {
  let t: TestDatabase;
  before(async () => {
    t = await createTestDatabase('embedded');
    await t.db.close(); // the data directory admits one process: the servers below
  });
  after(async () => t?.cleanup());

  test('an unknown manager UUID for stdio is refused at start', async () => {
    const result = await run(['serve', '--stdio', ...t.flags, '--rls-user-id', '11111111-2222-3333-4444-555555555555']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /unknown identity 11111111-2222-3333-4444-555555555555/);
    assert.doesNotMatch(result.stderr, NO_STACK);
  });

  test('a stdio server opens only its identity\'s share of the embedded readers; an HTTP server opens them all', { timeout: 120_000 }, async () => {
    const dataDir = t.flags[1]!;
    const readers = { ZAVA_EMBEDDED_READERS: '3', ZAVA_IDENTITY_CONCURRENCY: '2' };
    // Reader directories are named reader-<slot>-<n> and live while their reader does.
    const slots = () => new Set(existsSync(`${dataDir}.readers`) ? readdirSync(`${dataDir}.readers`).flatMap((name) => /^reader-(\d+)-/.exec(name)?.[1] ?? []) : []);
    const until = (check: () => boolean, what: string) => waitFor(() => `${what} (reader slots: ${[...slots()].join(', ')})`, check, { ms: 60_000 });

    const stdio = await connectStdio(t.flags, STORES[0]!.managerId, readers);
    try {
      // Two calls at once: the identity's share is two readers, all of them usable by it (no spare kept).
      const answers = await Promise.all([query(stdio.client, 'SELECT 1 AS one'), query(stdio.client, 'SELECT 2 AS two')]);
      assert.deepEqual(answers.map((a) => a.result.r), [[[1]], [[2]]]);
      await until(() => slots().size === 2, 'the stdio server\'s two readers');
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // warm-up has had time to open more, if it would
      assert.deepEqual([...slots()].sort(), ['0', '1'], 'the spare reader is not opened for one identity');
    } finally {
      await stdio.close();
    }

    const http = await startHttpServer(t.flags, readers);
    try {
      const client = await connectHttp(http.url, STORES[0]!.managerId);
      assert.deepEqual((await query(client, 'SELECT 1 AS one')).result.r, [[1]]);
      await until(() => slots().size === 3, 'the HTTP server\'s three readers');
      await client.close();
    } finally {
      assert.equal(await http.stop(), 0);
    }
  });

  test('SIGTERM sent to npm stops the server `npm start` runs: the port and the data directory lock are freed', { timeout: 240_000 }, async () => {
    const dataDir = t.flags[1]!;
    const npm = spawn('npm', ['start', '--silent', '--', '--port', '0'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ZAVA_DATA_DIR: dataDir, ZAVA_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<URL>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not serve in 180 s:\n${stderr}`)), 180_000);
      npm.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /serving Streamable HTTP at (http:\/\/\S+?\/mcp)/.exec(stderr);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(new URL(match[1]));
        }
      });
    });
    assert.ok(existsSync(`${dataDir}.lock`), 'the server holds the data directory lock');
    npm.kill('SIGTERM');
    const deadline = Date.now() + 15_000;
    let portFree = false;
    while (Date.now() < deadline) {
      portFree = await new Promise<boolean>((resolve) => {
        const socket = connect(Number(url.port), url.hostname);
        socket.once('connect', () => (socket.destroy(), resolve(false)));
        socket.once('error', () => resolve(true));
      });
      if (portFree && !existsSync(`${dataDir}.lock`)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(portFree, `port ${url.port} is free:\n${stderr}`);
    assert.equal(existsSync(`${dataDir}.lock`), false, `the lock is released:\n${stderr}`);
    assert.match(stderr, /SIGTERM: shutting down/);
  });
});

describe('replicas starting at once', async () => {
  const skip = (await serverUnavailableReason()) ?? false;

  /** Starts `count` HTTP servers on one database at the same moment; resolves with each one's exit and output. */
  async function startTogether(url: string, count: number): Promise<{ served: number; failures: string[] }> {
    const children = Array.from({ length: count }, () =>
      spawn(process.execPath, [fileURLToPath(new URL('../src/cli/main.js', import.meta.url)), 'serve', '--database-url', url, '--port', '0'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ZAVA_LOG_LEVEL: 'info', ZAVA_CUSTOMERS: '200' },
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    const outcomes = await Promise.all(
      children.map(
        (child) =>
          new Promise<{ ok: boolean; stderr: string }>((resolve) => {
            let stderr = '';
            const timer = setTimeout(() => resolve({ ok: false, stderr: `timed out:\n${stderr}` }), 120_000);
            child.stderr!.on('data', (chunk: Buffer) => {
              stderr += chunk.toString();
              if (/serving Streamable HTTP at/.test(stderr)) {
                clearTimeout(timer);
                resolve({ ok: true, stderr });
              }
            });
            child.once('exit', (code) => {
              clearTimeout(timer);
              resolve({ ok: false, stderr: `exited with ${code}:\n${stderr}` });
            });
          }),
      ),
    );
    await Promise.all(
      children.map((child) => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM'))))),
    );
    return { served: outcomes.filter((o) => o.ok).length, failures: outcomes.filter((o) => !o.ok).map((o) => o.stderr) };
  }

  test('8 servers started together on an empty database all serve, and the data is seeded once', { skip, timeout: 240_000 }, async () => {
    const { url, drop } = await createServerDatabaseUrl();
    try {
      const first = await startTogether(url, 8);
      assert.deepEqual(first.failures, []);
      assert.equal(first.served, 8);
      const again = await startTogether(url, 8);
      assert.deepEqual(again.failures, [], 'and again on the prepared database');
      const customers = await run(['db', 'seed', '--database-url', url, '--customers', '200']);
      assert.match(customers.stderr, /already holds a dataset \(200 customers/, 'one dataset, not several');
    } finally {
      await drop();
    }
  });

  test('databases of one cluster migrating at once share its roles without colliding', { skip, timeout: 120_000 }, async () => {
    // Roles are cluster-wide and the migration lock is per database: a new query role, created, altered and
    // granted by six databases' migrations at the same moment, twice (a wrong attribute to repair the second time).
    const role = `zava_q_${process.pid}_${Date.now() % 100_000}`;
    const databases = await Promise.all(Array.from({ length: 6 }, () => createServerDatabaseUrl()));
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      const migrateAll = (urls: readonly string[]) =>
        Promise.all(
          urls.map(async (url) => {
            const config = loadConfig({ databaseUrl: url }, { ZAVA_QUERY_ROLE: role });
            const db = await openDatabase(config);
            try {
              await migrateDatabase(db, config);
            } finally {
              await db.close();
            }
          }),
        );
      await migrateAll(databases.slice(0, 3).map((d) => d.url));
      await admin.query(`ALTER ROLE ${role} CREATEDB`);
      await migrateAll(databases.slice(3).map((d) => d.url));
      const attributes = await admin.query(`SELECT rolcreatedb, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1`, [role]);
      assert.deepEqual(attributes.rows, [{ rolcreatedb: false, rolcanlogin: true, rolsuper: false }], 'the attribute was repaired');
      const member = await admin.query(`SELECT count(*)::int AS n FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = $1`, [role]);
      assert.equal(member.rows[0].n, 1, 'the sandbox role is a member once');
    } finally {
      await Promise.all(databases.map((d) => d.drop()));
      // Every role the migrations made for it (the head-office role of migration 17 included), members first.
      for (const suffix of ['_sandbox', '_views', '_every_store', '']) {
        await admin.query(`DROP ROLE IF EXISTS ${role}${suffix}`).catch(() => undefined);
      }
      await admin.end();
    }
  });
});

describe('start-up output', async () => {
  const skip = (await serverUnavailableReason()) ?? false;

  /** Runs a first `serve` on an empty database until the store × year summary has been printed. */
  async function firstRunOutput(url: string, format: string): Promise<string> {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../src/cli/main.js', import.meta.url)), 'serve', '--database-url', url, '--port', '0'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ZAVA_CUSTOMERS: '60', ZAVA_LOG_FORMAT: format },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no summary in 120 s:\n${stderr}`)), 120_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/All stores/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGKILL');
    return stderr;
  }

  test('the first-run summary reads as a table for a person, and as JSON lines for machines', { skip, timeout: 300_000 }, async () => {
    for (const format of ['pretty', 'json']) {
      const { url, drop } = await createServerDatabaseUrl();
      try {
        const output = await firstRunOutput(url, format);
        const summaryLine = output.split('\n').find((line) => line.includes('Zava Retail Seattle'));
        assert.ok(summaryLine, output);
        if (format === 'pretty') {
          assert.doesNotMatch(output, /\\n/, 'no escaped newlines');
          assert.doesNotMatch(summaryLine, /^\{/, 'a table row, not JSON');
        } else {
          for (const line of output.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
          assert.match(output, /\\n/, 'the summary is one JSON message');
        }
      } finally {
        await drop();
      }
    }
  });
});
