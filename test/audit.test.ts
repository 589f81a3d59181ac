// The audit trail's store and writer (issue 11): entries land exactly once with every field, in a table the query
// role cannot read and nobody can change; a slow or dead store never holds up record() and overflow is bounded,
// counted and logged; the writer survives a restart of its PostgreSQL (a cluster of this test's own, never the
// shared service).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { HEAD_OFFICE_USER_ID } from '../src/data/stores.js';
import { pruneAudit, readAudit, writeAuditEntries } from '../src/db/audit.js';
import { migrateDatabase, openDatabase } from '../src/db/open.js';
import type { ManagedDatabase } from '../src/db/types.js';
import { loadSqlGuard } from '../src/analytics/guard.js';
import { AuditWriter, type AuditEntry } from '../src/infra/audit.js';
import { loadConfig } from '../src/infra/config.js';
import { backendsUnderTest, createTestDatabase, serverUnavailableReason, type TestDatabase } from './support/databases.js';
import { OwnCluster } from './support/cluster.js';

/** A logger whose lines are kept for the test to read. */
function capturingLogger(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function entry(i: number, extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    at: new Date(Date.UTC(2026, 10, 26, 12, 0, i)),
    sub: `sub-${i % 3}`,
    userId: HEAD_OFFICE_USER_ID,
    role: 'head_office',
    storeScope: '*',
    pii: true,
    tool: 'execute_sales_query',
    text: `SELECT ${i} AS n`,
    outcome: 'ok',
    rows: 1,
    truncated: false,
    durationMs: 1.5 + i,
    requestId: `req-${i}`,
    clientName: 'audit-test',
    ...extra,
  };
}

async function auditCount(db: ManagedDatabase): Promise<number> {
  return Number((await db.ownerQuery('SELECT count(*) FROM zava_audit.tool_calls')).rows[0]![0]);
}

for (const { kind, skip } of await backendsUnderTest()) {
  describe(`audit store (${kind})`, { skip }, () => {
    let t: TestDatabase;
    before(async () => {
      t = await createTestDatabase(kind);
    });
    after(async () => t?.cleanup());

    test('the writer stores exactly the entries recorded, every field, in batches', async () => {
      const { log } = capturingLogger();
      const writes: number[] = [];
      const writer = new AuditWriter(async (entries) => {
        writes.push(entries.length);
        await writeAuditEntries(t.db, entries);
      }, { queueLimit: 1000, log, batchSize: 20 });
      const refused = entry(99, { outcome: 'refused', refusal: "function pg_sleep is not allowed", errorClass: 'guard', rows: undefined, truncated: undefined, text: "SELECT pg_sleep(1) -- it's \u0000 odd" });
      for (let i = 0; i < 45; i++) writer.record(entry(i));
      writer.record(refused);
      assert.ok(await writer.drain());
      assert.equal(await writer.close(), 0);
      assert.deepEqual(writer.counts, { queued: 0, written: 46, dropped: 0, failedWrites: 0 });
      assert.ok(writes.length >= 3 && writes.every((n) => n <= 20), `batches of at most 20: ${writes.join(',')}`);
      assert.equal(await auditCount(t.db), 46);
      const rows = await readAudit(t.db, { limit: 100 });
      const names = rows.columns.map((c) => c.name);
      const get = (row: unknown[], name: string) => row[names.indexOf(name)];
      assert.deepEqual(rows.rows.slice(0, 45).map((r) => get(r, 'request_id')), Array.from({ length: 45 }, (_, i) => `req-${i}`));
      const first = rows.rows[0]!;
      assert.equal(new Date(String(get(first, 'at'))).toISOString(), '2026-11-26T12:00:00.000Z');
      assert.deepEqual(
        ['sub', 'user_id', 'role', 'store_scope', 'pii', 'tool', 'request_text', 'outcome', 'row_count', 'truncated', 'client_name'].map((n) => get(first, n)),
        ['sub-0', HEAD_OFFICE_USER_ID, 'head_office', '*', true, 'execute_sales_query', 'SELECT 0 AS n', 'ok', 1, false, 'audit-test'],
      );
      assert.equal(Number(get(first, 'duration_ms')), 1.5);
      const last = rows.rows.at(-1)!;
      assert.deepEqual(['outcome', 'refusal', 'error_class', 'row_count'].map((n) => get(last, n)), ['refused', 'function pg_sleep is not allowed', 'guard', null]);
      assert.equal(get(last, 'request_text'), "SELECT pg_sleep(1) -- it's \ufffd odd", 'a NUL is stored as U+FFFD, never failing the batch');
      const bySub = await readAudit(t.db, { sub: 'sub-1', since: new Date('2026-11-26T12:00:10Z') });
      assert.deepEqual(bySub.rows.map((r) => get(r, 'request_id')), ['req-10', 'req-13', 'req-16', 'req-19', 'req-22', 'req-25', 'req-28', 'req-31', 'req-34', 'req-37', 'req-40', 'req-43']);
    });

    test('the query role can neither read nor write the audit trail; the guard refuses its schema', async () => {
      const identity = { userId: HEAD_OFFICE_USER_ID, role: 'head_office', storeIds: 'all', pii: true } as const;
      for (const sql of ['SELECT count(*) FROM zava_audit.tool_calls', 'SELECT * FROM zava_audit.tool_calls LIMIT 1']) {
        await assert.rejects(t.db.withIdentity(identity, (s) => s.query(sql)), /permission denied/);
        const verdict = await (await loadSqlGuard())(sql);
        assert.equal(verdict.ok, false);
      }
      const grants = await t.db.ownerQuery(
        `SELECT has_schema_privilege($1, 'zava_audit', 'USAGE'), has_table_privilege($1, 'zava_audit.tool_calls', 'SELECT,INSERT')`,
        [t.config.queryRole],
      );
      assert.deepEqual(grants.rows[0], [false, false]);
    });

    test('rows are append-only; the retention prune removes only rows past it', async () => {
      for (const sql of ["UPDATE zava_audit.tool_calls SET sub = 'x'", 'DELETE FROM zava_audit.tool_calls', 'TRUNCATE zava_audit.tool_calls']) {
        await assert.rejects(t.db.withAdminTransaction((s) => s.exec(sql)), /append-only/, sql);
      }
      const before = await auditCount(t.db);
      await writeAuditEntries(t.db, [entry(1, { at: new Date(Date.now() - 200 * 86_400_000), requestId: 'old' }), entry(2, { at: new Date(), requestId: 'new' })]);
      // The fixtures of the first test are dated 2026-11-26 (fixed): they go too when older than the retention.
      const removable = Number((await t.db.ownerQuery(`SELECT count(*) FROM zava_audit.tool_calls WHERE at < now() - interval '90 days'`)).rows[0]![0]);
      assert.ok(removable >= 1);
      assert.equal(await pruneAudit(t.db, 90), removable);
      assert.equal(await auditCount(t.db), before + 2 - removable);
      assert.equal(Number((await t.db.ownerQuery(`SELECT count(*) FROM zava_audit.tool_calls WHERE request_id = 'new'`)).rows[0]![0]), 1);
      assert.equal(await pruneAudit(t.db, 0), 0, '0 keeps everything');
    });
  });
}

describe('audit writer under a slow or failing store', () => {
  test('record() never waits; the queue is bounded, overflow counted and logged once per episode', async () => {
    const { log, lines } = capturingLogger();
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const writer = new AuditWriter(() => stuck, { queueLimit: 100, log, lingerMs: 1 });
    writer.record(entry(0));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the first batch is now in flight, and stuck
    const started = performance.now();
    for (let i = 1; i <= 5000; i++) writer.record(entry(i));
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 500, `5,000 records took ${elapsed.toFixed(1)} ms`);
    assert.equal(writer.counts.queued, 100);
    assert.equal(writer.counts.dropped, 4900);
    const warnings = lines().filter((l) => String(l['msg']).startsWith('audit entries dropped'));
    assert.equal(warnings.length, 1, 'one line for the episode, not one per entry');
    release();
    assert.ok(await writer.drain());
    assert.equal(writer.counts.written, 101);
  });

  test('under a steady stream of calls, batches grow: each write waits its linger, it does not follow the last at once', async () => {
    const { log } = capturingLogger();
    const batches: number[] = [];
    const writer = new AuditWriter(async (entries) => {
      batches.push(entries.length);
      await new Promise((resolve) => setTimeout(resolve, 2)); // an INSERT's round trip
    }, { queueLimit: 10_000, log, lingerMs: 50 });
    // One call a millisecond for 400 ms: about 400 entries.
    const end = performance.now() + 400;
    let recorded = 0;
    while (performance.now() < end) {
      writer.record(entry(recorded++));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.ok(await writer.drain());
    assert.equal(batches.reduce((a, b) => a + b, 0), recorded, 'every entry written once');
    // 400 ms at one write per 50 ms linger: about 8 writes (a write per entry or two would be hundreds).
    assert.ok(batches.length <= 15, `${batches.length} writes for ${recorded} entries: ${batches.join(', ')}`);
    assert.ok(Math.max(...batches) >= 10, `batches of ${batches.join(', ')}`);
  });

  test('a failing write is retried with backoff and logged once; nothing recorded is lost', async () => {
    const { log, lines } = capturingLogger();
    let failures = 3;
    const stored: AuditEntry[] = [];
    const writer = new AuditWriter(async (entries) => {
      if (failures-- > 0) throw new Error('connection refused');
      stored.push(...entries);
    }, { queueLimit: 1000, log, lingerMs: 1, maxBackoffMs: 200 });
    for (let i = 0; i < 10; i++) writer.record(entry(i));
    assert.ok(await writer.drain(5_000));
    assert.deepEqual(stored.map((e) => e.requestId), Array.from({ length: 10 }, (_, i) => `req-${i}`));
    assert.equal(writer.counts.failedWrites, 3);
    const messages = lines().map((l) => String(l['msg']));
    assert.equal(messages.filter((m) => m.startsWith('audit write failed')).length, 1);
    assert.equal(messages.filter((m) => m === 'audit writes resumed').length, 1);
  });
});

describe('audit writer across a PostgreSQL restart (own cluster)', { skip: (await serverUnavailableReason()) ?? false }, () => {
  let cluster: OwnCluster;
  let db: ManagedDatabase | undefined;

  before(async () => {
    cluster = await OwnCluster.create();
  });
  after(async () => {
    await db?.close().catch(() => undefined);
    cluster?.destroy();
  });

  test('entries recorded while the database is down are written once it is back', async () => {
    const config = loadConfig({ databaseUrl: cluster.url() }, { ZAVA_POOL_CONNECT_TIMEOUT_MS: '2000' });
    db = await openDatabase(config);
    await migrateDatabase(db, config);
    const { log, lines } = capturingLogger();
    const writer = new AuditWriter((entries) => writeAuditEntries(db!, entries), { queueLimit: 1000, log, lingerMs: 1, maxBackoffMs: 300 });
    for (let i = 0; i < 5; i++) writer.record(entry(i));
    assert.ok(await writer.drain());
    cluster.stop('fast');
    for (let i = 5; i < 10; i++) writer.record(entry(i));
    const deadline = Date.now() + 20_000;
    while (writer.counts.failedWrites < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(writer.counts.failedWrites >= 2, 'writes failed while the database was down');
    assert.equal(writer.counts.queued, 5, 'the entries wait in the queue');
    cluster.start();
    assert.ok(await writer.drain(30_000), 'drained after the restart');
    const ids = (await db.ownerQuery('SELECT request_id FROM zava_audit.tool_calls ORDER BY id')).rows.map((r) => r[0]);
    assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => `req-${i}`));
    assert.deepEqual(writer.counts, { queued: 0, written: 10, dropped: 0, failedWrites: writer.counts.failedWrites });
    const messages = lines().map((l) => String(l['msg']));
    assert.ok(messages.some((m) => m.startsWith('audit write failed')) && messages.includes('audit writes resumed'));
  });
});
