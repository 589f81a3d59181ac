// Finds the DIY thesaurus's terms in analysed text. A text is reduced to the same items the local model
// reads — word lemmas, measures ("15amp"), dimensions ("2x4"), codes — with stopwords dropped, and every run of
// one to three items that spells a thesaurus term reports that term's group, so "crescent wrench" in a query
// and "adjustable wrench" in a product share one feature.
import { createHash } from 'node:crypto';
import { isContentPart, tokenize, wordParts } from './text.js';

/** The items of a text, in order, as thesaurus terms and texts are both compared. */
export function thesaurusItems(text: string, lemmaOf: (word: string) => string): string[] {
  const items: string[] = [];
  for (const token of tokenize(text)) {
    if (token.kind !== 'word') {
      items.push(`${token.kind}:${token.text}`);
      continue;
    }
    for (const part of wordParts(token.text)) {
      if (!isContentPart(part)) continue;
      items.push(/^\d/.test(part) ? `n:${part}` : lemmaOf(part));
    }
  }
  return items;
}

/** What a thesaurus's groups are named by in a model name; computed without building the thesaurus. */
export function thesaurusFingerprint(groups: readonly (readonly string[])[]): string {
  return createHash('sha256').update(JSON.stringify(groups)).digest('hex').slice(0, 12);
}

export class Thesaurus {
  /** Item sequence (joined by a space) → the groups it belongs to. */
  private readonly terms = new Map<string, number[]>();
  /** Every word lemma of every term: words the model must not "correct" into catalog words. */
  readonly words = new Set<string>();
  /** Word lemma → the groups of the terms it is part of. */
  private readonly wordGroups = new Map<string, number[]>();
  readonly fingerprint: string;
  private readonly longest: number;

  constructor(groups: readonly (readonly string[])[], lemmaOf: (word: string) => string) {
    let longest = 1;
    groups.forEach((group, id) => {
      for (const term of group) {
        const items = thesaurusItems(term, lemmaOf);
        if (items.length === 0) continue;
        const key = items.join(' ');
        const ids = this.terms.get(key) ?? [];
        if (!ids.includes(id)) ids.push(id);
        this.terms.set(key, ids);
        longest = Math.max(longest, items.length);
        for (const item of items) {
          if (item.includes(':')) continue;
          this.words.add(item);
          const groups = this.wordGroups.get(item) ?? [];
          if (!groups.includes(id)) groups.push(id);
          this.wordGroups.set(item, groups);
        }
      }
    });
    this.longest = longest;
    this.fingerprint = thesaurusFingerprint(groups);
  }

  /** The groups of every term that has `word` (a lemma) among its words. */
  groupsOf(word: string): readonly number[] {
    return this.wordGroups.get(word) ?? [];
  }

  /**
   * The groups of every term found in `items`, once per term found: "laminate flooring" reports its group twice
   * (for "laminate" and for the whole), so a text that names the thing precisely leans on it more. (Counting
   * overlapping terms once was tried: the development set did not change, the first held-out set lost 0.03.)
   * `inPhrase`, when given, receives the index of every item inside a term of two or more items, with the groups
   * of those terms.
   */
  find(items: readonly string[], inPhrase?: Map<number, number[]>): number[] {
    const groups: number[] = [];
    for (let start = 0; start < items.length; start++) {
      let key = '';
      for (let length = 1; length <= this.longest && start + length <= items.length; length++) {
        key = length === 1 ? items[start]! : `${key} ${items[start + length - 1]!}`;
        const found = this.terms.get(key);
        if (found) groups.push(...found);
        if (found && length > 1 && inPhrase) {
          for (let i = start; i < start + length; i++) inPhrase.set(i, [...(inPhrase.get(i) ?? []), ...found]);
        }
      }
    }
    return groups;
  }
}
