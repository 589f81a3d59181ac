// The README's stdio configurations for VS Code (npx) and Claude Desktop (node with an absolute path) work as
// written: each is read from the README itself, started the way those clients start it, and asked a question
// with the official SDK client. Only the data directory is pointed at a test database.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { STORES } from '../src/data/stores.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Launch {
  readonly command: string;
  readonly args: string[];
}

/** VS Code's stdio entry, as the README gives it inline. */
function vsCodeLaunch(): Launch {
  const match = /"type": "stdio", "command": "(\w+)", "args": (\[[^\]]+\])/.exec(README.replace(/\s+/g, ' '));
  assert.ok(match, 'the README has a VS Code stdio entry');
  return { command: match[1]!, args: JSON.parse(match[2]!) as string[] };
}

/** Claude Desktop's entry, from the README's claude_desktop_config.json block, with the repository's real path. */
function claudeLaunch(): Launch {
  const block = /```json\n(\{\s*"mcpServers"[\s\S]*?)```/.exec(README);
  assert.ok(block, 'the README has a claude_desktop_config.json block');
  const config = JSON.parse(block[1]!.replaceAll('/path/to/zava-mcp', ROOT)) as { mcpServers: Record<string, Launch> };
  const [entry] = Object.values(config.mcpServers);
  assert.ok(entry);
  return entry;
}

let t: TestDatabase;
before(async () => {
  // With the catalog's embeddings, so the servers below answer their client at once instead of embedding first.
  t = await createTestDatabase('embedded', { open: false }); // one process per data directory: the servers below
});
after(async () => t?.cleanup());

async function ask(launch: Launch, dataDir: string): Promise<{ stores: string[] }> {
  // Clients start the server with their own environment; the data directory is the test's.
  const args = launch.args.map((arg, i, all) => (all[i - 1] === '--data-dir' ? dataDir : arg));
  const transport = new StdioClientTransport({
    command: launch.command,
    args,
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ZAVA_DATA_DIR: dataDir, ZAVA_LOG_LEVEL: 'warn' },
    stderr: 'pipe',
  });
  // What the server (or npx) said, for the failure message when the process ends before answering.
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const client = new Client({ name: 'readme-snippet', version: '1.0.0' });
  let result: CallToolResult;
  try {
    await client.connect(transport, { timeout: 120_000 });
    result = (await client.callTool({
      name: 'execute_sales_query',
      arguments: { postgresql_query: 'SELECT DISTINCT s.store_name FROM retail.orders o JOIN retail.stores s USING (store_id)' },
    })) as CallToolResult;
  } catch (error) {
    throw new Error(`${launch.command} ${args.join(' ')}: ${(error as Error).message}; its stderr: ${stderr || '(none)'}`);
  } finally {
    await client.close();
  }
  assert.equal(result.isError ?? false, false, JSON.stringify(result.content));
  const rows = (result.structuredContent as { r: string[][] }).r;
  return { stores: rows.map((row) => row[0]!) };
}

test('the VS Code stdio entry (npx zava-mcp …) serves the Seattle manager their store only', { timeout: 300_000 }, async () => {
  const launch = vsCodeLaunch();
  assert.equal(launch.command, 'npx');
  const { stores } = await ask(launch, t.flags[1]!);
  assert.deepEqual(stores, [STORES.find((s) => s.managerId === 'f47ac10b-58cc-4372-a567-0e02b2c3d479')!.name]);
});

test('the Claude Desktop entry (node with an absolute path) serves the Seattle manager their store only', { timeout: 300_000 }, async () => {
  const launch = claudeLaunch();
  assert.equal(launch.command, 'node');
  assert.ok(launch.args.includes('--data-dir'), 'the entry names its data directory');
  const { stores } = await ask(launch, t.flags[1]!);
  assert.deepEqual(stores, ['Zava Retail Seattle']);
});
