/**
 * ModelEngine: the Engine over @mnemo/model — a LanguageModel with its KV caches and a
 * BpeTokenizer, loaded from a trainer checkpoint. Sampling and the RNG are the library's own
 * (sampleToken, mulberry32), so a seed here means what it means in `generate`.
 */
import path from 'node:path';
import { CheckpointError } from '@mnemo/kernels';
import * as mnemoModel from '@mnemo/model';
import { type KVCache, type LanguageModel, type TextCodec, modelCounts, mulberry32, sampleToken } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import type { Engine, EngineCache, EngineInfo, MemoryReads, SamplingParams } from './engine';

export class ModelEngine implements Engine {
  readonly info: EngineInfo;
  readonly eosId: number;
  readonly bosId: number;

  constructor(
    readonly model: LanguageModel,
    /** a BpeTokenizer (or any codec with the same ids) */
    readonly tokenizer: TextCodec,
    id: string,
  ) {
    const cfg = model.config;
    const counts = modelCounts(cfg);
    this.eosId = tokenizer.eosId;
    this.bosId = tokenizer.bosId;
    this.info = {
      id,
      vocabSize: cfg.vocabSize,
      maxSeqLen: cfg.maxSeqLen,
      memoryBlocks: model.memoryBlocks(),
      denseParams: counts.denseParams,
      memoryParams: counts.memoryParams,
      flopsPerToken: counts.flopsPerToken,
    };
  }

  /**
   * Load a checkpoint folder (saveCheckpoint's layout: config.json, model.safetensors, memory/,
   * tokenizer.json); the model id defaults to the folder name. `codecFromJSON` rebuilds the
   * tokenizer from tokenizer.json (default: BpeTokenizer.fromJSON).
   */
  static load(dir: string, opts: { id?: string; codecFromJSON?: (json: unknown) => TextCodec } = {}): ModelEngine {
    const fromJSON = opts.codecFromJSON ?? bpeFromJSON();
    if (!fromJSON) {
      throw new CheckpointError(dir, '@mnemo/model exports no BpeTokenizer: cannot read tokenizer.json (build @mnemo/model with its tokenizer).');
    }
    const { model, tokenizer, extraTensors } = mnemoModel.loadCheckpointWith(dir, fromJSON);
    // optimizer state and other training tensors are not needed to serve
    for (const t of Object.values(extraTensors)) t.dispose();
    return new ModelEngine(model, tokenizer, opts.id ?? path.basename(path.resolve(dir)));
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text);
  }

  decode(ids: number[]): string {
    return this.tokenizer.decode(ids);
  }

  newCache(): EngineCache {
    return this.model.newCache();
  }

  prefill(tokens: number[], cache: EngineCache): Float32Array {
    return this.model.prefill(tokens, cache as KVCache);
  }

  decodeBatch(tokens: number[], caches: EngineCache[]): Float32Array[] {
    return this.model.decodeBatch(tokens, caches as KVCache[]);
  }

  sample(logits: Float32Array, params: SamplingParams, rng: () => number): number {
    return sampleToken(logits, params, rng);
  }

  rng(seed: number): () => number {
    return mulberry32(seed);
  }

  lookup(tokens: number[]): MemoryReads[] {
    return this.model.inspectMemory(tokens).map((r) => ({
      block: r.block,
      heads: r.heads,
      topK: r.topK,
      ids: r.ids,
      weights: r.weights,
    }));
  }

  numTensors(): number {
    return tf.memory().numTensors;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/**
 * BpeTokenizer.fromJSON, looked up at run time: the tokenizer is written separately from the
 * rest of @mnemo/model, and a static named import of a missing export would break module loading.
 */
function bpeFromJSON(): ((json: unknown) => TextCodec) | undefined {
  const Bpe = (mnemoModel as unknown as { BpeTokenizer?: { fromJSON(json: unknown): TextCodec } }).BpeTokenizer;
  return Bpe ? (json) => Bpe.fromJSON(json) : undefined;
}
