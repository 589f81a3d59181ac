// The hand-written evaluation feeds' tools, one copy for every catalog in this directory: each catalog's
// build_catalog.cjs, build_queries.cjs and validate.cjs call these with its own name, description and minimums.
// Feed format (src/<n>_*.txt): "# Category | 12 seasonality numbers", "## Type", "SKU | name | price | description".
// Queries (src/queries.txt): "kind | query | SKU SKU ..." (empty: nothing fits), lines starting with # ignored.
const fs = require('fs'), path = require('path');

/** src/*.txt of `dir` -> dir/catalog.json named `name`. */
function buildCatalog(dir, name) {
  const src = path.join(dir, 'src');
  const cats = [];
  let cat = null, type = null;
  for (const f of fs.readdirSync(src).filter(f => /^\d+_.*\.txt$/.test(f)).sort()) {
    for (const raw of fs.readFileSync(path.join(src, f), 'utf8').split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      if (line.startsWith('## ')) { type = { name: line.slice(3).trim(), products: [] }; cat.types.push(type); }
      else if (line.startsWith('# ')) {
        const [catName, seas] = line.slice(2).split('|').map(s => s.trim());
        cat = { name: catName, seasonality: seas.split(',').map(Number), types: [] }; cats.push(cat);
      } else {
        const parts = line.split(' | ');
        if (parts.length !== 4) throw new Error(`${f}: bad line: ${line}`);
        const [sku, productName, price, description] = parts.map(s => s.trim());
        type.products.push({ sku, name: productName, description, price: Number(price) });
      }
    }
  }
  fs.writeFileSync(path.join(dir, 'catalog.json'), JSON.stringify({ name, categories: cats }, null, 1) + '\n');
  console.log('wrote', cats.length, 'categories');
}

/** src/queries.txt of `dir` -> dir/queries.json with `description`. */
function buildQueries(dir, description) {
  const lines = fs.readFileSync(path.join(dir, 'src', 'queries.txt'), 'utf8').split('\n')
    .map(l => l.trim()).filter(l => l && !l.startsWith('#'));
  const queries = lines.map((l, i) => {
    const parts = l.split('|').map(s => s.trim());
    if (parts.length !== 3) throw new Error('bad line: ' + l);
    const [kind, query, rel] = parts;
    return { id: i + 1, query, kind, relevant: rel ? rel.split(/\s+/) : [] };
  });
  fs.writeFileSync(path.join(dir, 'queries.json'), JSON.stringify({ description, catalog: 'catalog.json', queries }, null, 1) + '\n');
  console.log('wrote', queries.length, 'queries');
}

/**
 * Checks dir/catalog.json and dir/queries.json: layout, SKU uniqueness, labelled SKUs exist, the seeds' four example
 * queries present, at least the given numbers of products and queries; prints counts; exits 1 on any error.
 */
function validate(dir, { minProducts, minQueries }) {
  const errors = [];
  const load = f => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  const cat = load('catalog.json'), qs = load('queries.json');

  const skus = new Map(); const names = new Map(); let nTypes = 0;
  if (typeof cat.name !== 'string') errors.push('catalog.name missing');
  for (const c of cat.categories) {
    if (!Array.isArray(c.seasonality) || c.seasonality.length !== 12 || c.seasonality.some(x => typeof x !== 'number' || x <= 0))
      errors.push(`bad seasonality in ${c.name}`);
    if (!c.types.length) errors.push(`no types in ${c.name}`);
    for (const t of c.types) {
      nTypes++;
      if (!t.products.length) errors.push(`no products in ${c.name}/${t.name}`);
      for (const p of t.products) {
        for (const k of ['sku', 'name', 'description']) if (typeof p[k] !== 'string' || !p[k]) errors.push(`${p.sku}: bad ${k}`);
        if (typeof p.price !== 'number' || !(p.price > 0)) errors.push(`${p.sku}: bad price`);
        const keys = Object.keys(p).sort().join(','); if (keys !== 'description,name,price,sku') errors.push(`${p.sku}: keys ${keys}`);
        if (skus.has(p.sku)) errors.push(`duplicate SKU ${p.sku}`);
        skus.set(p.sku, `${c.name} / ${t.name}`);
        names.set(p.name, (names.get(p.name) || []).concat(p.sku));
      }
    }
  }
  const ids = new Set(); const kinds = {}; const relCounts = [];
  const kindsAllowed = new Set(['purpose', 'product', 'measurement', 'brand', 'misspelling', 'none']);
  const texts = new Set();
  for (const q of qs.queries) {
    if (ids.has(q.id)) errors.push(`duplicate query id ${q.id}`); ids.add(q.id);
    if (texts.has(q.query.toLowerCase())) errors.push(`duplicate query text ${q.query}`); texts.add(q.query.toLowerCase());
    if (!kindsAllowed.has(q.kind)) errors.push(`query ${q.id}: bad kind ${q.kind}`);
    kinds[q.kind] = (kinds[q.kind] || 0) + 1;
    if (new Set(q.relevant).size !== q.relevant.length) errors.push(`query ${q.id}: repeated SKU`);
    for (const s of q.relevant) if (!skus.has(s)) errors.push(`query ${q.id} "${q.query}": unknown SKU ${s}`);
    if ((q.kind === 'none') !== (q.relevant.length === 0)) errors.push(`query ${q.id}: kind/none mismatch`);
    relCounts.push(q.relevant.length);
  }
  for (const req of ['containers for paint', 'tools for building a deck', 'something to fix a leaky faucet', 'paint for a bathroom ceiling'])
    if (!texts.has(req)) errors.push(`missing required query: ${req}`);

  const dupNames = [...names].filter(([, v]) => v.length > 1);
  console.log(`catalog: "${cat.name}" - ${cat.categories.length} categories, ${nTypes} types, ${skus.size} products`);
  for (const c of cat.categories) console.log(`  ${c.name}: ${c.types.length} types, ${c.types.reduce((a, t) => a + t.products.length, 0)} products`);
  console.log(`shared product names (distinct SKUs): ${dupNames.map(([n, v]) => `${n} [${v.join(', ')}]`).join('; ')}`);
  console.log(`queries: ${qs.queries.length}; by kind: ${JSON.stringify(kinds)}`);
  const hist = {}; for (const n of relCounts) { const b = n === 0 ? '0' : n <= 8 ? '1-8' : '9+'; hist[b] = (hist[b] || 0) + 1; }
  console.log(`relevant-list sizes: ${JSON.stringify(hist)}; total labels ${relCounts.reduce((a, b) => a + b, 0)}; distinct labelled SKUs ${new Set(qs.queries.flatMap(q => q.relevant)).size}`);
  if (cat.categories.length < 8) errors.push('fewer than 8 categories');
  if (skus.size < minProducts) errors.push(`fewer than ${minProducts} products`);
  if (qs.queries.length < minQueries) errors.push(`fewer than ${minQueries} queries`);
  if (errors.length) { console.log('ERRORS:\n' + errors.join('\n')); process.exit(1); }
  console.log('OK');
}

module.exports = { buildCatalog, buildQueries, validate };
