// JSON-RPC batches on stdio: refused with an error answer (not dropped in silence, which leaves the client
// waiting), whatever the chunking of stdin, while every other line reaches the server as it came.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { BATCH_REFUSAL_MESSAGE, BatchRefusal, batchRefusalLine } from '../src/protocol/stdio-batches.js';
import { STORES } from '../src/data/stores.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { MAIN } from './mcp-harness.js';

async function filter(chunks: readonly string[]): Promise<{ passed: string; refusals: number }> {
  let refusals = 0;
  const out: Buffer[] = [];
  const stream = Readable.from(chunks.map((c) => Buffer.from(c))).pipe(new BatchRefusal(() => refusals++));
  for await (const chunk of stream) out.push(chunk as Buffer);
  return { passed: Buffer.concat(out).toString(), refusals };
}

describe('the stdio batch filter', () => {
  const request = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n';
  const batch = '[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"ping"}]\n';

  test('a batch line is dropped and refused; the lines around it pass unchanged', async () => {
    assert.deepEqual(await filter([request + batch + request]), { passed: request + request, refusals: 1 });
    assert.deepEqual(await filter([batch, batch]), { passed: '', refusals: 2 });
    assert.deepEqual(await filter(['  \t' + batch.trimEnd() + '\r\n', request]), { passed: request, refusals: 1 }, 'blanks before the bracket');
    assert.deepEqual(await filter(['[]\n', '[1, 2, 3]\n']), { passed: '', refusals: 2 }, 'empty and junk batches');
  });

  test('the same at every split of the input into two chunks, and one byte at a time', async () => {
    const input = request + '   ' + batch + request + '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"x":"[not a batch]"}}\n';
    const expected = request + request + '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"x":"[not a batch]"}}\n';
    for (let cut = 0; cut <= input.length; cut++) {
      assert.deepEqual(await filter([input.slice(0, cut), input.slice(cut)]), { passed: expected, refusals: 1 }, `cut at ${cut}`);
    }
    assert.deepEqual(await filter([...input]), { passed: expected, refusals: 1 });
  });

  test('a batch cut off by the end of input is still refused; a long line passes without being held', async () => {
    assert.equal((await filter(['[{"jsonrpc":"2.0"'])).refusals, 1);
    const long = `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'x'.repeat(200_000)}"}}\n`;
    assert.deepEqual(await filter([long.slice(0, 65_536), long.slice(65_536)]), { passed: long, refusals: 0 });
  });

  test('the refusal is a JSON-RPC invalid request with no id', () => {
    assert.deepEqual(JSON.parse(batchRefusalLine(BATCH_REFUSAL_MESSAGE)), {
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: BATCH_REFUSAL_MESSAGE },
    });
  });
});

describe('a batch sent to `zava-mcp serve --stdio`', () => {
  let t: TestDatabase;
  before(async () => {
    t = await createTestDatabase('embedded', { customers: 40, open: false }); // the spawned server opens it
  });
  after(async () => t?.cleanup());

  test('is answered with an error at once, and the connection goes on serving', { timeout: 180_000 }, async () => {
    const child = spawn(process.execPath, [MAIN, 'serve', '--stdio', ...t.flags, '--rls-user-id', STORES[0]!.managerId], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const answers: Record<string, unknown>[] = [];
    let buffered = '';
    const waiters: Array<() => void> = [];
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        answers.push(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
        buffered = buffered.slice(newline + 1);
        for (const wake of waiters.splice(0)) wake();
      }
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let exited = false;
    child.once('exit', () => {
      exited = true;
      for (const wake of waiters.splice(0)) wake();
    });
    const answerCount = async (count: number) => {
      while (answers.length < count) {
        if (exited) assert.fail(`the server exited after ${answers.length} answers:\n${stderr}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    };
    try {
      const send = (message: unknown) => child.stdin.write(`${JSON.stringify(message)}\n`);
      send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'batch-test', version: '1' } } });
      await answerCount(1);
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send([
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
        { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'execute_sales_query', arguments: { postgresql_query: 'SELECT 1' } } },
      ]);
      send({ jsonrpc: '2.0', id: 4, method: 'ping' });
      await answerCount(3);
      assert.deepEqual(answers[1], { jsonrpc: '2.0', id: null, error: { code: -32600, message: BATCH_REFUSAL_MESSAGE } });
      assert.deepEqual(answers[2], { jsonrpc: '2.0', id: 4, result: {} });
      assert.equal(answers.length, 3, 'nothing of the batch ran');
    } finally {
      child.stdin.end();
      if (!exited) await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
