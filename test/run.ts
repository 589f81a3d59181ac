// `npm test`: every compiled test file (dist/test/**/*.test.js), one file at a time, under c8, which records the
// coverage of the test process and of every server it spawns (they inherit NODE_V8_COVERAGE) and maps it back to
// src/*.ts. The suites' shared scratch space (the seeded database cache) lives in a directory of this run, removed
// at the end whatever happened. The last line is the plain count CI reads.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TESTS = path.join(ROOT, 'dist', 'test');

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) return testFiles(file);
      return name.endsWith('.test.js') ? [file] : [];
    })
    .sort();
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only.map((file) => path.resolve(file)) : testFiles(TESTS);
const scratch = mkdtempSync(path.join(tmpdir(), 'zava-test-run-'));
const c8 = path.join(ROOT, 'node_modules', 'c8', 'bin', 'c8.js');
const args = [
  c8,
  '--temp-directory', path.join(scratch, 'coverage-tmp'),
  process.execPath, '--test', '--test-concurrency=1', ...files,
];

let output = '';
const child = spawn(process.execPath, args, {
  cwd: ROOT,
  env: { ...process.env, ZAVA_TEST_CACHE_DIR: path.join(scratch, 'cache') },
  stdio: ['inherit', 'pipe', 'inherit'],
});
child.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  output += chunk.toString();
  if (output.length > 1 << 20) output = output.slice(-(1 << 19)); // only the closing lines matter
});
const stop = (signal: NodeJS.Signals) => child.kill(signal);
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
child.on('close', (code, signal) => {
  rmSync(scratch, { recursive: true, force: true });
  // The runner's own totals: "# pass 12" (TAP) or "ℹ pass 12" (spec reporter on a terminal).
  const count = (word: string) => Number(new RegExp(`^(?:# |ℹ )${word} (\\d+)`, 'm').exec(output)?.[1] ?? 0);
  process.stdout.write(`\ntests: ${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped\n`);
  process.exit(code ?? (signal ? 1 : 0));
});
