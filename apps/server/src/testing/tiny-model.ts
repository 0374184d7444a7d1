/**
 * The tiny model tests serve: 2 blocks (dense + memory FFN), random weights. The text it writes
 * is gibberish, but every number comes from the real forward pass, KV cache and memory lookups.
 * The vocabulary size comes from the tokenizer it is saved with (testing/checkpoint.ts).
 */
import type { ModelConfigInput } from '@mnemo/model';

export const tinyConfig: ModelConfigInput = {
  vocabSize: 258,
  dim: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  maxSeqLen: 64,
  ffnHidden: 64,
  ffn: ['dense', 'memory'],
  memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16, queryNorm: 'qknorm', valueLr: 1e-3, valueOptimizer: 'adam' },
  seed: 7,
};
