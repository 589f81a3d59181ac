// The reference system's own catalog layout (its product_data.json), read as a stream so the ~20 MB of vectors
// never sit in memory at once:
//   {"main_categories": {"<CATEGORY>": {"washington_seasonal_multipliers": [12 numbers],
//     "<PRODUCT TYPE>": [{"name", "sku"?, "price", "description", "stock_level"?, "image_path"?,
//                         "image_embedding"?: [512], "description_embedding"?: [1536]}, …], …}, …}}
// Keys may come in any order; unknown keys are skipped unread (never assembled), as the reference generator skips
// non-list entries of a category. Each product is handed over as soon as its object closes and then dropped.
import { createReadStream } from 'node:fs';
import { jsonParser } from 'stream-json/core/parser.js';
import { DataLoadError } from '../infra/errors.js';

/** Size of the reference vectors: OpenAI text-embedding-3-small. */
export const REFERENCE_EMBEDDING_MODEL = 'text-embedding-3-small';
export const REFERENCE_EMBEDDING_DIMENSIONS = 1536;
const SEASONAL_KEY = 'washington_seasonal_multipliers';

export interface ReferenceProduct {
  /** 0-based position in the file (the order a second read hands out vectors in). */
  readonly index: number;
  readonly category: string;
  readonly type: string;
  readonly name: string;
  readonly sku: string | undefined;
  readonly price: number;
  readonly description: string;
  readonly stockLevel: number | undefined;
  readonly hasEmbedding: boolean;
  /** Where it is, for messages: main_categories › "HAND TOOLS" › "Hammers" › [3]. */
  readonly where: string;
}

export interface ReferenceCategory {
  readonly name: string;
  readonly seasonality: readonly number[] | undefined;
}

export interface ReferenceCatalog {
  readonly categories: readonly ReferenceCategory[];
  readonly products: readonly ReferenceProduct[];
}

export type CatalogFileScan = { readonly layout: 'catalog' } | { readonly layout: 'reference'; readonly catalog: ReferenceCatalog };

type Path = readonly (string | number)[];
type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A frame of the token walk: a container being kept, or a value being skipped or collected as numbers. */
type Frame =
  | { kind: 'object'; path: Path; value: Record<string, Json>; key: string | undefined; lines: Record<string, number> }
  | { kind: 'array'; path: Path; value: Json[]; index: number }
  | { kind: 'skip'; path: Path; depth: number }
  | { kind: 'vector'; path: Path; values: number[]; bad: string | undefined };

/** main_categories › "HAND TOOLS" › "Hammers" › [3] › price */
export function describePath(path: Path): string {
  // Category and product type names are quoted (they are the file's text); keys and positions are not.
  const quoted = (p: string, i: number) => i === 1 || (i === 2 && p !== SEASONAL_KEY);
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : quoted(p, i) ? JSON.stringify(p) : p)).join(' › ');
}

class ScanError extends Error {
  constructor(
    readonly path: Path | undefined,
    message: string,
    /** The line of the key at fault, when known (else: where the reading stopped). */
    readonly line?: number,
  ) {
    super(message);
  }
}

/** Line of each key of an object, as read: errors found when the object closes point at the key at fault. */
type KeyLines = Readonly<Record<string, number>>;

interface WalkHandlers {
  onProduct(product: Record<string, Json>, path: Path, vector: number[] | undefined, badVector: string | undefined, lines: KeyLines): void;
  onCategory(name: string, seasonality: Json | undefined, path: Path, lines: KeyLines): void;
  onDocumentedLayout(): void;
}

/**
 * Walks the file's tokens, keeping only what the layout needs. `granular` feeds the tokenizer one line at a time
 * so an error knows its exact line (a JSON lexeme never spans lines); the fast path feeds whole chunks, and a
 * failure is located by walking again granularly.
 */
async function walk(
  file: string,
  handlers: WalkHandlers,
  granular: boolean,
  line: { at: number },
  /** Awaited after each chunk: a consumer writing what it was handed holds the reading back (bounded memory). */
  afterChunk?: () => Promise<void>,
): Promise<void> {
  const tokenize = jsonParser({ packValues: true, streamValues: false });
  const stack: Frame[] = [];
  let rootDone = false;

  const childPath = (): Path => {
    const top = stack[stack.length - 1];
    if (!top) return [];
    if (top.kind === 'object') return [...top.path, top.key ?? ''];
    if (top.kind === 'array') return [...top.path, top.index];
    return top.path;
  };
  /** What to do with a container starting at `path`: keep it, collect its numbers, or skip it. */
  const modeFor = (path: Path, isArray: boolean): 'keep' | 'vector' | 'skip' => {
    if (path.length === 0) return isArray ? 'skip' : 'keep';
    if (path[0] !== 'main_categories') return 'skip';
    switch (path.length) {
      case 1:
      case 2:
        return isArray ? 'skip' : 'keep'; // main_categories, a category
      case 3:
        return isArray ? 'keep' : 'skip'; // a product type's list, or the seasonal multipliers
      case 4:
        if (path[2] === SEASONAL_KEY) return 'skip'; // not a number: the multipliers check refuses the list
        if (isArray) throw new ScanError(path, 'must be a product object');
        return 'keep'; // a product
      case 5:
        return isArray && path[4] === 'description_embedding' ? 'vector' : 'skip';
      default:
        return 'skip';
    }
  };
  const wanted = (path: Path): boolean => {
    // Scalars kept: products' fields and the seasonal multipliers; everything else is read past.
    if (path.length === 5) return ['name', 'sku', 'price', 'description', 'stock_level', 'image_path', 'description_embedding', 'image_embedding'].includes(String(path[4]));
    if (path.length === 4) return path[2] === SEASONAL_KEY;
    return path.length <= 3;
  };
  const attach = (value: Json, path: Path): void => {
    const top = stack[stack.length - 1];
    if (!top) {
      rootDone = true;
      return;
    }
    if (top.kind === 'object') {
      if (top.key !== undefined && wanted(path)) top.value[top.key] = value;
      top.key = undefined;
    } else if (top.kind === 'array') {
      top.index++;
      if (wanted(path)) top.value.push(value);
    }
  };
  const closed = (frame: Frame): void => {
    const path = frame.path;
    if (frame.kind === 'vector') {
      const owner = stack[stack.length - 1];
      if (owner?.kind === 'object') {
        owner.value.description_embedding = frame.values.length;
        vectorStore.set(owner, { values: frame.values, bad: frame.bad });
        owner.key = undefined;
      }
      return;
    }
    if (frame.kind === 'skip') {
      const owner = stack[stack.length - 1];
      if (!owner) throw new ScanError([], 'must be a JSON object');
      if (path.length === 2 && path[0] === 'main_categories') throw new ScanError(path, 'a category must be an object of product types');
      if (owner.kind === 'object') {
        if (owner.key === 'main_categories' && path.length === 1) throw new ScanError(path, 'must be an object of categories');
        if (path.length === 5 && owner.key !== undefined && ['name', 'sku', 'price', 'description', 'stock_level', 'description_embedding'].includes(owner.key)) {
          throw new ScanError(path, owner.key === 'description_embedding' ? 'must be a list of numbers' : `must be a ${owner.key === 'price' || owner.key === 'stock_level' ? 'number' : 'string'}, not a list or object`);
        }
        owner.key = undefined;
      } else if (owner.kind === 'array') {
        owner.index++;
      }
      return;
    }
    if (frame.kind === 'object' && path.length === 4 && path[0] === 'main_categories') {
      const vector = vectorStore.get(frame);
      handlers.onProduct(frame.value, path, vector?.values, vector?.bad, frame.lines);
      const owner = stack[stack.length - 1];
      if (owner?.kind === 'array') owner.index++; // the product itself is not kept
      return;
    }
    if (frame.kind === 'object' && path.length === 2 && path[0] === 'main_categories') {
      handlers.onCategory(String(path[1]), frame.value[SEASONAL_KEY], path, frame.lines);
    }
    if (frame.kind === 'object' && path.length === 0 && frame.value.main_categories === undefined) {
      if ('categories' in seenRootKeys) handlers.onDocumentedLayout();
      else throw new ScanError([], 'neither the documented catalog layout ("categories") nor the reference layout ("main_categories")');
    }
    attach(frame.kind === 'object' ? frame.value : frame.value, path);
  };
  const vectorStore = new WeakMap<Frame, { values: number[]; bad: string | undefined }>();
  const seenRootKeys: Record<string, true> = {};

  const token = (t: { name: string; value?: unknown }): void => {
    if (rootDone) return;
    const top = stack[stack.length - 1];
    if (top?.kind === 'skip') {
      if (t.name === 'startObject' || t.name === 'startArray') top.depth++;
      else if (t.name === 'endObject' || t.name === 'endArray') {
        if (--top.depth === 0) closed(stack.pop()!);
      }
      return;
    }
    if (top?.kind === 'vector') {
      if (t.name === 'numberValue') {
        const n = Number(t.value);
        if (Number.isFinite(n)) top.values.push(n);
        else top.bad ??= `holds ${String(t.value)}`;
      } else if (t.name === 'endArray') closed(stack.pop()!);
      else if (t.name === 'startObject' || t.name === 'startArray') {
        top.bad ??= 'holds a list or object';
        stack.push({ kind: 'skip', path: top.path, depth: 1 });
      } else top.bad ??= `holds a ${t.name.replace('Value', '')}`;
      return;
    }
    switch (t.name) {
      case 'keyValue':
        if (top?.kind === 'object') {
          top.key = String(t.value);
          top.lines[top.key] = line.at;
          if (stack.length === 1) seenRootKeys[top.key] = true;
        }
        return;
      case 'startObject':
      case 'startArray': {
        const path = childPath();
        const isArray = t.name === 'startArray';
        const mode = modeFor(path, isArray);
        if (mode === 'vector') {
          stack.push({ kind: 'vector', path, values: [], bad: undefined });
        } else if (mode === 'skip') stack.push({ kind: 'skip', path, depth: 1 });
        else if (isArray) stack.push({ kind: 'array', path, value: [], index: 0 });
        else stack.push({ kind: 'object', path, value: {}, key: undefined, lines: {} });
        return;
      }
      case 'endObject':
      case 'endArray':
        closed(stack.pop()!);
        return;
      case 'stringValue':
      case 'numberValue':
      case 'nullValue':
      case 'trueValue':
      case 'falseValue': {
        const path = childPath();
        if (path.length === 0) throw new ScanError([], 'must be a JSON object');
        if (path[0] === 'main_categories') {
          if (path.length === 2) throw new ScanError(path, 'a category must be an object of product types');
          if (path.length === 4 && path[2] !== SEASONAL_KEY) throw new ScanError(path, 'must be a product object');
        }
        const value = t.name === 'numberValue' ? Number(t.value) : t.name === 'stringValue' ? String(t.value) : t.name === 'nullValue' ? null : t.name === 'trueValue';
        attach(value, path);
        return;
      }
    }
  };
  const feed = (text: string): void => {
    const out = tokenize(text) as unknown;
    const values = (out as { values?: unknown[] } | undefined)?.values;
    if (Array.isArray(values)) for (const t of values) token(t as { name: string; value?: unknown });
  };

  let first = true;
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
    let text = chunk as string;
    if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark is not JSON
    first = false;
    try {
      if (!granular) {
        feed(text);
        line.at += countLines(text);
      } else {
        let start = 0;
        for (let nl = text.indexOf('\n'); ; nl = text.indexOf('\n', start)) {
          feed(nl < 0 ? text.slice(start) : text.slice(start, nl + 1));
          if (nl < 0) break;
          line.at++;
          start = nl + 1;
        }
      }
    } catch (error) {
      if (error instanceof ScanError || error instanceof DataLoadError) throw error;
      throw new ScanError(undefined, `not valid JSON: ${(error as Error).message.replace(/^Parser /, 'the parser ')}`);
    }
    if (afterChunk) await afterChunk();
  }
  if (!rootDone) throw new ScanError(undefined, 'not valid JSON: the file ends before its last value is complete');
}

/**
 * A copy of a string that shares no memory with the chunk it was cut from: V8 keeps a substring as a view of its
 * parent, so a product name kept from each 64 KB chunk would keep every chunk (the whole file) alive.
 */
function own(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

const MAX_NAME = 200;
const MAX_SKU = 64;
const MAX_DESCRIPTION = 2000;
const MAX_TYPE_NAME = 100;

/** Checks one product of the reference layout; returns it in the importer's terms. */
function checkProduct(
  raw: Record<string, Json>,
  path: Path,
  index: number,
  vectorLength: number | undefined,
  badVector: string | undefined,
  lines: KeyLines,
): ReferenceProduct {
  const fail = (field: string, message: string): never => {
    throw new ScanError([...path, field], message, lines[field]);
  };
  const text = (field: string, max: number, required: boolean): string | undefined => {
    const value = raw[field];
    if (value === undefined || value === null || (value === '' && !required)) {
      if (required) fail(field, 'is missing');
      return undefined;
    }
    if (typeof value !== 'string') return fail(field, `must be text (got ${JSON.stringify(value)})`);
    const trimmed = value.trim();
    if (trimmed.length === 0) return required ? fail(field, 'is empty') : undefined;
    if (trimmed.length > max) fail(field, `is longer than ${max} characters`);
    return trimmed;
  };
  const name = text('name', MAX_NAME, true)!;
  const sku = text('sku', MAX_SKU, false);
  const description = text('description', MAX_DESCRIPTION, true)!;
  const price = raw.price;
  if (typeof price !== 'number' || !(price > 0) || price > 1_000_000) {
    fail('price', `must be a number above 0 and at most 1000000 (got ${JSON.stringify(price ?? null)})`);
  }
  const stock = raw.stock_level;
  if (stock !== undefined && stock !== null && (typeof stock !== 'number' || !Number.isInteger(stock) || stock < 0 || stock > 2_147_483_647)) {
    fail('stock_level', `must be a whole number of 0 or more (got ${JSON.stringify(stock)})`);
  }
  if (badVector) fail('description_embedding', `must be a list of ${REFERENCE_EMBEDDING_DIMENSIONS} numbers: it ${badVector}`);
  if (vectorLength !== undefined && vectorLength !== REFERENCE_EMBEDDING_DIMENSIONS) {
    fail('description_embedding', `must hold ${REFERENCE_EMBEDDING_DIMENSIONS} numbers (${REFERENCE_EMBEDDING_MODEL}), not ${vectorLength}`);
  }
  const type = String(path[2]);
  if (type.trim().length === 0 || type.length > MAX_TYPE_NAME) throw new ScanError(path.slice(0, 3), `a product type name must have 1 to ${MAX_TYPE_NAME} characters`);
  return {
    index,
    category: own(String(path[1]).trim()),
    type: own(type.trim()),
    name: own(name),
    sku: sku === undefined ? undefined : own(sku),
    price: price as number,
    description: own(description),
    stockLevel: typeof stock === 'number' ? stock : undefined,
    hasEmbedding: vectorLength !== undefined,
    where: own(describePath(path)),
  };
}

function checkSeasonality(value: Json | undefined, path: Path, lines: KeyLines): readonly number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length !== 12 || value.some((v) => typeof v !== 'number' || !(v >= 0) || v > 100)) {
    throw new ScanError([...path, SEASONAL_KEY], 'must be a list of 12 monthly multipliers (numbers from 0 to 100), January first', lines[SEASONAL_KEY]);
  }
  return value as number[];
}

async function located<T>(source: string, run: (granular: boolean, line: { at: number }) => Promise<T>): Promise<T> {
  const line = { at: 1 };
  try {
    return await run(false, line);
  } catch (error) {
    if (!(error instanceof ScanError)) throw error;
    // Walk again a line at a time, only to say where (the same check fails at the same place).
    const exact = { at: 1 };
    try {
      await run(true, exact);
    } catch (again) {
      if (again instanceof ScanError) throw placed(source, again.line ?? exact.at, again);
      throw again;
    }
    throw placed(source, line.at, error);
  }
}

function placed(source: string, line: number, error: ScanError): DataLoadError {
  const where = error.path && error.path.length > 0 ? `${describePath(error.path)}: ` : '';
  return new DataLoadError(`${source}:${line}: ${where}${error.message}`);
}

/**
 * Reads a catalog file's layout and, for the reference layout, every product except its vectors (checked, not
 * kept). Refuses the file with its line and the place in it at fault. The documented layout is left to
 * parseCatalogFile.
 */
export async function scanCatalogFile(file: string, source: string): Promise<CatalogFileScan> {
  return located(source, async (granular, line) => {
    let documented = false;
    const categories: ReferenceCategory[] = [];
    const products: ReferenceProduct[] = [];
    const skus = new Map<string, string>();
    await walk(
      file,
      {
        onDocumentedLayout: () => {
          documented = true;
        },
        onCategory: (name, seasonality, path, lines) => {
          if (name.trim().length === 0 || name.length > MAX_TYPE_NAME) throw new ScanError(path, `a category name must have 1 to ${MAX_TYPE_NAME} characters`);
          categories.push({ name: own(name.trim()), seasonality: checkSeasonality(seasonality, path, lines) });
        },
        onProduct: (raw, path, vector, bad, lines) => {
          const product = checkProduct(raw, path, products.length, vector?.length, bad, lines);
          if (product.sku !== undefined) {
            const first = skus.get(product.sku);
            if (first) throw new ScanError([...path, 'sku'], `duplicate SKU ${product.sku} (also at ${first})`, lines.sku);
            skus.set(product.sku, product.where); // both owned copies (see own)
          }
          products.push(product);
        },
      },
      granular,
      line,
    );
    if (documented) return { layout: 'catalog' } as const;
    if (products.length === 0) throw new ScanError(['main_categories'], 'holds no products');
    return { layout: 'reference', catalog: { categories, products } } as const;
  });
}

/**
 * Second read of a reference file already scanned: hands out each product's description embedding (file order,
 * with the product's index), `batchSize` at a time, so a caller can write them and let them go.
 */
export async function readReferenceEmbeddings(
  file: string,
  source: string,
  batchSize: number,
  onBatch: (batch: { index: number; vector: Float32Array }[]) => Promise<void>,
): Promise<void> {
  let batch: { index: number; vector: Float32Array }[] = [];
  let index = 0;
  const flush = async (least: number): Promise<void> => {
    if (batch.length < least || batch.length === 0) return;
    const full = batch;
    batch = [];
    await onBatch(full);
  };
  await located(source, (granular, line) => {
    batch = [];
    index = 0;
    return walk(
      file,
      {
        onDocumentedLayout: () => {
          throw new ScanError([], 'changed while it was being imported');
        },
        onCategory: () => undefined,
        onProduct: (_raw, _path, vector) => {
          if (vector) batch.push({ index, vector: Float32Array.from(vector) });
          index++;
        },
      },
      granular,
      line,
      () => flush(batchSize),
    );
  });
  await flush(1);
}
