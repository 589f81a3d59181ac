// Converts the hand-labelled src/queries.txt ("kind | query | SKU SKU ...") into queries.json.
require('../feed-tools.cjs').buildQueries(__dirname,
  'Hand-written, blind evaluation query set for the fictional "Hartwell & Pike" DIY/home-improvement product feed (catalog.json). ' +
    'Written by an independent outsider from the catalog alone, without seeing the search engine\'s code, word lists or existing query sets. ' +
    'Queries imitate what shoppers type (purpose/job, product kinds incl. synonyms and regional words, measurements/specs, brand/SKU, misspellings, and items the shop does not stock). ' +
    'Binary relevance: "relevant" lists every catalog SKU the writer judged a shopper would accept as an answer, checked against the whole catalog; an empty list means no product fits.');
