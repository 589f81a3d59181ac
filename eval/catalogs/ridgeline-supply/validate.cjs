// Validates the Ridgeline Supply catalog.json and queries.json: parse, layout, SKU uniqueness, labelled SKUs exist, counts.
const fs = require('fs'), path = require('path');
const errors = [];
const load = f => JSON.parse(fs.readFileSync(path.join(__dirname, f), 'utf8'));
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
if (skus.size < 360) errors.push('fewer than 360 products');
if (qs.queries.length < 100) errors.push('fewer than 100 queries');
if (errors.length) { console.log('ERRORS:\n' + errors.join('\n')); process.exit(1); }
console.log('OK');
