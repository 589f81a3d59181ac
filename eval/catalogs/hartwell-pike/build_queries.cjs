// Converts the hand-labelled src/queries.txt ("kind | query | SKU SKU ...") into queries.json.
const fs = require('fs'), path = require('path');
const lines = fs.readFileSync(path.join(__dirname, 'src', 'queries.txt'), 'utf8').split('\n')
  .map(l => l.trim()).filter(l => l && !l.startsWith('#'));
const queries = lines.map((l, i) => {
  const parts = l.split('|').map(s => s.trim());
  if (parts.length !== 3) throw new Error('bad line: ' + l);
  const [kind, query, rel] = parts;
  return { id: i + 1, query, kind, relevant: rel ? rel.split(/\s+/) : [] };
});
const out = {
  description: 'Hand-written, blind evaluation query set for the fictional "Hartwell & Pike" DIY/home-improvement product feed (catalog.json). ' +
    'Written by an independent outsider from the catalog alone, without seeing the search engine\'s code, word lists or existing query sets. ' +
    'Queries imitate what shoppers type (purpose/job, product kinds incl. synonyms and regional words, measurements/specs, brand/SKU, misspellings, and items the shop does not stock). ' +
    'Binary relevance: "relevant" lists every catalog SKU the writer judged a shopper would accept as an answer, checked against the whole catalog; an empty list means no product fits.',
  catalog: 'catalog.json',
  queries,
};
fs.writeFileSync(path.join(__dirname, 'queries.json'), JSON.stringify(out, null, 1) + '\n');
console.log('wrote', queries.length, 'queries');
