// Counters and histograms for the per-call hot path, registered in a prom-client Registry and exposed by it
// exactly as prom-client's own Counter and Histogram are (same series, same text; test/hot-metrics.test.ts
// compares the two).
//
// Why not prom-client's classes here: each labelled `observe` or `inc` builds, validates and hashes a labels
// object, a few µs a call; with three observations and a counter per tool call that was 2–3 % of the server's
// busy time on a one-row query (issue 12: metrics and audit may cost at most 5 % of throughput, BENCHMARKS.md).
// Here a label set is resolved once to a child that holds plain numbers, and an observation is a bucket search
// and three additions. The label sets stay the bounded ones of metrics.ts (tools × codes, roles × outcomes).
import type { Registry } from 'prom-client';

interface MetricValue {
  readonly labels: Record<string, string | number>;
  /** A histogram's own labels beside `le` (prom-client's shape: they print after `le` and the default labels). */
  readonly sharedLabels?: Record<string, string>;
  readonly value: number;
  readonly metricName?: string;
}

interface MetricSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: MetricValue[];
}

interface Options<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  readonly registers: readonly Registry[];
}

/** What prom-client's Registry needs of a metric: its name, a snapshot on scrape, a reset. */
abstract class HotMetric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly labelNames: readonly L[];
  /** Label values joined with \0 → the child that counts for them. */
  protected readonly children = new Map<string, { labels: Record<string, string>; child: C }>();

  constructor(options: Options<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    // prom-client's Registry takes any object with these members (registerMetric keys it by name).
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  protected abstract newChild(): C;

  /** The child for these label values (in labelNames' order), made once. */
  labels(...values: string[]): C {
    const key = values.join('\0');
    let entry = this.children.get(key);
    if (!entry) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name} takes ${this.labelNames.length} label values, got ${values.length}`);
      entry = { labels: Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]!])), child: this.newChild() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  reset(): void {
    this.children.clear();
  }

  /** As prom-client does, a metric without labels shows its zero series before anything is counted. */
  protected zeroUnlabelled(): void {
    if (this.labelNames.length === 0) this.labels();
  }

  abstract get(): Promise<MetricSnapshot>;
}

export class HotCounter<L extends string = never> extends HotMetric<L, { value: number; inc(by?: number): void }> {
  readonly type = 'counter' as const;

  constructor(options: Options<L>) {
    super(options);
    this.zeroUnlabelled();
  }

  /** prom-client's reset shows an unlabelled counter's zero again (a histogram's, not until its next observation). */
  override reset(): void {
    super.reset();
    this.zeroUnlabelled();
  }

  protected newChild(): { value: number; inc(by?: number): void } {
    return {
      value: 0,
      inc(by = 1) {
        this.value += by;
      },
    };
  }

  async get(): Promise<MetricSnapshot> {
    const values = [...this.children.values()].map(({ labels, child }) => ({ labels, value: child.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export interface HistogramChild {
  observe(value: number): void;
}

export class HotHistogram<L extends string = never> extends HotMetric<L, HistogramChild & { counts: Float64Array; sum: number; count: number }> {
  readonly type = 'histogram' as const;
  private readonly buckets: readonly number[];

  constructor(options: Options<L> & { readonly buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
    this.zeroUnlabelled();
  }

  protected newChild(): HistogramChild & { counts: Float64Array; sum: number; count: number } {
    const buckets = this.buckets;
    return {
      // One count per bucket (not cumulative; summed on scrape); past the last bound only count and sum move.
      counts: new Float64Array(buckets.length),
      sum: 0,
      count: 0,
      observe(value: number) {
        if (!Number.isFinite(value)) return; // prom-client throws; a metric must never fail a call
        for (let i = 0; i < buckets.length; i++) {
          if (value <= buckets[i]!) {
            this.counts[i]! += 1;
            break;
          }
        }
        this.sum += value;
        this.count += 1;
      },
    };
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += child.counts[i]!;
        values.push({ labels: { le: bound }, sharedLabels: labels, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: labels, value: child.count, metricName: `${this.name}_bucket` },
        { labels: {}, sharedLabels: labels, value: child.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: labels, value: child.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
