// Converts the hand-written src/*.txt feed (one product per line) into catalog.json (format: ../feed-tools.cjs).
require('../feed-tools.cjs').buildCatalog(__dirname, 'Hartwell & Pike catalog');
