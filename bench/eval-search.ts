// `npm run eval:search`: search quality on the labelled query sets, per embedding provider that can run here
// (local always; openai / azure-openai / ollama when their keys or hosts are set):
//   - development: eval/search-queries.json, the set the local ranker's settings were chosen on;
//   - held-out: eval/search-queries-heldout.json, written later from the catalog alone and never used for tuning;
//   - held-out-2: eval/search-queries-heldout-2.json, written the same way before the DIY thesaurus was added;
//   - held-out-3: eval/search-queries-heldout-3.json, written the same way after the thesaurus and task lexicon;
//   - held-out-4: eval/search-queries-heldout-4.json, written the same way after held-out-3 had been studied.
// Uses a fresh embedded database with the default catalog and the tool's own searchProducts (hybrid ranking,
// default threshold), as head office. Options: --set=development|held-out|held-out-2|held-out-3|held-out-4, --threshold=N, --dims=N, --verbose.
// --catalog=DIR evaluates another retailer's catalog instead: DIR/catalog.json is imported with --replace
// semantics (the scratch database's seeded catalog and its orders go), so the model is fitted on that catalog
// alone, and DIR/queries.json (the held-out sets' shape) is its query set. --verbose prints every query's result,
// so do not use it on a set that must stay blind.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createEmbeddingProvider, embeddingSettings } from '../src/search/settings.js';
import { rebuildEmbeddings } from '../src/search/store.js';
import { searchProducts } from '../src/search/search.js';
import { importCatalog, readCatalogFile } from '../src/search/catalog-import.js';
import { withScratchDatabase } from './scratch-database.js';
import type { EmbeddingProvider, ProviderKind } from '../src/search/provider.js';

interface LabelledQuery {
  id: number;
  query: string;
  kind: string;
  relevant: string[];
}

export interface Metrics {
  queries: number;
  precisionAt5: number;
  /** hits in the top 5 / min(5, relevant): 1.0 is reachable even for queries with fewer than 5 relevant products. */
  cappedPrecisionAt5: number;
  recallAt10: number;
  ndcgAt10: number;
  mrr: number;
  /** The best precision@5 any ranking could get with these labels. */
  idealPrecisionAt5: number;
}

/**
 * One query's scores. A query no product answers (no relevant SKU) scores 1 on every metric when nothing is
 * returned and 0 when anything is: the shopper asked for something the shop does not sell.
 */
export function scoreRanking(ranked: readonly string[], relevant: ReadonlySet<string>) {
  if (relevant.size === 0) {
    const v = ranked.length === 0 ? 1 : 0;
    return { p5: v, cappedP5: v, r10: v, ndcg10: v, rr: v, idealP5: 1 };
  }
  const top5 = ranked.slice(0, 5).filter((s) => relevant.has(s)).length;
  const top10 = ranked.slice(0, 10);
  let dcg = 0;
  top10.forEach((sku, i) => {
    if (relevant.has(sku)) dcg += 1 / Math.log2(i + 2);
  });
  let idcg = 0;
  for (let i = 0; i < Math.min(10, relevant.size); i++) idcg += 1 / Math.log2(i + 2);
  const first = ranked.findIndex((s) => relevant.has(s));
  return {
    p5: top5 / 5,
    cappedP5: top5 / Math.min(5, relevant.size),
    r10: top10.filter((s) => relevant.has(s)).length / relevant.size,
    ndcg10: idcg > 0 ? dcg / idcg : 0,
    rr: first >= 0 ? 1 / (first + 1) : 0,
    idealP5: Math.min(5, relevant.size) / 5,
  };
}

export interface SetMetrics extends Metrics {
  /** Queries with at least 5 relevant products, where precision@5 can reach 1. */
  fivePlus: { queries: number; precisionAt5: number };
  byKind: Map<string, KindMetrics>;
  /** The queries whose text is asked about (see evaluate's `watch`): did their top 5 hold a relevant product. */
  watched: Map<string, { onTopic: number; top5: number; relevant: number } | undefined>;
}

export interface KindMetrics {
  n: number;
  ndcg: number;
  p5: number;
  cappedP5: number;
}

/** Runs every labelled query through `search` (ranked SKUs) and averages the metrics. */
export async function evaluate(
  labelled: readonly LabelledQuery[],
  search: (query: string) => Promise<string[]>,
  verbose = process.argv.includes('--verbose'),
  watch: readonly string[] = [],
): Promise<SetMetrics> {
  const totals = { p5: 0, cappedP5: 0, r10: 0, ndcg10: 0, rr: 0, idealP5: 0 };
  const fivePlus = { queries: 0, p5: 0 };
  const byKind = new Map<string, KindMetrics>();
  const watched = new Map<string, { onTopic: number; top5: number; relevant: number } | undefined>(watch.map((w) => [w, undefined]));
  for (const q of labelled) {
    const ranked = await search(q.query);
    const s = scoreRanking(ranked, new Set(q.relevant));
    const key = q.query.trim().toLowerCase();
    if (watched.has(key)) {
      const top5 = ranked.slice(0, 5);
      watched.set(key, { onTopic: top5.filter((sku) => q.relevant.includes(sku)).length, top5: top5.length, relevant: q.relevant.length });
    }
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += s[key];
    if (q.relevant.length >= 5) {
      fivePlus.queries++;
      fivePlus.p5 += s.p5;
    }
    const k = byKind.get(q.kind) ?? { n: 0, ndcg: 0, p5: 0, cappedP5: 0 };
    k.n++;
    k.ndcg += s.ndcg10;
    k.p5 += s.p5;
    k.cappedP5 += s.cappedP5;
    byKind.set(q.kind, k);
    if (verbose) {
      const marks = ranked.slice(0, 5).map((sku) => `${q.relevant.includes(sku) ? '+' : '-'}${sku}`).join(' ');
      process.stdout.write(`${s.ndcg10.toFixed(2)}  ${q.query.padEnd(44)} ${marks}\n`);
    }
  }
  const n = labelled.length;
  for (const v of byKind.values()) {
    v.ndcg /= v.n;
    v.p5 /= v.n;
    v.cappedP5 /= v.n;
  }
  return {
    queries: n,
    precisionAt5: totals.p5 / n,
    cappedPrecisionAt5: totals.cappedP5 / n,
    recallAt10: totals.r10 / n,
    ndcgAt10: totals.ndcg10 / n,
    mrr: totals.rr / n,
    idealPrecisionAt5: totals.idealP5 / n,
    fivePlus: { queries: fivePlus.queries, precisionAt5: fivePlus.queries ? fivePlus.p5 / fivePlus.queries : 0 },
    byKind,
    watched,
  };
}

/** The reference system's four example searches: each catalog's set should answer them on topic. */
export const SEED_EXAMPLES = ['containers for paint', 'tools for building a deck', 'something to fix a leaky faucet', 'paint for a bathroom ceiling'];

const SETS = [
  { name: 'development', file: 'search-queries.json' },
  { name: 'held-out', file: 'search-queries-heldout.json' },
  { name: 'held-out-2', file: 'search-queries-heldout-2.json' },
  { name: 'held-out-3', file: 'search-queries-heldout-3.json' },
  { name: 'held-out-4', file: 'search-queries-heldout-4.json' },
] as const;

async function main(): Promise<void> {
  const catalogDir = process.argv.find((a) => a.startsWith('--catalog='))?.split('=')[1];
  const setArg = process.argv.find((a) => a.startsWith('--set='))?.split('=')[1];
  const readSet = async (file: string | URL) => (JSON.parse(await readFile(file, 'utf8')) as { queries: LabelledQuery[] }).queries;
  let sets: { name: string; queries: LabelledQuery[] }[];
  if (catalogDir) {
    sets = [{ name: path.basename(path.resolve(catalogDir)), queries: await readSet(path.join(catalogDir, 'queries.json')) }];
  } else {
    const chosen = SETS.filter((set) => !setArg || set.name === setArg);
    if (chosen.length === 0) throw new Error(`--set must be one of ${SETS.map((set) => set.name).join(', ')}`);
    sets = await Promise.all(chosen.map(async (set) => ({ name: set.name, queries: await readSet(new URL(`../../eval/${set.file}`, import.meta.url)) })));
  }
  const thresholdArg = process.argv.find((a) => a.startsWith('--threshold='));
  const threshold = thresholdArg ? Number(thresholdArg.split('=')[1]) : 30;
  // --dims=N: the local model at another vector size (default: the provider's default).
  const dimsArg = process.argv.find((a) => a.startsWith('--dims='));
  await withScratchDatabase(1, async (db) => {
    const identity = await db.resolveIdentity('00000000-0000-0000-0000-000000000000');

    const candidates: { kind: ProviderKind; make: () => EmbeddingProvider | string }[] = [
      {
        kind: 'local',
        make: () =>
          createEmbeddingProvider(
            embeddingSettings({ ZAVA_EMBEDDING_PROVIDER: 'local', ...(dimsArg ? { ZAVA_EMBEDDING_DIMENSIONS: dimsArg.split('=')[1] } : {}) }),
          ),
      },
      ...(['openai', 'azure-openai', 'ollama'] as const).map((kind) => ({
        kind,
        make: () => {
          const configured = kind === 'openai' ? process.env.OPENAI_API_KEY : kind === 'azure-openai' ? process.env.AZURE_OPENAI_API_KEY : process.env.OLLAMA_HOST;
          if (!configured) return `skipped: ${kind === 'openai' ? 'OPENAI_API_KEY' : kind === 'azure-openai' ? 'AZURE_OPENAI_API_KEY' : 'OLLAMA_HOST'} is not set (no network here)`;
          return createEmbeddingProvider(embeddingSettings({ ...process.env, ZAVA_EMBEDDING_PROVIDER: kind }));
        },
      })),
    ];

    const rows: string[] = [];
    for (const candidate of candidates) {
      const provider = candidate.make();
      if (typeof provider === 'string') {
        rows.push(`${candidate.kind.padEnd(13)} ${provider}`);
        continue;
      }
      if (catalogDir) {
        // The retailer's catalog alone: the seeded one (and the orders holding it) is replaced, then embedded.
        const plan = await readCatalogFile(path.join(catalogDir, 'catalog.json'), 'catalog.json');
        await importCatalog(db, plan, { provider, replace: true, withOrders: true });
      }
      await rebuildEmbeddings(db, { provider, force: true });
      for (const set of sets) {
        const metrics = await evaluate(
          set.queries,
          async (query) => (await searchProducts(db, identity, { query, maxRows: 20, similarityThreshold: threshold }, { provider })).results.map((r) => r.sku),
          undefined,
          SEED_EXAMPLES,
        );
        const f = (x: number) => x.toFixed(3);
        rows.push(
          `${candidate.kind.padEnd(13)} ${set.name.padEnd(12)} ${provider.model.padEnd(34)} P@5 ${f(metrics.precisionAt5)} (ideal ${f(metrics.idealPrecisionAt5)}, normalized ${f(metrics.cappedPrecisionAt5)})  R@10 ${f(metrics.recallAt10)}  nDCG@10 ${f(metrics.ndcgAt10)}  MRR ${f(metrics.mrr)}`,
        );
        rows.push(`${''.padEnd(26)} ${metrics.queries} queries; P@5 on the ${metrics.fivePlus.queries} with at least 5 relevant products: ${f(metrics.fivePlus.precisionAt5)}`);
        rows.push(`${''.padEnd(26)} nDCG@10 by kind: ${[...metrics.byKind].map(([k, v]) => `${k} ${v.ndcg.toFixed(2)} (${v.n})`).join(', ')}`);
        rows.push(`${''.padEnd(26)} P@5 by kind: ${[...metrics.byKind].map(([k, v]) => `${k} ${v.p5.toFixed(2)}`).join(', ')}`);
        rows.push(`${''.padEnd(26)} normalized P@5 by kind: ${[...metrics.byKind].map(([k, v]) => `${k} ${v.cappedP5.toFixed(2)}`).join(', ')}`);
        const empty = set.queries.filter((q) => q.relevant.length === 0).length;
        if (empty > 0) rows.push(`${''.padEnd(26)} ${empty} queries have no relevant product: each scores 1 when nothing is returned, 0 otherwise`);
        rows.push(
          `${''.padEnd(26)} seed examples, relevant in top 5: ${[...metrics.watched]
            .map(([q, w]) => `"${q}" ${w ? `${w.onTopic}/${w.top5} (${w.relevant} relevant)` : 'not in set'}`)
            .join(', ')}`,
        );
      }
    }
    process.stdout.write(`Search quality (hybrid ranking, max_rows 20, threshold ${threshold})\n${rows.join('\n')}\n`);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`eval-search: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
}
