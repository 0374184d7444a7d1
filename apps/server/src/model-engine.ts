/**
 * ModelEngine: the Engine over @mnemo/model — a LanguageModel with its KV caches and a
 * BpeTokenizer, loaded from a trainer checkpoint. Sampling and the RNG are the library's own
 * (sampleToken, mulberry32), so a seed here means what it means in `generate`.
 */
import path from 'node:path';
import { CheckpointError, mulberry32 } from '@mnemo/core';
import {
  type CheckpointLoadOptions,
  type KVCache,
  type LanguageModel,
  type TextCodec,
  loadCheckpoint,
  loadCheckpointWith,
  modelCounts,
  sampleToken,
  type ChatTemplate,
  type SerializableTokenizer,
  DEFAULT_CHAT_TEMPLATE,
  parseChatTemplate,
} from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import type { Engine, EngineCache, EngineInfo, MemoryReads, SamplingParams } from './engine';
import { ModelTeacher } from './model-teacher';

export class ModelEngine implements Engine {
  readonly info: EngineInfo;
  readonly eosId: number;
  readonly bosId: number;
  /** 'default': the checkpoint stores no chat template (trained before they were stored) */
  readonly chatTemplateSource: 'checkpoint' | 'default';
  readonly chatTemplate: ChatTemplate;
  /** sparse memory finetuning (a local memory pool loaded from a checkpoint folder) */
  teacher?: ModelTeacher;

  constructor(
    readonly model: LanguageModel,
    /** a BpeTokenizer (or any codec with the same ids) */
    readonly tokenizer: TextCodec,
    id: string,
    chatTemplate: ChatTemplate | null = null,
  ) {
    this.chatTemplateSource = chatTemplate ? 'checkpoint' : 'default';
    this.chatTemplate = chatTemplate ?? DEFAULT_CHAT_TEMPLATE;
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
   * tokenizer.json) with `loadCheckpoint`, which verifies checksums, names and shapes and throws
   * CheckpointError naming the bad file. The model id defaults to the folder name.
   * `codecFromJSON` reads a tokenizer.json other than a BpeTokenizer's. The chat template is
   * config.json's `extra.chat_template` (mnemo-train writes it); without one the default.
   */
  static load(
    dir: string,
    opts: {
      id?: string;
      codecFromJSON?: (json: unknown) => TextCodec;
      openPool?: CheckpointLoadOptions['openPool'];
      /** false: no POST /v1/memory/teach (and the training tensors are freed) */
      teach?: boolean;
    } = {},
  ): ModelEngine {
    const load = { openPool: opts.openPool }; // openPool: the pool held elsewhere (sharded-engine.ts)
    const { model, tokenizer, extra, extraTensors } = opts.codecFromJSON
      ? loadCheckpointWith(dir, opts.codecFromJSON, load)
      : loadCheckpoint(dir, load);
    // optimizer state and other training tensors are not needed to serve, except to save the
    // checkpoint again after POST /v1/memory/teach (the training state must survive that save)
    const savable = typeof (tokenizer as Partial<SerializableTokenizer>).toJSON === 'function';
    const teachable = opts.teach !== false && !opts.openPool && savable && ModelTeacher.canTeach(model);
    if (!teachable) for (const t of Object.values(extraTensors)) t.dispose();
    let template: ChatTemplate | null = null;
    if (extra.chat_template != null) {
      try {
        template = parseChatTemplate(extra.chat_template);
      } catch (e) {
        model.dispose();
        throw new CheckpointError(
          path.join(dir, 'config.json'),
          `extra.${(e as Error).message}; fix or remove it (the default is used without one)`,
        );
      }
    }
    const engine = new ModelEngine(model, tokenizer, opts.id ?? path.basename(path.resolve(dir)), template);
    if (teachable) {
      const background = ModelTeacher.background(dir, model, (m) => console.warn(`[mnemo-server] ${m}`));
      engine.teacher = new ModelTeacher({
        model,
        tokenizer: tokenizer as unknown as SerializableTokenizer,
        dir,
        extra,
        extraTensors,
        background,
      });
    }
    return engine;
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text);
  }

  encodeUpTo(text: string, maxTokens: number): number[] | null {
    const t = this.tokenizer as TextCodec & { encodeUpTo?: (text: string, max: number) => number[] | null };
    if (t.encodeUpTo) return t.encodeUpTo(text, maxTokens);
    // a codec without a bounded encoder: assume no token covers more than 16 UTF-16 units,
    // refuse longer texts before encoding, then check the count
    if (text.length > maxTokens * 16) return null;
    const ids = t.encode(text);
    return ids.length > maxTokens ? null : ids;
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
      heads: r.heads * r.bags, // UltraMem's G bags per token show as G·H heads: ids stay [T, G·H, k]
      topK: r.topK,
      ids: r.ids,
      weights: r.weights,
    }));
  }

  numTensors(): number {
    return tf.memory().numTensors;
  }

  dispose(): void {
    this.teacher?.dispose();
    this.model.dispose();
  }
}
