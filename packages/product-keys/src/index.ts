/**
 * @mnemo/product-keys: exact multi-head product-key top-k over N = n² keys at O(√N) cost.
 */
export { ProductKeys, type ProductKeysConfig } from './product-keys';
export { type SearchOptions, type SearchResult, checkSearchInputs, productKeySearch } from './search';
export { type KeyInit, type SubkeyShape, explicitKeys, initSubkeys, subkeyInitBound } from './subkeys';
export { QUERY_NORMS, type QueryNorm, normalizeQueries, normalizeSubkeys } from './query-norm';
export { type TopKArrays, bruteForceTopK, bruteForceTopKTf, explicitKeyChunks } from './brute-force';
