// `npm test`: every compiled test file (dist/test/**/*.test.js) under c8, which records the coverage of the test
// processes and of every server they spawn (they inherit NODE_V8_COVERAGE) and maps it back to src/*.ts.
// Files run side by side (ZAVA_TEST_CONCURRENCY at a time, default 2): much of a file's time is waiting on
// processes it spawns and on the database, and files share nothing but the seeded-database cache, which is safe
// for concurrent builders (test/support/file-lock.ts). The files that measure latency, memory or time per call
// (ALONE) run afterwards, one at a time with nothing else of the suite beside them, so another file's load never
// decides their bounds. The suites' shared scratch space lives in directories of this run (temporary files on a
// memory file system where there is one: workRoot), removed at the end whatever happened, with the template
// databases its files seeded on the PostgreSQL service
// (test/support/server-templates.ts). Each phase's files are listed slowest first (test/support/file-timings.ts),
// then the coverage summary; the last line is the plain count CI reads.
import { spawn } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropTemplates } from './support/server-templates.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TESTS = path.join(ROOT, 'dist', 'test');
const C8 = path.join(ROOT, 'node_modules', 'c8', 'bin', 'c8.js');
const TIMINGS_REPORTER = path.join(TESTS, 'support', 'file-timings.js');

/**
 * Files whose assertions bound latency or memory under load they create, or time a check per call (sql-guard's
 * 2 ms): the suite's own load stays out of them.
 */
const ALONE = new Set(['event-loop', 'hostile-load-embedded', 'hostile-load-server', 'mcp-hostile', 'resilience', 'sql-guard']);

function concurrency(): number {
  const raw = process.env.ZAVA_TEST_CONCURRENCY ?? '2';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`ZAVA_TEST_CONCURRENCY must be a whole number of at least 1, not ${JSON.stringify(raw)}`);
  return n;
}

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) return testFiles(file);
      return name.endsWith('.test.js') ? [file] : [];
    })
    .sort();
}

interface Phase {
  readonly name: string;
  readonly files: readonly string[];
  readonly concurrency: number;
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only.map((file) => path.resolve(file)) : testFiles(TESTS);
const alone = (file: string) => ALONE.has(path.basename(file, '.test.js'));
const phases: Phase[] = [
  { name: 'side by side', files: files.filter((file) => !alone(file)), concurrency: concurrency() },
  { name: 'alone', files: files.filter(alone), concurrency: 1 },
].filter((phase) => phase.files.length > 0);

/** Free space a memory file system needs to hold the run's databases (a few dozen data directories side by side). */
const MIN_MEMORY_FS_BYTES = 4 * 1024 ** 3;

/**
 * Where the test processes' temporary files go (TMPDIR): data directories, their readers' copies, clusters, the
 * seeded-database cache. Tests create and remove tens of thousands of files, and on the ext4 disks of the
 * machines this runs on creating a file costs 0.6–0.9 ms against 0.02 ms on tmpfs, so /dev/shm is used when it
 * is there with room to spare; ZAVA_TEST_TMPDIR names another place.
 */
function workRoot(): string {
  const chosen = process.env.ZAVA_TEST_TMPDIR;
  if (chosen) return chosen;
  try {
    const fs = statfsSync('/dev/shm');
    accessSync('/dev/shm', constants.W_OK);
    if (fs.bavail * fs.bsize >= MIN_MEMORY_FS_BYTES) return '/dev/shm';
  } catch {
    // no /dev/shm here: the system's temporary directory
  }
  return tmpdir();
}

const scratch = mkdtempSync(path.join(tmpdir(), 'zava-test-run-'));
const coverageDir = path.join(scratch, 'coverage-tmp');
const work = mkdtempSync(path.join(workRoot(), 'zava-test-work-'));
// Sticky and open to all like /tmp: clusters run as the postgres user in directories the tests create here.
chmodSync(work, 0o1777);
const cacheDir = path.join(work, 'cache');
const testEnv = { ...process.env, TMPDIR: work, ZAVA_TEST_CACHE_DIR: cacheDir, NODE_V8_COVERAGE: coverageDir };
process.stdout.write(`# the test processes' temporary files: ${work}\n`);

let current: ReturnType<typeof spawn> | undefined;
let stopped = false;
const stop = (signal: NodeJS.Signals) => {
  stopped = true;
  current?.kill(signal);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

/** Runs a command with our stdout, keeping the tail of what it printed; resolves with whether it succeeded. */
function run(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['inherit', 'pipe', 'inherit'] });
    current = child;
    child.stdout!.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output += chunk.toString();
      if (output.length > 1 << 20) output = output.slice(-(1 << 19)); // only the closing lines matter
    });
    child.on('close', (code, signal) => resolve({ ok: code === 0 && signal === null, output }));
  });
}

// The runner's own totals: "# pass 12" (TAP) or "ℹ pass 12" (spec reporter on a terminal).
const count = (output: string, word: string) => Number(new RegExp(`^(?:# |ℹ )${word} (\\d+)`, 'm').exec(output)?.[1] ?? 0);

let ok = true;
const totals = { pass: 0, fail: 0, skipped: 0 };
const timings: string[] = [];
try {
  for (const [i, phase] of phases.entries()) {
    if (stopped) break;
    const timingsFile = path.join(scratch, `timings-${i}.txt`);
    const result = await run([
      '--test', `--test-concurrency=${phase.concurrency}`,
      '--test-reporter=tap', '--test-reporter-destination=stdout',
      `--test-reporter=${TIMINGS_REPORTER}`, `--test-reporter-destination=${timingsFile}`,
      ...phase.files,
    ], testEnv);
    ok &&= result.ok;
    totals.pass += count(result.output, 'pass');
    totals.fail += count(result.output, 'fail') + count(result.output, 'cancelled');
    totals.skipped += count(result.output, 'skipped');
    const lines = existsSync(timingsFile) ? readFileSync(timingsFile, 'utf8').trimEnd() : '';
    timings.push(`# ${phase.name} (${phase.files.length} files, ${phase.concurrency} at a time), slowest first:\n${lines.replace(/^/gm, '# ')}`);
  }
  process.stdout.write(`\n${timings.join('\n')}\n`);
  if (!stopped) ok = (await run([C8, 'report', '--temp-directory', coverageDir])).ok && ok;
} finally {
  await dropTemplates(cacheDir).catch((error: Error) => process.stderr.write(`the run's template databases were not dropped: ${error.message}\n`));
  rmSync(scratch, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(`\ntests: ${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped\n`);
process.exit(ok && !stopped ? 0 : 1);
