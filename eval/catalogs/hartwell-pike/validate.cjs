// Validates catalog.json and queries.json: parse, layout, SKU uniqueness, labelled SKUs exist, counts.
require('../feed-tools.cjs').validate(__dirname, { minProducts: 320, minQueries: 90 });
