// The local embedding provider: offline, deterministic, nothing downloaded. It is not a neural network. It
// turns text into a sparse bag of features and hashes them into a fixed-size dense vector:
//   - words reduced to their base form with WordNet's morphology rules (plural, -ing, -ed, -er…),
//   - WordNet 3.1 synsets of each word (its synonyms) and their hypernyms two levels up (a bucket is a vessel
//     is a container), plus similar-to/derivation links, weighted by sense rank,
//   - numbers with units and dimensions normalized ("15 Amp", "15 amp" → 15amp; "2 in. x 4 in." → 2x4),
//   - multi-word terms: WordNet collocations ("circuit breaker", "light bulb") and word pairs that recur in
//     the catalog ("paint tray", "extension cord"),
//   - a DIY thesaurus (diy-thesaurus.ts): trade, regional and colloquial names, abbreviations and feature words
//     that shoppers use interchangeably ("crescent wrench" ~ "adjustable wrench") share one feature per group,
//   - for queries, a DIY task lexicon (diy-tasks.ts): a job or problem the query names ("strip paint", "running
//     toilet") adds the kinds of products that do it,
//   - kinds: a product is a kind of its type's and name's head noun, that noun's WordNet ancestors and its
//     definition's genus; a query "X for Y" asks for kind X, and its Y (or an imperative's object) counts against,
//   - misspellings corrected to the nearest catalog word (edit distance 1–2) when a word is unknown,
//   - TF-IDF weights fitted on the catalog in the database, so words every product shares count for little,
//   - for queries, pseudo-relevance feedback: the query moves toward its five nearest catalog products,
//   - for catalogs of fewer products than dimensions, the feature vectors in coordinates of the catalog's own span
//     (SpanBasis) instead of hashed, so every query–product cosine is the exact one; larger catalogs are hashed.
// The model name carries a fingerprint of the catalog it was fitted on.
import { createHash } from 'node:crypto';
import { type EmbeddingProvider, type ProductDocument, l2Normalize } from './provider.js';
import { remember } from './word-cache.js';
import { editDistance, isContentPart, tokenize, wordParts } from './text.js';
import { DIY_THESAURUS } from './diy-thesaurus.js';
import { Thesaurus, thesaurusFingerprint, thesaurusItems } from './thesaurus.js';
import { DIY_TASKS } from './diy-tasks.js';
import { TaskLexicon } from './tasks.js';
import { type WordNet, type WordNetPos, sharedWordNet } from './wordnet.js';

export const LOCAL_MODEL_VERSION = 'zava-local-v4';
export const LOCAL_DEFAULT_DIMENSIONS = 1024;

type Features = Map<string, number>;

const FIELD_WEIGHTS = { name: 1.0, typeName: 0.8, categoryName: 0.3, description: 0.5 } as const;
const SENSE_WEIGHTS = [1, 0.5, 0.33];
const POS_WEIGHTS: ReadonlyArray<readonly [WordNetPos, number, number]> = [
  // part of speech, weight, senses considered
  ['n', 1.0, 3],
  ['v', 0.6, 2],
  ['a', 0.8, 2],
];
const SYNSET_WEIGHT = 0.5;
/** Pseudo-relevance feedback: how many nearest products, and the weight of their centroid. */
const PRF_DOCUMENTS = 5;
const PRF_WEIGHT = 2;
const PRF_MAX_DOCUMENTS = 50_000;
const HYPERNYM_DECAY = 0.5;
/** Weight of a thesaurus group feature, relative to a word of the same field. */
const THESAURUS_WEIGHT = 1;
/**
 * Weight, in a query, of a word that is part of a thesaurus term of two or more words: "weed whacker", "channel
 * locks", "breaker box" name one thing (a string trimmer, pliers, a load center), not weeds, locks or breakers, and
 * the term's group already stands for it. At full weight the part words pulled in sprayers "for weed control" and
 * door locks. Products are unchanged (so are their stored embeddings). Chosen on the sets whose failures have been
 * read (1, 0.5, 0.25 and 0 tried: BENCHMARKS.md, session 13, "The words of a trade name count for less").
 */
const THESAURUS_PHRASE_WORD_WEIGHT = 0.25;
/**
 * The share of the weight those words lose that goes to their term's group instead, so the term keeps its place
 * among the query's other features: without it the task lexicon's additions outweighed a named thing ("battery
 * powered lawn mower" ranked extension cords first). 0, 0.5 and 1 tried on the same sets.
 */
const THESAURUS_PHRASE_GROUP_SHARE = 0.5;
/** Weight of the product kinds a named task adds to a query (shared among them by 1/√n). */
const TASK_WEIGHT = 0.5;
/**
 * When a query names several tasks, each weighs (w / most)^this, w being the query words its phrases account
 * for and most the best task's: "heat a cold garage workshop" is about heating (4 words) more than about powering
 * a workshop (2 words), whose extension cords otherwise outranked the heaters. A query naming one task is
 * unchanged. 0 (equal weights, before), 1, 2 and 4 tried on the sets whose failures have been read.
 */
const TASK_COVERAGE_EXPONENT = 2;
/**
 * Kind ("is-a") features: a product is what the head noun of its type and name says it is (the last noun: "Paint
 * Kettle" is a kettle), and so is every ancestor of that noun in WordNet (a kettle is a pot, a vessel, a
 * container). A query asks for the kinds its nouns name, above all the nouns before its purpose ("containers for
 * paint": containers; "paint for a bathroom ceiling": paint). So "containers" finds a catalog's kettles, pails
 * and tubs whatever it calls them, without a word list: WordNet knows what they are.
 */
// Chosen on the development set (×1 and ×2 of 0.8 / 0.5 tried), see BENCHMARKS.md.
const KIND_WEIGHTS = { typeName: 1.6, name: 1 } as const;
const KIND_DEPTH = 6;
const KIND_DECAY = 0.7;
/** Query nouns before the purpose ("X for Y", "X to Y") and after it. */
const KIND_QUERY_HEAD = 1;
/** Negative: a product that is what the job is done to is not what the query asks for. */
const KIND_QUERY_OBJECT = -0.5;
const DETERMINERS = new Set(['a', 'an', 'the', 'my', 'our', 'your', 'some', 'his', 'her', 'their', 'this', 'these', 'those', 'old', 'new']);
/** Words that start a query's purpose: what comes before them is what is asked for. */
const PURPOSE_WORDS = new Set(['for', 'to', 'that', 'which', 'so']);
const KIND_SENSE_WEIGHTS = [1, 0.5];
/** The genus of a noun's WordNet definition, as one more kind of it (see Lexicon.genus), at this weight. */
const GLOSS_GENUS_WEIGHT = 0.7;
/** Words that end a definition's genus phrase, and words before the genus that are not it. */
const GLOSS_BREAKS = new Set(['for', 'that', 'which', 'who', 'used', 'of', 'with', 'in', 'on', 'by', 'to', 'having', 'consisting', 'especially', 'usually', 'or', 'and', 'from', 'as', 'made', 'designed', 'where', 'when', 'at', 'into', 'containing']);
const GLOSS_SKIP = new Set(['a', 'an', 'the', 'any', 'one', 'some', 'small', 'large', 'long', 'short', 'heavy', 'light', 'thin', 'thick', 'flat', 'hand-held', 'handheld', 'portable', 'various', 'several', 'kind', 'type', 'sort']);
/**
 * Distinct unknown words of one query that are spell-checked. A correction scans the catalog vocabulary with an
 * edit distance (about 1.3 ms for a 9–14-letter word at the default catalog), the only part of a query whose
 * cost grows with what the caller writes: 1,000 characters of made-up long words cost 170 ms. Past the budget
 * words are taken as written, so a query costs at most ~20 ms of corrections. Real queries have a few unknown
 * words at most (the labelled sets: 2), and the budget is counted the same whether a correction is cached.
 */
export const MAX_QUERY_CORRECTIONS = 16;

/** What a spelling-corrected query word adds to the query's coverage (a known word adds 1). */
export const CORRECTED_WORD_CREDIT = 0.75;

/** A query's embedding with the share of the query the model understood (queryCoverage). */
export interface QueryEmbedding {
  readonly vector: number[];
  readonly coverage: number;
}
function add(features: Features, key: string, weight: number): void {
  if (weight <= 0) return;
  features.set(key, (features.get(key) ?? 0) + weight);
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

interface WordInfo {
  /** The form used as the word feature (noun base form first). */
  readonly lemma: string;
  /** Weighted synset features (synsets, hypernyms, related). */
  readonly senses: ReadonlyArray<readonly [string, number]>;
  readonly known: boolean;
}

/** Word analysis shared by every fitted model in the process (WordNet does not change). */
class Lexicon {
  private readonly cache = new Map<string, WordInfo>();
  private readonly formCache = new Map<string, readonly string[]>();
  private readonly kindCache = new Map<string, ReadonlyArray<readonly [string, number]>>();
  constructor(private readonly wordnet: WordNet) {}

  word(word: string): WordInfo {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const wn = this.wordnet;
    let lemma: string | undefined;
    const senses = new Map<string, number>();
    for (const [pos, posWeight, senseCount] of POS_WEIGHTS) {
      const bases = wn.baseForms(word, pos);
      if (bases.length === 0) continue;
      lemma ??= bases[0]!;
      const offsets = wn.offsets(bases[0]!, pos).slice(0, senseCount);
      offsets.forEach((offset, rank) => {
        const w = posWeight * SENSE_WEIGHTS[rank]!;
        const key = `${pos}:${offset}`;
        senses.set(key, (senses.get(key) ?? 0) + w);
        const synset = wn.synset(pos, offset);
        if (!synset) return;
        for (const related of synset.related) senses.set(related, (senses.get(related) ?? 0) + w * 0.5);
        let level = synset.hypernyms;
        let decay = HYPERNYM_DECAY;
        for (let depth = 0; depth < 2 && level.length > 0; depth++) {
          const next: string[] = [];
          for (const hyper of level) {
            senses.set(hyper, (senses.get(hyper) ?? 0) + w * decay);
            const h = wn.synsetByKey(hyper);
            if (h) next.push(...h.hypernyms);
          }
          level = next;
          decay *= HYPERNYM_DECAY;
        }
      });
    }
    const info: WordInfo = { lemma: lemma ?? word, senses: [...senses], known: lemma !== undefined };
    remember(this.cache, word, info);
    return info;
  }

  /**
   * One spelling for all forms of a word, for matching word lists: the shortest of its forms ("pliers" and
   * "plier" → plier; "running" → run), so a list written in one form finds a text written in another.
   */
  canonical(word: string): string {
    let best = word;
    for (const form of this.forms(word)) if (form.length < best.length || (form.length === best.length && form < best)) best = form;
    return best;
  }

  /** The word and its base forms as noun, verb and adjective ("stripping" → stripping, strip). */
  forms(word: string): readonly string[] {
    let forms = this.formCache.get(word);
    if (!forms) {
      const all = new Set([word]);
      for (const pos of ['n', 'v', 'a'] as const) for (const base of this.wordnet.baseForms(word, pos)) all.add(base);
      forms = [...all];
      remember(this.formCache, word, forms);
    }
    return forms;
  }

  /** The noun senses of a word (first two), as kind features a query asks for. */
  ownKinds(word: string): ReadonlyArray<readonly [string, number]> {
    const out: [string, number][] = [];
    const base = this.wordnet.baseForms(word, 'n')[0];
    if (!base) return out;
    this.wordnet.offsets(base, 'n').slice(0, KIND_SENSE_WEIGHTS.length).forEach((offset, rank) => out.push([`n:${offset}`, KIND_SENSE_WEIGHTS[rank]!]));
    return out;
  }

  /**
   * The genus of a noun synset's definition: the last noun before the definition's first qualifier ("a faucet
   * for drawing water" → faucet; "a small hand tool with a handle" → tool). Definitions often name the kind that
   * the hypernym links skip or name more abstractly ("tap" is a faucet; its hypernym is only a regulator).
   */
  genus(key: string): string | undefined {
    const gloss = this.wordnet.synsetByKey(key)?.gloss;
    if (!gloss) return undefined;
    let genus: string | undefined;
    for (const raw of gloss.toLowerCase().split(/[\s,()]+/)) {
      const word = raw.replace(/[^a-z-]/g, '');
      if (!word) continue;
      if (GLOSS_BREAKS.has(word)) break;
      if (GLOSS_SKIP.has(word)) continue;
      if (this.wordnet.baseForms(word, 'n').length > 0) genus = this.wordnet.baseForms(word, 'n')[0];
    }
    return genus;
  }

  /** The noun senses of a word and all their ancestors up to KIND_DEPTH, each at its best weight. */
  kinds(word: string): ReadonlyArray<readonly [string, number]> {
    const cached = this.kindCache.get(word);
    if (cached) return cached;
    const weights = new Map<string, number>();
    const starts: [string, number][] = [];
    for (const [key, senseWeight] of this.ownKinds(word)) {
      starts.push([key, senseWeight]);
      const genus = GLOSS_GENUS_WEIGHT > 0 ? this.genus(key) : undefined;
      if (genus && genus !== word) for (const [g, w] of this.ownKinds(genus).slice(0, 1)) starts.push([g, senseWeight * w * GLOSS_GENUS_WEIGHT]);
    }
    for (const [key, senseWeight] of starts) {
      let level = [key];
      let w = senseWeight;
      for (let depth = 0; depth <= KIND_DEPTH && level.length > 0; depth++) {
        const next: string[] = [];
        for (const k of level) {
          if ((weights.get(k) ?? 0) < w) weights.set(k, w);
          const synset = this.wordnet.synsetByKey(k);
          if (synset) next.push(...synset.hypernyms);
        }
        level = next;
        w *= KIND_DECAY;
      }
    }
    const result = [...weights];
    remember(this.kindCache, word, result);
    return result;
  }

  isVerb(word: string): boolean {
    return this.wordnet.baseForms(word, 'v').length > 0;
  }

  verbSenses(word: string): number {
    const base = this.wordnet.baseForms(word, 'v')[0];
    return base ? this.wordnet.offsets(base, 'v').length : 0;
  }

  nounSenses(word: string): number {
    const base = this.wordnet.baseForms(word, 'n')[0];
    return base ? this.wordnet.offsets(base, 'n').length : 0;
  }

  isNoun(word: string): boolean {
    return this.wordnet.baseForms(word, 'n').length > 0;
  }

  isCollocation(a: string, b: string): boolean {
    return this.wordnet.has(`${a}_${b}`, 'n');
  }
}

let sharedLexicon: Lexicon | undefined;
function lexicon(): Lexicon {
  sharedLexicon ??= new Lexicon(sharedWordNet());
  return sharedLexicon;
}

let sharedThesaurus: Thesaurus | undefined;
function thesaurus(): Thesaurus {
  sharedThesaurus ??= new Thesaurus(DIY_THESAURUS, (word) => lexicon().canonical(lexicon().word(word).lemma));
  return sharedThesaurus;
}

// Query side only: product vectors do not depend on the task lexicon, so it is not part of the model name and
// changing it does not make stored embeddings stale.
let sharedTasks: TaskLexicon | undefined;
function taskLexicon(): TaskLexicon {
  sharedTasks ??= new TaskLexicon(DIY_TASKS, (word) => lexicon().forms(word));
  return sharedTasks;
}

/** A product whose squared distance from the span of the products before it is below this adds no dimension. */
const SPAN_PIVOT = 1e-9;

/** The PRF_DOCUMENTS products of highest positive score (ties: the lower index first), best first. */
function nearest(n: number, score: (i: number) => number): { i: number; s: number }[] {
  const top: { i: number; s: number }[] = [];
  for (let i = 0; i < n; i++) {
    const s = score(i);
    if (s <= 0) continue;
    if (top.length < PRF_DOCUMENTS) top.push({ i, s });
    else if (s > top[top.length - 1]!.s) top[top.length - 1] = { i, s };
    else continue;
    top.sort((a, b) => b.s - a.s || a.i - b.i);
  }
  return top;
}

function documentText(doc: ProductDocument): string {
  return `${doc.name}\t${doc.typeName}\t${doc.categoryName}\t${doc.description}`;
}

/**
 * The catalog's feature vectors in coordinates of their own span, for catalogs of fewer products than vector
 * dimensions. Hashing tens of thousands of sparse features into 1,024 slots adds collision noise to every cosine
 * (measured: the hash layout alone moves held-out nDCG@10 by ±0.02, and 4,096 slots gain 0.05); n products span at
 * most n dimensions, so below 1,024 products every query–product cosine can be kept exact instead. The Gram matrix
 * K (products' pairwise cosines) is factored K = L·Lᵀ (Cholesky, rows in product-id order, a product inside the
 * span of earlier ones adding no dimension); product i is row i of L, and a query q is y with L·y = (q·d_j)_j, so
 * y·L_i = q·d_i exactly. The query's part outside the span goes to the last coordinate, which no product uses,
 * so the query stays a unit vector and every cosine is the exact sparse one.
 */
class SpanBasis {
  readonly rowOf = new Map<number, number>();
  readonly texts: string[];
  /** Lower-triangular factor, row-major n×n. */
  private readonly l: Float64Array;
  private readonly n: number;
  /** Feature → (product row, weight) of every product that has it. */
  private readonly postings = new Map<string, { rows: number[]; weights: number[] }>();

  constructor(docs: readonly ProductDocument[], vectors: readonly Map<string, number>[]) {
    const n = docs.length;
    this.n = n;
    this.texts = docs.map(documentText);
    docs.forEach((doc, i) => this.rowOf.set(doc.productId, i));
    vectors.forEach((vector, i) => {
      for (const [key, w] of vector) {
        let p = this.postings.get(key);
        if (!p) this.postings.set(key, (p = { rows: [], weights: [] }));
        p.rows.push(i);
        p.weights.push(w);
      }
    });
    const gram = new Float64Array(n * n);
    for (const { rows, weights } of this.postings.values()) {
      for (let a = 0; a < rows.length; a++) {
        const ia = rows[a]! * n;
        const wa = weights[a]!;
        for (let b = 0; b <= a; b++) gram[ia + rows[b]!] = gram[ia + rows[b]!]! + wa * weights[b]!;
      }
    }
    const l = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      const ri = i * n;
      for (let j = 0; j <= i; j++) {
        const rj = j * n;
        let sum = gram[ri + j]!;
        for (let k = 0; k < j; k++) sum -= l[ri + k]! * l[rj + k]!;
        if (i === j) l[ri + i] = sum > SPAN_PIVOT ? Math.sqrt(sum) : 0;
        else l[ri + j] = l[rj + j]! > 0 ? sum / l[rj + j]! : 0;
      }
    }
    this.l = l;
    this.norms = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let k = 0; k <= i; k++) sum += l[i * n + k]! ** 2;
      this.norms[i] = Math.sqrt(sum);
    }
  }

  /** Row lengths of L (1, or a little less for a product nearly inside the span of earlier ones). */
  private readonly norms: Float64Array;

  /** A product's embedding: its row of L, unit length. */
  embedding(row: number, dimensions: number): number[] {
    const out = new Array<number>(dimensions).fill(0);
    this.addRow(row, 1, out);
    return out;
  }

  /** Adds `scale` times product `row`'s embedding to `out`. */
  addRow(row: number, scale: number, out: number[]): void {
    const norm = this.norms[row]!;
    if (norm === 0) return;
    for (let k = 0; k <= row; k++) out[k] = out[k]! + (scale * this.l[row * this.n + k]!) / norm;
  }

  /** A sparse unit vector in span coordinates, and its cosine with every product (by row). */
  project(vector: ReadonlyMap<string, number>, dimensions: number): { vector: number[]; cosines: Float64Array } {
    const n = this.n;
    const b = new Float64Array(n);
    for (const [key, w] of vector) {
      const p = this.postings.get(key);
      if (p) for (let a = 0; a < p.rows.length; a++) b[p.rows[a]!] = b[p.rows[a]!]! + w * p.weights[a]!;
    }
    // Forward substitution L·y = b, in a typed array (the inner loop is most of a query's cost).
    const l = this.l;
    const y = new Float64Array(n);
    let inSpan = 0;
    for (let j = 0; j < n; j++) {
      const rj = j * n;
      const pivot = l[rj + j]!;
      if (pivot === 0) continue;
      let sum = b[j]!;
      for (let k = 0; k < j; k++) sum -= l[rj + k]! * y[k]!;
      const v = sum / pivot;
      y[j] = v;
      inSpan += v * v;
    }
    const out = new Array<number>(dimensions).fill(0);
    for (let j = 0; j < n; j++) out[j] = y[j]!;
    let total = 0;
    for (const w of vector.values()) total += w * w;
    out[dimensions - 1] = Math.sqrt(Math.max(0, total - inSpan));
    for (let i = 0; i < n; i++) b[i] = this.norms[i]! > 0 ? b[i]! / this.norms[i]! : 0;
    return { vector: total > 0 ? l2Normalize(out) : out, cosines: b };
  }
}

/** A local model fitted on one catalog. */
export class LocalModel {
  readonly model: string;
  private readonly lexicon = lexicon();
  private readonly thesaurus = thesaurus();
  private readonly tasks = taskLexicon();
  private readonly documentFrequency = new Map<string, number>();
  private readonly vocabulary = new Map<string, number>();
  private readonly catalogBigrams = new Set<string>();
  private readonly corrections = new Map<string, string | null>();
  private readonly documentCount: number;
  private readonly corpus: readonly ProductDocument[];
  private readonly sortedCorpus: readonly ProductDocument[];
  /** null: the catalog is too large for the span embedding (hashing is used). */
  private span: SpanBasis | null | undefined;
  /** The catalog's own embeddings (row-major), for pseudo-relevance feedback; built on the first query. */
  private documentMatrix: Float32Array | undefined;
  /** The unknown words the query being embedded may still have spell-checked (undefined outside embedQuery). */
  private correctable: Set<string> | undefined;

  constructor(corpus: readonly ProductDocument[], readonly dimensions: number) {
    this.documentCount = Math.max(1, corpus.length);
    this.corpus = corpus;
    const sorted = [...corpus].sort((a, b) => a.productId - b.productId);
    this.sortedCorpus = sorted;
    this.model = localModelName(sorted, dimensions, this.thesaurus.fingerprint);

    // Pass 1: vocabulary and recurring word pairs.
    const pairCounts = new Map<string, number>();
    for (const doc of sorted) {
      const words = new Set<string>();
      const pairs = new Set<string>();
      for (const field of [doc.name, doc.typeName, doc.description]) {
        const lemmas = this.lemmas(field, false);
        for (let i = 0; i < lemmas.length; i++) {
          const a = lemmas[i];
          if (a) words.add(a);
          const b = lemmas[i + 1];
          if (a && b) pairs.add(`${a}_${b}`);
        }
      }
      for (const w of words) this.vocabulary.set(w, (this.vocabulary.get(w) ?? 0) + 1);
      for (const p of pairs) pairCounts.set(p, (pairCounts.get(p) ?? 0) + 1);
    }
    for (const [pair, count] of pairCounts) if (count >= 2) this.catalogBigrams.add(pair);

    // Pass 2: document frequencies of every feature.
    for (const doc of sorted) {
      for (const key of this.documentFeatures(doc).keys()) {
        this.documentFrequency.set(key, (this.documentFrequency.get(key) ?? 0) + 1);
      }
    }
  }

  embedDocument(doc: ProductDocument): number[] {
    const span = this.spanBasis();
    if (span) {
      const row = span.rowOf.get(doc.productId);
      if (row !== undefined && span.texts[row] === documentText(doc)) return span.embedding(row, this.dimensions);
      return span.project(this.weights(this.documentFeatures(doc), true), this.dimensions).vector;
    }
    return this.vectorize(this.documentFeatures(doc), true);
  }

  /** The exact catalog-span embedding (see SpanBasis), built on first use; undefined where hashing is used. */
  private spanBasis(): SpanBasis | undefined {
    if (this.span === undefined) {
      const n = this.sortedCorpus.length;
      this.span = n > 0 && n < this.dimensions ? new SpanBasis(this.sortedCorpus, this.sortedCorpus.map((doc) => this.weights(this.documentFeatures(doc), true))) : null;
    }
    return this.span ?? undefined;
  }

  /** TF-IDF weights of features as vectorize uses them, unit length, without hashing. */
  private weights(features: Features, document: boolean): Map<string, number> {
    const out = new Map<string, number>();
    let norm = 0;
    for (const [key, tf] of features) {
      const idf = this.idf(key);
      if (idf === 0) continue;
      const weight = (document && tf > 1 ? 1 + Math.log(tf) : tf) * idf;
      out.set(key, weight);
      norm += weight * weight;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) for (const [key, w] of out) out.set(key, w / norm);
    return out;
  }

  embedQuery(text: string): number[] {
    return this.embedQueryWithCoverage(text).vector;
  }

  /** The query's embedding, and how much of the query this model understands (see queryCoverage). */
  embedQueryWithCoverage(text: string): QueryEmbedding {
    // One budget per query (see MAX_QUERY_CORRECTIONS); set and cleared around this synchronous call only.
    this.correctable = new Set();
    try {
      const features = this.queryFeatures(text);
      const span = this.spanBasis();
      const vector = span ? this.spanFeedback(span, this.weights(features, false)) : this.feedback(this.vectorize(features, false));
      return { vector, coverage: this.queryCoverage(text) };
    } finally {
      this.correctable = undefined;
    }
  }

  /**
   * The share of the query's content words this model knows, 0..1: a word of the catalog, of its thesaurus or
   * of the English lexicon (or one with a digit: sizes, SKUs) counts 1; an unknown word that spelling
   * correction maps to a catalog word counts CORRECTED_WORD_CREDIT (a guess, not a reading); any other word 0.
   * A query without content words (only stopwords) counts as understood: it is simply unspecific.
   */
  queryCoverage(text: string): number {
    let words = 0;
    let known = 0;
    for (const token of tokenize(text)) {
      if (token.kind !== 'word') continue;
      for (const part of wordParts(token.text)) {
        if (!isContentPart(part)) continue;
        words++;
        const info = this.lexicon.word(part);
        if (/\d/.test(part) || info.known || this.vocabulary.has(info.lemma) || this.thesaurus.words.has(this.lexicon.canonical(info.lemma))) {
          known++;
        } else if (this.correct(part) !== undefined) {
          known += CORRECTED_WORD_CREDIT;
        }
      }
    }
    if (words === 0) return 1;
    // Words it knows, about a kind of product the catalog has none of: nothing here answers it.
    if (this.foreignHead(text) !== undefined) return 0;
    return known / words;
  }

  /**
   * The head noun of a product query when the catalog has nothing of that kind: "dishwasher", "riding lawn mower",
   * "a mattress for the guest room" at a shop that sells none. The head is the last word of a plain noun phrase
   * (only content words, no numbers) or of the part before a purpose ("X for Y"); it is foreign when it is an
   * English noun that no product's name, type, category or description uses, that no thesaurus term of a group the
   * catalog has anything of holds (the thesaurus knows "refrigerator", a tool shop sells none), and
   * whose WordNet senses (its first two) no product has, as a kind (a kettle is a container) or as a synonym or
   * ancestor of one of its words. Such a query otherwise returns whatever shares a modifier ("gas grill": gas
   * heaters). Limit: a trade or colloquial name WordNet knows but neither the catalog nor the thesaurus does
   * ("sheetrock" without the thesaurus) is taken as foreign too; the thesaurus is what covers those.
   */
  foreignHead(text: string): string | undefined {
    let lemmas = this.contentLemmas(text, true);
    const words: string[] = [];
    for (const token of tokenize(text)) if (token.kind === 'word') words.push(...wordParts(token.text));
    if (lemmas.some((l) => l.purpose)) {
      const split = words.findIndex((w) => PURPOSE_WORDS.has(w));
      if (words.slice(0, split).some((w) => /\d/.test(w))) return undefined;
      lemmas = lemmas.filter((l) => !l.purpose);
    } else if (words.length !== lemmas.length) {
      return undefined; // stopwords, numbers: not a plain noun phrase
    }
    const head = lemmas[lemmas.length - 1]?.lemma;
    if (!head || !this.lexicon.isNoun(head)) return undefined;
    if (this.vocabulary.has(head) || this.idf(`w:${head}`) > 0) return undefined;
    // A thesaurus term only vouches for the head when the catalog has something of its group.
    if (this.thesaurus.groupsOf(this.lexicon.canonical(head)).some((group) => this.idf(`t:${group}`) > 0)) return undefined;
    const sold = this.lexicon.ownKinds(head).some(([key]) => this.idf(`h:${key}`) > 0 || this.idf(`s:${key}`) > 0);
    return sold ? undefined : head;
  }

  /** Builds what the first query would otherwise build (the catalog matrix for feedback), so it is not slow. */
  prepare(): void {
    if (this.spanBasis()) return;
    if (this.corpus.length > 0 && this.corpus.length <= PRF_MAX_DOCUMENTS) this.documentMatrix ??= this.buildMatrix();
  }

  /**
   * Pseudo-relevance feedback (Rocchio): the query vector moves toward the weighted centroid of the catalog
   * products it is already nearest to. A short query ("cut tree branches") shares few features with a product's
   * whole text; its nearest products share the rest (the words of their descriptions, type and category), so
   * the expanded query finds their neighbours too and scores true matches with a higher cosine. Deterministic,
   * from the fitted catalog only; skipped for catalogs over PRF_MAX_DOCUMENTS products.
   */
  private feedback(query: number[]): number[] {
    if (PRF_WEIGHT <= 0 || this.corpus.length === 0 || this.corpus.length > PRF_MAX_DOCUMENTS) return query;
    if (query.every((v) => v === 0)) return query;
    const matrix = (this.documentMatrix ??= this.buildMatrix());
    const d = this.dimensions;
    const n = this.corpus.length;
    // The query vector is sparse (tens of features hashed into `d` slots): dot products over its non-zeros only.
    const nonZero: number[] = [];
    for (let j = 0; j < d; j++) if (query[j] !== 0) nonZero.push(j);
    const values = nonZero.map((j) => query[j]!);
    const top = nearest(n, (i) => {
      let s = 0;
      const base = i * d;
      for (let k = 0; k < nonZero.length; k++) s += matrix[base + nonZero[k]!]! * values[k]!;
      return s;
    });
    if (top.length === 0) return query;
    const centroid = new Array<number>(d).fill(0);
    let total = 0;
    for (const { i, s } of top) {
      total += s;
      const base = i * d;
      for (let j = 0; j < d; j++) centroid[j]! += s * matrix[base + j]!;
    }
    const scale = PRF_WEIGHT / total;
    return l2Normalize(query.map((v, j) => v + scale * centroid[j]!));
  }

  /**
   * feedback() for the span embedding: the projection already gives the query's exact cosine with every product,
   * so the nearest products come from it without a scan of the catalog matrix.
   */
  private spanFeedback(span: SpanBasis, weights: ReadonlyMap<string, number>): number[] {
    const { vector: query, cosines } = span.project(weights, this.dimensions);
    if (PRF_WEIGHT <= 0 || query.every((v) => v === 0)) return query;
    const top = nearest(cosines.length, (i) => cosines[i]!);
    if (top.length === 0) return query;
    const total = top.reduce((sum, { s }) => sum + s, 0);
    const out = [...query];
    for (const { i, s } of top) span.addRow(i, (PRF_WEIGHT * s) / total, out);
    return l2Normalize(out);
  }

  private buildMatrix(): Float32Array {
    const d = this.dimensions;
    const matrix = new Float32Array(this.corpus.length * d);
    this.corpus.forEach((doc, i) => matrix.set(this.embedDocument(doc), i * d));
    return matrix;
  }

  /** The weighted features of a query: its own, and those of the products a task it names calls for. */
  queryFeatures(text: string): Features {
    const features: Features = new Map();
    this.textFeatures(text, 1, features, true);
    this.queryKinds(text, features);
    const tasks = this.tasks.tasksFor(text);
    // A named task accounts for at least one word, so `most` is at least 1 whenever there is a task.
    const most = Math.max(...tasks.map((task) => task.words));
    for (const { products, words } of tasks) {
      const weight = (TASK_WEIGHT / Math.sqrt(products.length)) * (words / most) ** TASK_COVERAGE_EXPONENT;
      for (const product of products) this.textFeatures(product, weight, features, false);
    }
    return features;
  }

  private documentFeatures(doc: ProductDocument): Features {
    const features: Features = new Map();
    this.textFeatures(doc.name, FIELD_WEIGHTS.name, features, false);
    this.textFeatures(doc.typeName, FIELD_WEIGHTS.typeName, features, false);
    this.textFeatures(doc.categoryName, FIELD_WEIGHTS.categoryName, features, false);
    this.textFeatures(doc.description, FIELD_WEIGHTS.description, features, false);
    this.headKinds(doc.typeName, KIND_WEIGHTS.typeName, features);
    this.headKinds(doc.name, KIND_WEIGHTS.name, features);
    add(features, `sku:${doc.sku.toLowerCase()}`, 1);
    return features;
  }

  /** Content words of a text as lemmas, each marked whether it comes after a purpose word. */
  private contentLemmas(text: string, query: boolean): { lemma: string; purpose: boolean }[] {
    const out: { lemma: string; purpose: boolean }[] = [];
    let purpose = false;
    for (const token of tokenize(text)) {
      if (token.kind !== 'word') continue;
      for (const part of wordParts(token.text)) {
        if (PURPOSE_WORDS.has(part) && out.length > 0) purpose = true;
        if (!isContentPart(part) || /\d/.test(part)) continue;
        out.push({ lemma: this.lemmaOf(part, query), purpose });
      }
    }
    return out;
  }

  /** A product is a kind of what its head noun (the last noun of its type or name) names: see KIND_WEIGHTS. */
  private headKinds(text: string, weight: number, features: Features): void {
    const lemmas = this.contentLemmas(text, false);
    for (let i = lemmas.length - 1; i >= 0; i--) {
      const kinds = this.lexicon.kinds(lemmas[i]!.lemma);
      if (kinds.length === 0) continue;
      for (const [key, w] of kinds) add(features, `h:${key}`, weight * w);
      const before = lemmas[i - 1]?.lemma;
      if (before && this.lexicon.isCollocation(before, lemmas[i]!.lemma)) {
        for (const [key, w] of this.lexicon.kinds(`${before}_${lemmas[i]!.lemma}`)) add(features, `h:${key}`, weight * w);
      }
      return;
    }
  }

  /**
   * The kinds a query asks for, and the kinds it names only as the object of a job. "containers for paint" asks
   * for containers; paint is what they hold, so a product that is paint counts against it. "cut curves in
   * plywood" (a verb first, or a verb then a determiner: an imperative) asks for whatever cuts, not plywood.
   * Only queries with such a split get kind features: in a plain product query ("paint roller cover") every
   * word describes the product and the word features already carry it.
   */
  private queryKinds(text: string, features: Features): void {
    const words: string[] = [];
    for (const token of tokenize(text)) if (token.kind === 'word') words.push(...wordParts(token.text));
    const lemmas = this.contentLemmas(text, true);
    if (lemmas.length < 2) return;
    const first = words[0] ?? '';
    // A word that is mostly a verb ("cut": 41 verb senses, 14 noun) starts a job, unless the catalog or WordNet
    // knows it with the next word as one term ("paint roller", "cut list").
    const [l0, l1] = [lemmas[0]!.lemma, lemmas[1]!.lemma];
    const imperative =
      isContentPart(first) &&
      this.lexicon.isVerb(first) &&
      (!this.lexicon.isNoun(first) ||
        DETERMINERS.has(words[1] ?? '') ||
        (this.lexicon.verbSenses(first) > this.lexicon.nounSenses(first) && !this.catalogBigrams.has(`${l0}_${l1}`) && !this.lexicon.isCollocation(l0, l1)));
    if (imperative) lemmas.forEach((l, i) => (l.purpose = i > 0));
    if (!lemmas.some((l) => l.purpose)) return;
    lemmas.forEach(({ lemma, purpose }, i) => {
      const weight = purpose ? KIND_QUERY_OBJECT : KIND_QUERY_HEAD;
      const apply = (word: string) => {
        for (const [key, w] of this.lexicon.ownKinds(word)) features.set(`h:${key}`, (features.get(`h:${key}`) ?? 0) + weight * w);
      };
      if (!(imperative && i === 0)) apply(lemma);
      const before = lemmas[i - 1];
      if (before && before.purpose === purpose && this.lexicon.isCollocation(before.lemma, lemma)) apply(`${before.lemma}_${lemma}`);
    });
  }

  private idf(key: string): number {
    const df = this.documentFrequency.get(key) ?? 0;
    if (df === 0) return 0; // a feature no product has cannot match anything
    return Math.log(1 + this.documentCount / df);
  }

  private vectorize(features: Features, document: boolean): number[] {
    const vector = new Array<number>(this.dimensions).fill(0);
    for (const [key, tf] of features) {
      const idf = this.idf(key);
      if (idf === 0) continue;
      const weight = (document && tf > 1 ? 1 + Math.log(tf) : tf) * idf;
      const hash = fnv1a(key);
      const index = hash % this.dimensions;
      vector[index]! += hash & 0x80000000 ? -weight : weight;
    }
    return l2Normalize(vector);
  }

  /** Content-word lemmas in order; undefined marks a break (stopword or punctuation-free gap). */
  private lemmas(text: string, correct: boolean): (string | undefined)[] {
    const out: (string | undefined)[] = [];
    for (const token of tokenize(text)) {
      if (token.kind !== 'word') {
        out.push(undefined);
        continue;
      }
      for (const part of wordParts(token.text)) {
        if (!isContentPart(part)) {
          out.push(undefined);
          continue;
        }
        out.push(this.lemmaOf(part, correct));
      }
    }
    return out;
  }

  private lemmaOf(word: string, correct: boolean): string {
    const info = this.lexicon.word(word);
    if (info.known || !correct || this.vocabulary.has(info.lemma) || this.thesaurus.words.has(this.lexicon.canonical(info.lemma))) {
      return info.lemma;
    }
    const fixed = this.correct(word);
    return fixed ?? info.lemma;
  }

  /** The catalog word a misspelled query word most likely meant, if any. */
  private correct(word: string): string | undefined {
    if (word.length < 4 || /\d/.test(word)) return undefined;
    const budget = this.correctable;
    if (budget && !budget.has(word)) {
      if (budget.size >= MAX_QUERY_CORRECTIONS) return undefined;
      budget.add(word);
    }
    const cached = this.corrections.get(word);
    if (cached !== undefined) return cached ?? undefined;
    const max = word.length >= 9 ? 3 : word.length >= 6 ? 2 : 1;
    let best: string | undefined;
    let bestDistance = max + 1;
    let bestKeepsFirst = false;
    let bestCount = 0;
    for (const [candidate, count] of this.vocabulary) {
      if (Math.abs(candidate.length - word.length) > max) continue;
      // Typists rarely get the first letter wrong: at equal distance a candidate that keeps it wins, then the
      // more frequent one.
      const distance = editDistance(word, candidate, max);
      const keepsFirst = candidate[0] === word[0];
      const better =
        distance < bestDistance ||
        (distance === bestDistance && (keepsFirst !== bestKeepsFirst ? keepsFirst : count > bestCount));
      if (better) {
        best = candidate;
        bestDistance = distance;
        bestKeepsFirst = keepsFirst;
        bestCount = count;
      }
    }
    const result = bestDistance <= max ? best : undefined;
    remember(this.corrections, word, result ?? null);
    return result;
  }

  private textFeatures(text: string, weight: number, features: Features, query: boolean): void {
    const items = thesaurusItems(text, (word) => this.lexicon.canonical(this.lemmaOf(word, query)));
    // In a query, the items (thesaurus.ts: one per token or word part kept) inside a term of several words.
    const inPhrase = query ? new Map<number, number[]>() : undefined;
    for (const group of this.thesaurus.find(items, inPhrase)) add(features, `t:${group}`, weight * THESAURUS_WEIGHT);
    let item = -1; // the index in `items` of the token or part at hand
    const tokens = tokenize(text);
    let previous: string | undefined;
    for (const token of tokens) {
      if (token.kind !== 'word') item++;
      if (token.kind === 'measure') {
        add(features, `m:${token.text}`, weight * 1.5);
        previous = undefined;
        continue;
      }
      if (token.kind === 'dim') {
        add(features, `d:${token.text}`, weight * 1.5);
        previous = undefined;
        continue;
      }
      if (token.kind === 'code') {
        add(features, `c:${token.text}`, weight);
        add(features, `sku:${token.text}`, weight * 2);
        previous = undefined;
        continue;
      }
      const parts = wordParts(token.text);
      if (parts.length > 1) {
        const joined = parts.join('');
        if (this.vocabulary.has(joined)) add(features, `w:${joined}`, weight * 0.5);
      }
      for (const part of parts) {
        if (!isContentPart(part)) {
          if (!query) previous = undefined;
          continue;
        }
        item++;
        if (/^\d/.test(part)) {
          add(features, `n:${part}`, weight * 0.5);
          previous = undefined;
          continue;
        }
        const lemma = this.lemmaOf(part, query);
        const termGroups = inPhrase?.get(item);
        const formScale = lemma === this.lexicon.word(part).lemma ? 1 : 0.9;
        const scale = formScale * (termGroups ? THESAURUS_PHRASE_WORD_WEIGHT : 1);
        if (termGroups) {
          const moved = (weight * formScale * (1 - THESAURUS_PHRASE_WORD_WEIGHT) * THESAURUS_PHRASE_GROUP_SHARE) / termGroups.length;
          for (const group of termGroups) add(features, `t:${group}`, moved);
        }
        this.wordFeatures(lemma, weight * scale, features);
        if (previous) {
          const pair = `${previous}_${lemma}`;
          if (this.catalogBigrams.has(pair)) add(features, `b:${pair}`, weight);
          if (this.lexicon.isCollocation(previous, lemma)) {
            add(features, `w:${pair}`, weight * 1.5);
            for (const [key, w] of this.lexicon.word(pair).senses) add(features, `s:${key}`, weight * SYNSET_WEIGHT * w);
          }
        }
        previous = lemma;
      }
    }
  }

  private wordFeatures(lemma: string, weight: number, features: Features): void {
    add(features, `w:${lemma}`, weight);
    for (const [key, w] of this.lexicon.word(lemma).senses) add(features, `s:${key}`, weight * SYNSET_WEIGHT * w);
  }
}

/** Identifies a catalog (and vector size): equal digests fit equal models. */
export function corpusDigest(corpus: readonly ProductDocument[], dimensions: number): string {
  const key = `${dimensions}|${corpus.length}|${corpus.map((d) => `${d.productId}\t${d.name}\t${d.typeName}\t${d.categoryName}\t${d.description}`).join('\n')}`;
  return createHash('sha256').update(key).digest('hex');
}

/**
 * The name of the model fitted on `corpus`, without fitting it (a hash of the catalog and the thesaurus): what
 * the worker pool answers with before any worker has fitted, so a server whose embeddings are current starts
 * without the fit.
 */
export function localModelName(corpus: readonly ProductDocument[], dimensions: number, thesaurus = thesaurusFingerprint(DIY_THESAURUS)): string {
  const fingerprint = createHash('sha256');
  fingerprint.update(`${LOCAL_MODEL_VERSION}\n${dimensions}\n${thesaurus}\n`);
  for (const doc of [...corpus].sort((a, b) => a.productId - b.productId)) {
    fingerprint.update(`${doc.productId}\t${doc.name}\t${doc.typeName}\t${doc.categoryName}\t${doc.description}\n`);
  }
  return `${LOCAL_MODEL_VERSION}-${dimensions}d-${fingerprint.digest('hex').slice(0, 10)}`;
}

const fitted = new Map<string, LocalModel>();

/** The model fitted on `corpus`, shared by every provider of this thread (fitting takes most of a second). */
export function fittedModel(corpus: readonly ProductDocument[], dimensions: number, digest = corpusDigest(corpus, dimensions)): LocalModel {
  let model = fitted.get(digest);
  if (!model) {
    model = new LocalModel(corpus, dimensions);
    if (fitted.size > 8) fitted.clear();
    fitted.set(digest, model);
  }
  return model;
}

/** The local provider. fit() must run (with the catalog in the database) before it embeds. */
export class LocalEmbeddingProvider implements EmbeddingProvider {
  readonly kind = 'local' as const;
  readonly batchSize = 128;
  readonly needsCorpus = true;
  private current: LocalModel | undefined;

  constructor(readonly dimensions: number = LOCAL_DEFAULT_DIMENSIONS) {}

  get model(): string {
    if (!this.current) throw new Error('the local embedding provider has not been fitted to a catalog yet');
    return this.current.model;
  }

  get fittedModel(): LocalModel | undefined {
    return this.current;
  }

  fit(corpus: readonly ProductDocument[]): void {
    this.current = fittedModel(corpus, this.dimensions);
  }

  async embedDocuments(documents: readonly ProductDocument[]): Promise<number[][]> {
    const model = this.requireModel();
    return documents.map((doc) => model.embedDocument(doc));
  }

  async embedQuery(text: string): Promise<number[]> {
    return this.requireModel().embedQuery(text);
  }

  async embedQueryWithCoverage(text: string): Promise<QueryEmbedding> {
    return this.requireModel().embedQueryWithCoverage(text);
  }

  private requireModel(): LocalModel {
    if (!this.current) throw new Error('the local embedding provider has not been fitted to a catalog yet');
    return this.current;
  }
}
