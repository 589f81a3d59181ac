// A node:test reporter (beside TAP, see test/run.ts) that sums each test file's top-level tests and suites, so a
// run says where its time went: the slowest files first, one line each. Times are the runner's own duration_ms;
// with files running side by side they overlap, so they rank files rather than add up to the wall time.
import path from 'node:path';

interface TestEvent {
  readonly type: string;
  readonly data: { readonly nesting?: number; readonly file?: string; readonly details?: { readonly duration_ms?: number } };
}

export default async function* fileTimings(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const totals = new Map<string, number>();
  for await (const event of source) {
    if ((event.type !== 'test:pass' && event.type !== 'test:fail') || event.data.nesting !== 0 || !event.data.file) continue;
    totals.set(event.data.file, (totals.get(event.data.file) ?? 0) + (event.data.details?.duration_ms ?? 0));
  }
  for (const [file, ms] of [...totals].sort((a, b) => b[1] - a[1])) {
    yield `${(ms / 1000).toFixed(1).padStart(7)} s  ${path.basename(file)}\n`;
  }
}
