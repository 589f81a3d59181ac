// Semantic product search: embedding providers, storage and rebuilds, hybrid ranking.
export { type EmbeddingProvider, type ProductDocument, type ProviderKind, EmbeddingError, EmbeddingModelMismatchError, documentText } from './provider.js';
export { LocalEmbeddingProvider, LOCAL_DEFAULT_DIMENSIONS } from './local.js';
export { OpenAIProvider, AzureOpenAIProvider, OllamaProvider } from './remote.js';
export { embeddingSettings, createEmbeddingProvider, type EmbeddingSettings } from './settings.js';
export { rebuildEmbeddings, ensureEmbeddings, storedModels, loadCorpus, type RebuildOptions, type RebuildReport } from './store.js';
export { searchProducts, SearchInputError, SEARCH_DEFAULTS, type SearchParams, type ProductSearchResult, type ProductSearchResponse } from './search.js';
export { ensureSearchFunctions, type SearchFunctionReport } from './functions.js';
