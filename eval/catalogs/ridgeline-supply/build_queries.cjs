// Converts the hand-labelled src/queries.txt ("kind | query | SKU SKU ...") into queries.json.
require('../feed-tools.cjs').buildQueries(__dirname,
  'Hand-written, blind evaluation query set for the fictional US home-improvement retailer "Ridgeline Supply Co." (catalog.json). ' +
    'Both the catalog and the queries were written by an outsider from general knowledge only, without seeing the search engine\'s code, word lists, other catalogs or existing query sets. ' +
    'Queries imitate what American shoppers type (purpose/job, product kinds incl. synonyms and trade/slang names, measurements/specs, brand/SKU, misspellings, and items the store does not stock). ' +
    'Binary relevance: "relevant" lists every catalog SKU the writer judged a shopper would accept as an answer, checked against the whole catalog; accessories of the thing asked for do not count; ' +
    'for job queries the products that do the job count, not generic tools that merely could help; an empty list means no product fits.');
