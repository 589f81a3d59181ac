// Files in the reference system's product_data.json layout, written for tests and the import benchmark: small ones
// spelled out by a test, and full-size ones (~20 MB: 1536- and 512-number vectors) made up from a seed. Written as
// a stream, pretty-printed the way Python's json.dump(indent=2) does (one number a line), so the reader's line
// numbers are exercised too.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export interface RefProduct {
  readonly name: string;
  readonly sku?: string;
  readonly price: number | string;
  readonly description: string;
  readonly stock_level?: number;
  /** Give the product vectors (deterministic from `vectorSeed`, default its position). */
  readonly vectors?: boolean;
  readonly vectorSeed?: number;
  /** Anything else to write (a bad field, an unknown key). */
  readonly extra?: Record<string, unknown>;
}

export interface RefCategory {
  readonly name: string;
  readonly seasonality?: readonly number[];
  readonly types: readonly { readonly name: string; readonly products: readonly RefProduct[] }[];
}

/** A deterministic unit vector: what the file holds for seed `seed`, and what a test's query embedding returns. */
export function referenceVector(seed: number, dimensions: number): number[] {
  let state = (seed * 2654435761 + dimensions) >>> 0 || 1;
  const values: number[] = [];
  let sum = 0;
  for (let i = 0; i < dimensions; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const v = state / 0xffffffff - 0.5;
    values.push(v);
    sum += v * v;
  }
  const norm = Math.sqrt(sum);
  return values.map((v) => v / norm);
}

export interface WriteOptions {
  /** Keys in another order than the reference file's (multipliers last, embeddings before names). */
  readonly shuffledKeys?: boolean;
}

/** Writes `categories` in the reference layout; returns the file's size in bytes. */
export async function writeReferenceCatalog(file: string, categories: readonly RefCategory[], options: WriteOptions = {}): Promise<number> {
  const out = createWriteStream(file);
  let bytes = 0;
  const write = async (text: string) => {
    bytes += Buffer.byteLength(text);
    if (!out.write(text)) await once(out, 'drain');
  };
  const numbers = async (values: readonly number[], indent: string) => {
    // One number a line, as json.dump(indent=2) writes them; written in slices to keep strings small.
    await write('[\n');
    for (let i = 0; i < values.length; i += 256) {
      await write(values.slice(i, i + 256).map((v, j) => `${indent}  ${v}${i + j < values.length - 1 ? ',' : ''}`).join('\n') + '\n');
    }
    await write(`${indent}]`);
  };
  let position = 0;
  await write('{\n  "main_categories": {\n');
  for (const [ci, category] of categories.entries()) {
    await write(`    ${JSON.stringify(category.name)}: {\n`);
    const entries: (() => Promise<void>)[] = [];
    if (category.seasonality) {
      entries.push(async () => {
        await write(`      "washington_seasonal_multipliers": `);
        await numbers(category.seasonality!, '      ');
      });
    }
    for (const type of category.types) {
      entries.push(async () => {
        await write(`      ${JSON.stringify(type.name)}: [\n`);
        for (const [pi, product] of type.products.entries()) {
          const seed = product.vectorSeed ?? position;
          position++;
          const fields: [string, () => Promise<void>][] = [
            ['name', () => write(JSON.stringify(product.name))],
            ...(product.sku !== undefined ? [['sku', () => write(JSON.stringify(product.sku))] as [string, () => Promise<void>]] : []),
            ['price', () => write(JSON.stringify(product.price))],
            ['description', () => write(JSON.stringify(product.description))],
            ...(product.stock_level !== undefined ? [['stock_level', () => write(String(product.stock_level))] as [string, () => Promise<void>]] : []),
            ['image_path', () => write(JSON.stringify(`images/${seed}.png`))],
            ...(product.vectors
              ? ([
                  ['image_embedding', () => numbers(referenceVector(seed + 1_000_000, 512), '          ')],
                  ['description_embedding', () => numbers(referenceVector(seed, 1536), '          ')],
                ] as [string, () => Promise<void>][])
              : []),
            ...Object.entries(product.extra ?? {}).map(([k, v]) => [k, () => write(JSON.stringify(v))] as [string, () => Promise<void>]),
          ];
          if (options.shuffledKeys) fields.reverse();
          await write('        {\n');
          for (const [fi, [key, value]] of fields.entries()) {
            await write(`          ${JSON.stringify(key)}: `);
            await value();
            await write(fi < fields.length - 1 ? ',\n' : '\n');
          }
          await write(pi < type.products.length - 1 ? '        },\n' : '        }\n');
        }
        await write('      ]');
      });
    }
    if (options.shuffledKeys) entries.reverse();
    for (const [ei, entry] of entries.entries()) {
      await entry();
      await write(ei < entries.length - 1 ? ',\n' : '\n');
    }
    await write(ci < categories.length - 1 ? '    },\n' : '    }\n');
  }
  await write('  }\n}\n');
  out.end();
  await once(out, 'finish');
  return bytes;
}

const WORDS = ['Claw', 'Framing', 'Cordless', 'Orbital', 'Galvanized', 'Heavy-Duty', 'Compact', 'Brushless', 'Adjustable', 'Weatherproof'];
const KINDS = ['Hammer', 'Drill', 'Sander', 'Screw Set', 'Paint Roller', 'Hose', 'Shelf', 'Wrench', 'Saw', 'Lamp'];

/**
 * A made-up catalog the size of the reference one: `products` products over 9 categories of 5 types, every one
 * with both vectors and a stock level, every 10th without a SKU.
 */
export function syntheticReferenceCatalog(products: number): RefCategory[] {
  const types = Array.from({ length: 9 }, (_, c) => Array.from({ length: 5 }, (_, t) => ({ name: `TYPE ${c + 1}.${t + 1}`, products: [] as RefProduct[] })));
  const categories: RefCategory[] = types.map((categoryTypes, c) => ({
    name: `CATEGORY ${c + 1}`,
    seasonality: Array.from({ length: 12 }, (_, m) => Number((1 + 0.4 * Math.sin((m + c) / 2)).toFixed(2))),
    types: categoryTypes,
  }));
  for (let i = 0; i < products; i++) {
    types[i % 9]![Math.floor(i / 9) % 5]!.products.push({
      name: `Zava ${WORDS[i % WORDS.length]} ${KINDS[Math.floor(i / 10) % KINDS.length]} ${i + 1}`,
      ...(i % 10 === 9 ? {} : { sku: `REF-${String(i + 1).padStart(5, '0')}` }),
      price: Number((5 + ((i * 37) % 400) + 0.99).toFixed(2)),
      description: `A ${WORDS[i % WORDS.length]!.toLowerCase()} ${KINDS[Math.floor(i / 10) % KINDS.length]!.toLowerCase()} for home and workshop projects, built to last.`,
      stock_level: (i * 13) % 200,
      vectors: true,
    });
  }
  return categories;
}
