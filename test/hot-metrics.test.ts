// The hot-path metrics (src/infra/hot-metrics.ts) print exactly what prom-client's own Counter and Histogram print
// for the same observations: same series, labels, order and values, with the registry's default labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../src/infra/hot-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

function registries(): [Registry, Registry] {
  const reference = new Registry();
  const hot = new Registry();
  for (const registry of [reference, hot]) registry.setDefaultLabels({ backend: 'server' });
  return [reference, hot];
}

test('labelled counter and histograms: the same exposition as prom-client for the same observations', async () => {
  const [reference, hot] = registries();
  const refCalls = new Counter({ name: 'x_calls_total', help: 'Calls.', labelNames: ['tool', 'code'], registers: [reference] });
  const hotCalls = new HotCounter({ name: 'x_calls_total', help: 'Calls.', labelNames: ['tool', 'code'], registers: [hot] });
  const refTime = new Histogram({ name: 'x_seconds', help: 'Time "quoted" \\ and\nmore.', labelNames: ['role', 'outcome'], buckets: BUCKETS, registers: [reference] });
  const hotTime = new HotHistogram({ name: 'x_seconds', help: 'Time "quoted" \\ and\nmore.', labelNames: ['role', 'outcome'], buckets: BUCKETS, registers: [hot] });
  // Values below, on and above every bound; label values needing escapes.
  const samples: Array<[string, string, number]> = [
    ['head_office', 'ok', 0.0005], ['head_office', 'ok', 0.001], ['store_manager', 'failed', 0.5], ['store_manager', 'ok', 7],
    ['head_office', 'ok', 0.01], ['weird "role"\n', 'ok', 1], ['store_manager', 'ok', 0.02], ['head_office', 'ok', 0.1000001],
  ];
  for (const [role, outcome, value] of samples) {
    refTime.observe({ role, outcome }, value);
    hotTime.labels(role, outcome).observe(value);
    refCalls.inc({ tool: role, code: outcome });
    hotCalls.labels(role, outcome).inc();
  }
  assert.equal(await hot.metrics(), await reference.metrics());
  assert.match(await hot.metrics(), /x_seconds_bucket\{le="\+Inf",backend="server",role="head_office",outcome="ok"\} 4/);
});

test('unlabelled: the same before any observation, after some, and after a reset', async () => {
  const [reference, hot] = registries();
  const ref = new Histogram({ name: 'x_rows', help: 'Rows.', buckets: [0, 1, 10], registers: [reference] });
  const mine = new HotHistogram({ name: 'x_rows', help: 'Rows.', buckets: [0, 1, 10], registers: [hot] });
  const refTruncated = new Counter({ name: 'x_truncated_total', help: 'Cut.', registers: [reference] });
  const hotTruncated = new HotCounter({ name: 'x_truncated_total', help: 'Cut.', registers: [hot] });
  assert.equal(await hot.metrics(), await reference.metrics());
  for (const rows of [0, 1, 3, 10, 11, 0]) {
    ref.observe(rows);
    mine.labels().observe(rows);
    refTruncated.inc();
    hotTruncated.labels().inc();
  }
  assert.match(await hot.metrics(), /x_truncated_total\{backend="server"\} 6/);
  assert.equal(await hot.metrics(), await reference.metrics());
  hot.resetMetrics();
  reference.resetMetrics();
  assert.equal(await hot.metrics(), await reference.metrics());
});

test('a wrong number of label values is refused; a non-finite value is ignored rather than thrown', () => {
  const metric = new HotHistogram({ name: 'x_y', help: 'Y.', labelNames: ['a'], buckets: [1], registers: [new Registry()] });
  assert.throws(() => metric.labels(), /x_y takes 1 label values, got 0/);
  assert.doesNotThrow(() => metric.labels('v').observe(Number.NaN));
});
