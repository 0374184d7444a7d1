/**
 * A tiny real model for tests: a 2-block LanguageModel (dense + memory FFN) over a byte-level
 * codec (ids 0..255 = bytes, 256 = BOS, 257 = EOS). Random weights: the text is gibberish,
 * but every number comes from the real forward pass, KV cache and memory lookups.
 */
import { LanguageModel, type ModelConfigInput, type TextCodec } from '@mnemo/model';
import { ModelEngine } from '../model-engine';

export const byteCodec: TextCodec = {
  bosId: 256,
  eosId: 257,
  encode: (text) => [...new TextEncoder().encode(text)],
  decode: (ids) => new TextDecoder().decode(new Uint8Array(ids.filter((i) => i < 256))),
};

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

export function tinyEngine(id = 'tiny'): ModelEngine {
  return new ModelEngine(new LanguageModel(tinyConfig), byteCodec, id);
}
