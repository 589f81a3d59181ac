// Converts the hand-written src/*.txt feed (one product per line) into catalog.json.
// Format: "# Category | 12 seasonality numbers", "## Type", "SKU | name | price | description".
const fs = require('fs'), path = require('path');
const dir = path.join(__dirname, 'src');
const cats = [];
let cat = null, type = null;
for (const f of fs.readdirSync(dir).filter(f => /^\d+_.*\.txt$/.test(f)).sort()) {
  for (const raw of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('## ')) { type = { name: line.slice(3).trim(), products: [] }; cat.types.push(type); }
    else if (line.startsWith('# ')) {
      const [name, seas] = line.slice(2).split('|').map(s => s.trim());
      cat = { name, seasonality: seas.split(',').map(Number), types: [] }; cats.push(cat);
    } else {
      const parts = line.split(' | ');
      if (parts.length !== 4) throw new Error(`${f}: bad line: ${line}`);
      const [sku, name, price, description] = parts.map(s => s.trim());
      type.products.push({ sku, name, description, price: Number(price) });
    }
  }
}
fs.writeFileSync(path.join(__dirname, 'catalog.json'),
  JSON.stringify({ name: 'Ridgeline Supply Co. catalog', categories: cats }, null, 1) + '\n');
console.log('wrote', cats.length, 'categories');
