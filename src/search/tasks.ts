// Recognises the jobs and problems of the DIY task lexicon in a request ("stripping old paint off a door" →
// strip paint) and names the kinds of products that do them, so the local model can add them to the query.
// A task phrase matches when every one of its words occurs in the request in some form (WordNet base forms:
// "stripping" → strip, "keeps" → keep), in any order and with other words between.
import type { DiyTask } from './diy-tasks.js';
import { isContentPart, tokenize, wordParts } from './text.js';

/** Every form of a word that should count as the same word: itself and its base forms. */
export type WordForms = (word: string) => readonly string[];

function contentWords(text: string): string[] {
  const words: string[] = [];
  for (const token of tokenize(text)) {
    if (token.kind !== 'word') continue;
    for (const part of wordParts(token.text)) if (isContentPart(part)) words.push(part);
  }
  return words;
}

export class TaskLexicon {
  /** Per task: its phrases, each a list of words given as their sets of forms. */
  private readonly tasks: { phrases: (readonly string[])[][]; products: readonly string[] }[];

  constructor(
    tasks: readonly DiyTask[],
    private readonly forms: WordForms,
  ) {
    this.tasks = tasks.map((task) => ({
      phrases: task.task.map((phrase) => contentWords(phrase).map((word) => forms(word))).filter((words) => words.length > 0),
      products: task.products,
    }));
  }

  /** The product kinds of every task the request names (each task once, in lexicon order). */
  productsFor(request: string): string[][] {
    return this.tasksFor(request).map((task) => task.products);
  }

  /**
   * Every task the request names (each once, in lexicon order), with how many of the request's words its named
   * phrases account for: "heat a cold garage workshop" names heating a garage (heat, cold, garage, workshop: 4)
   * and powering a workshop (garage, workshop: 2).
   */
  tasksFor(request: string): { products: string[]; words: number }[] {
    const requestForms = contentWords(request).map((word) => this.forms(word));
    const present = new Set<string>(requestForms.flat());
    const found: { products: string[]; words: number }[] = [];
    for (const task of this.tasks) {
      const named = task.phrases.filter((words) => words.every((wordForms) => wordForms.some((form) => present.has(form))));
      if (named.length === 0) continue;
      const phraseForms = new Set(named.flat(2));
      const words = requestForms.filter((forms) => forms.some((form) => phraseForms.has(form))).length;
      found.push({ products: [...task.products], words });
    }
    return found;
  }
}
