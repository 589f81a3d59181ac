// The zava-mcp command line, run as a user runs it: a spawned process, its exit code and its messages.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServerDatabaseUrl, serverUnavailableReason } from './support/databases.js';
import pg from 'pg';
import { runCli as run } from './support/cli.js';
import { NO_EMBEDDING_ENV } from './support/tokens.js';
import { startHttpServer, type HttpServerProcess } from './mcp-harness.js';



describe('zava-mcp db (embedded)', () => {
  let root: string;
  after(async () => root && rm(root, { recursive: true, force: true }));

  test('bad sizes are refused before anything is created', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'zava-cli-'));
    const dir = path.join(root, 'db');
    for (const args of [['--customers', '-5'], ['--customers=-5'], ['--customers', 'many'], ['--customers', '0'], ['--seed', '1.5']]) {
      const result = await run(['db', 'seed', '--data-dir', dir, ...args]);
      assert.equal(result.code, 1, args.join(' '));
      assert.match(result.stderr, /zava-mcp: --(customers|seed) must be/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.equal(existsSync(dir), false);
  });

  test('migrate twice, seed with a summary, and a second seed is refused', async () => {
    const dir = path.join(root, 'db');
    const first = await run(['db', 'migrate', '--data-dir', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /applied migration 1 \(retail schema\)/);
    const second = await run(['db', 'migrate'], { ZAVA_DATA_DIR: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /schema is up to date .* nothing to do/);

    const seeded = await run(['db', 'seed', '--data-dir', dir, '--customers', '40', '--seed', '3']);
    assert.equal(seeded.code, 0, seeded.stderr);
    assert.match(seeded.stderr, /Seeding embedded database .* with 40 customers \(seed 3, orders up to \d{4}-\d{2}-\d{2}\)/);
    assert.match(seeded.stderr, /retail\.customers\s+40/);
    assert.match(seeded.stderr, /Orders \/ revenue by store and year/);
    assert.match(seeded.stderr, /Zava Retail Seattle .*\$/);
    assert.match(seeded.stderr, /All stores/);
    assert.equal(seeded.stdout, '', 'stdout stays clean');

    const again = await run(['db', 'seed', '--data-dir', dir, '--customers', '40']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a dataset \(40 customers and \d+ orders\); nothing was changed/);
  });

  test('usage errors are clear', async () => {
    const unknown = await run(['db', 'frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "db frobnicate"/);
    const both = await run(['db', 'migrate', '--data-dir', '/tmp/x', '--database-url', 'postgres://localhost/x']);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /either --database-url .* or --data-dir/);
    const badFlag = await run(['db', 'seed', '--costumers', '5']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /Unknown option '--costumers'/);
  });

  test('an option another command takes is refused, not silently ignored; nothing is created', async () => {
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'zava-cli-')), 'db');
    try {
      for (const [args, named] of [
        [['db', 'migrate', '--data-dir', dir, '--customers', '10'], '--customers'],
        [['serve', '--data-dir', dir, '--replace'], '--replace'],
        [['db', 'seed', '--data-dir', dir, '--stdio', '--jti', 'x'], '--stdio, --jti'],
        [['health', '--force'], '--force'],
      ] as const) {
        const result = await run(args);
        assert.equal(result.code, 2, args.join(' '));
        assert.match(result.stderr, new RegExp(`^zava-mcp: ${args[0]}${args[0] === 'db' ? ` ${args[1]}` : ''} does not take ${named}\n`), result.stderr);
        assert.match(result.stderr, /Usage:\n {2}zava-mcp /, 'the command\'s usage follows');
      }
      // serve takes the first run's seed settings, and refuses a bad one before it creates anything.
      const bad = await run(['serve', '--data-dir', dir, '--customers', '-5']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^zava-mcp: --customers must be a whole number/);
      assert.equal(existsSync(dir), false);
    } finally {
      await rm(path.dirname(dir), { recursive: true, force: true });
    }
  });
});

describe('zava-mcp db (server)', async () => {
  const skip = (await serverUnavailableReason()) ?? false;

  test('a wrong or unreachable URL gets a clear message', { skip }, async () => {
    const scheme = await run(['db', 'migrate', '--database-url', 'mysql://localhost/db']);
    assert.equal(scheme.code, 1);
    assert.match(scheme.stderr, /DATABASE_URL must start with postgres:\/\//);
    const closed = await run(['db', 'migrate', '--database-url', 'postgres://postgres:secret@127.0.0.1:1/nowhere']);
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /cannot connect to PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    assert.doesNotMatch(closed.stderr, /secret/, 'the password is not printed');
    const missing = await run(['db', 'migrate', '--database-url', 'postgres://postgres@127.0.0.1:5432/zava_does_not_exist']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /database "zava_does_not_exist" does not exist/);
  });

  test('migrate and seed a server database from DATABASE_URL', { skip }, async () => {
    const { url, drop } = await createServerDatabaseUrl();
    try {
      const seeded = await run(['db', 'seed', '--customers', '30'], { DATABASE_URL: url });
      assert.equal(seeded.code, 0, seeded.stderr);
      assert.match(seeded.stderr, /Seeding PostgreSQL at .* with 30 customers \(seed 42, orders up to \d{4}-\d{2}-\d{2}\)/);
      assert.match(seeded.stderr, /All stores/);
      const migrated = await run(['db', 'migrate', '--database-url', url]);
      assert.match(migrated.stderr, /nothing to do/);
    } finally {
      await drop();
    }
  });

  test('serve seeds its first run with its own --customers, --seed and --end-date', { skip }, async () => {
    const { url, drop } = await createServerDatabaseUrl();
    let http: HttpServerProcess | undefined;
    try {
      http = await startHttpServer(['--database-url', url, '--customers', '30', '--seed', '7', '--end-date', '2025-06-30'], NO_EMBEDDING_ENV);
      assert.match(http.stderr(), /first run: seeding PostgreSQL at .* with 30 customers \(seed 7, orders up to 2025-06-30\)/);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const facts = await client.query<{ customers: string; last: string }>(`SELECT (SELECT count(*) FROM retail.customers) AS customers, (SELECT max(order_date)::text FROM retail.orders) AS last`);
        assert.equal(Number(facts.rows[0]!.customers), 30);
        assert.ok(facts.rows[0]!.last <= '2025-06-30', facts.rows[0]!.last);
      } finally {
        await client.end();
      }
    } finally {
      await http?.stop('SIGKILL');
      await drop();
    }
  });
});
