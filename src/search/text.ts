// Text analysis for the local embedding provider: words, numbers with their units ("15 amp", "5 gal",
// "1/2 in."), and dimensions ("2x4", "16 in. x 25 in."), normalized so that a query and a catalog
// description written differently produce the same tokens.

export interface Token {
  /** 'word': a lower-case word; 'measure': number+unit ("15amp"); 'dim': "2x4"; 'code': SKU-like or model codes. */
  readonly kind: 'word' | 'measure' | 'dim' | 'code';
  readonly text: string;
}

const UNITS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^(amps?|a)$/, 'amp'],
  [/^(gal|gals|gallons?)$/, 'gal'],
  [/^(in|inch|inches|")$/, 'in'],
  [/^(ft|foot|feet|')$/, 'ft'],
  [/^(oz|ounces?)$/, 'oz'],
  [/^(lbs?|pounds?)$/, 'lb'],
  [/^(v|volts?)$/, 'v'],
  [/^(w|watts?)$/, 'w'],
  [/^(gauge|ga|awg)$/, 'gauge'],
  [/^(qt|quarts?)$/, 'qt'],
  [/^(mm|millimeters?)$/, 'mm'],
  [/^(cm|centimeters?)$/, 'cm'],
  [/^(yd|yards?)$/, 'yd'],
  [/^(gpm)$/, 'gpm'],
  [/^(gpf)$/, 'gpf'],
  [/^(btu)$/, 'btu'],
  [/^(cfm)$/, 'cfm'],
  [/^(psi)$/, 'psi'],
  [/^(hp|horsepower)$/, 'hp'],
  [/^(ah)$/, 'ah'],
  [/^(lumens?)$/, 'lumen'],
  [/^(cc)$/, 'cc'],
  [/^(mil)$/, 'mil'],
  [/^(pack|pk|count|ct|pieces?|pc)$/, 'pack'],
  [/^(tooth|teeth)$/, 'tooth'],
  [/^(outlets?)$/, 'outlet'],
  [/^(gang)$/, 'gang'],
  [/^(drawers?)$/, 'drawer'],
  [/^(tier)$/, 'tier'],
  [/^(step|steps)$/, 'step'],
  [/^(pole)$/, 'pole'],
];

function unitOf(word: string): string | undefined {
  for (const [pattern, unit] of UNITS) if (pattern.test(word)) return unit;
  return undefined;
}

/** "1-1/4" → 1.25, "3/8" → 0.375, "1,500" → 1500, "2.5" → 2.5. */
export function parseNumber(text: string): number | undefined {
  const t = text.replaceAll(',', '');
  let m = /^(\d+)-(\d+)\/(\d+)$/.exec(t);
  if (m) return Number(m[1]) + Number(m[2]) / Number(m[3]);
  m = /^(\d+)\/(\d+)$/.exec(t);
  if (m) return Number(m[2]) === 0 ? undefined : Number(m[1]) / Number(m[2]);
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  return undefined;
}

function formatNumber(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

const NUMBER = String.raw`\d+(?:-\d+\/\d+|\/\d+|(?:,\d{3})+|\.\d+)?`;
const RAW_TOKEN = new RegExp(String.raw`\d+(?:\.\d+)?x\d+(?:\.\d+)?x${NUMBER}(?![a-z0-9])|\d+(?:\.\d+)?x\d+(?:\.\d+)?(?![a-z0-9])|${NUMBER}(?:[a-z]+)?|[a-z][a-z0-9]*(?:[-'][a-z0-9]+)*|["']`, 'g');

/**
 * Splits text into tokens. Numbers followed by a unit become measures, "A x B" patterns become dimensions,
 * and plain numbers stay as words so full-text and exact codes still match.
 */
export function tokenize(text: string): Token[] {
  const lower = text
    .toLowerCase()
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d\u2033]/g, '"')
    .replace(/(\d)\s*(?:"|''|in\.)/g, '$1 in ');
  const raw = lower.match(RAW_TOKEN) ?? [];
  const tokens: Token[] = [];
  let lastNumber: number | undefined;
  for (let i = 0; i < raw.length; i++) {
    const piece = raw[i]!;
    // 2x4x8, 4x8x1/2: a cross-section and a length (or thickness): the dimension, then the number.
    const tripleDim = new RegExp(`^(\\d+(?:\\.\\d+)?)x(\\d+(?:\\.\\d+)?)x(${NUMBER})$`).exec(piece);
    if (tripleDim) {
      tokens.push({ kind: 'dim', text: `${formatNumber(Number(tripleDim[1]))}x${formatNumber(Number(tripleDim[2]))}` });
      const third = parseNumber(tripleDim[3]!);
      if (third !== undefined) tokens.push({ kind: 'word', text: formatNumber(third) });
      lastNumber = undefined;
      continue;
    }
    // 2x4, 16x25, 4x4: dimensions written compactly.
    const compactDim = /^(\d+(?:\.\d+)?)x(\d+(?:\.\d+)?)$/.exec(piece);
    if (compactDim) {
      tokens.push({ kind: 'dim', text: `${formatNumber(Number(compactDim[1]))}x${formatNumber(Number(compactDim[2]))}` });
      lastNumber = undefined;
      continue;
    }
    // 20v, 1500w, 12mm, 2.0ah: number glued to its unit.
    const glued = new RegExp(`^(${NUMBER})([a-z]+)$`).exec(piece);
    if (glued) {
      const n = parseNumber(glued[1]!);
      const unit = unitOf(glued[2]!);
      if (n !== undefined && unit) {
        tokens.push({ kind: 'measure', text: `${formatNumber(n)}${unit}` });
        lastNumber = n;
        continue;
      }
      tokens.push({ kind: 'code', text: piece });
      lastNumber = undefined;
      continue;
    }
    const n = parseNumber(piece);
    if (n !== undefined) {
      const next = raw[i + 1];
      const unit = next !== undefined ? unitOf(next) : undefined;
      if (unit) {
        tokens.push({ kind: 'measure', text: `${formatNumber(n)}${unit}` });
        i++;
        // "2 in. x 4 in." → also a dimension 2x4.
        if (raw[i + 1] === 'x' && raw[i + 2] !== undefined) {
          const m = parseNumber(raw[i + 2]!);
          if (m !== undefined) tokens.push({ kind: 'dim', text: `${formatNumber(n)}x${formatNumber(m)}` });
        }
      } else if (raw[i + 1] === 'x' && raw[i + 2] !== undefined && parseNumber(raw[i + 2]!) !== undefined) {
        tokens.push({ kind: 'dim', text: `${formatNumber(n)}x${formatNumber(parseNumber(raw[i + 2]!)!)}` });
      } else {
        tokens.push({ kind: 'word', text: formatNumber(n) });
      }
      lastNumber = n;
      continue;
    }
    if (piece === '"' || piece === "'") continue;
    if (/\d/.test(piece)) {
      tokens.push({ kind: 'code', text: piece });
      lastNumber = undefined;
      continue;
    }
    void lastNumber;
    tokens.push({ kind: 'word', text: piece });
  }
  return tokens;
}

/** Function words and catalog boilerplate that say nothing about what a product is. */
export const STOPWORDS = new Set(
  `a an and are as at be but by can do does for from get gets has have how i if in into is it its it's just let lets like
   me my need needs no not of off on one or our out over so some something such than that the their them then there these
   they this those through to too up us use used uses using very want was we what when where which while who will with
   without won't you your yours x s t d more most much many any all each every other another also only own same both few
   ve re ll m lot lots way ways per stuff thing things kind sort type types`
    .split(/\s+/)
    .filter(Boolean),
);

/** The parts of a word token ("tongue-and-groove" → tongue, and, groove; "lineman's" → lineman, s). */
export function wordParts(word: string): string[] {
  return word.split(/[-']/);
}

/** Whether a word part carries meaning: not a stopword and longer than one letter. */
export function isContentPart(part: string): boolean {
  return part.length >= 2 && !STOPWORDS.has(part);
}

/** The distance table, reused: spell-checking a word runs this against the whole catalog vocabulary. */
let table = new Int32Array(32 * 32);

/** Damerau-Levenshtein distance (optimal string alignment) with an early exit above `max`. */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const rows = a.length + 1;
  const cols = b.length + 1;
  if (table.length < rows * cols) table = new Int32Array(rows * cols * 2);
  const d = table;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    const row = i * cols;
    const above = row - cols;
    d[row] = i;
    const ai = a.charCodeAt(i - 1);
    const aPrev = i > 1 ? a.charCodeAt(i - 2) : -1;
    let rowMin = Infinity;
    for (let j = 1; j < cols; j++) {
      const bj = b.charCodeAt(j - 1);
      const cost = ai === bj ? 0 : 1;
      let v = Math.min(d[above + j]! + 1, d[row + j - 1]! + 1, d[above + j - 1]! + cost);
      if (i > 1 && j > 1 && ai === b.charCodeAt(j - 2) && aPrev === bj) v = Math.min(v, d[above - cols + j - 2]! + 1);
      d[row + j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
  }
  return d[a.length * cols + b.length]!;
}
