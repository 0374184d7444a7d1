/**
 * Engine: everything the server needs from a language model, and nothing more.
 *
 * The HTTP layer and the scheduler talk only to this interface; `ModelEngine`
 * (model-engine.ts) adapts @mnemo/model's LanguageModel + BpeTokenizer to it, and tests
 * may plug in a fake. All calls are synchronous: the model computes on the JS thread.
 */

import type { ChatTemplate } from '@mnemo/model';

/** One sequence's decoding state (the model's KV cache). */
export interface EngineCache {
  /** tokens held */
  readonly length: number;
  /** Memory³: ids of the references this sequence has read so far, in first-read order */
  readonly references?: readonly number[];
  dispose(): void;
}

/** One stored reference of the engine's knowledge base (Memory³ explicit memory). */
export interface ReferenceInfo {
  id: number;
  text: string;
  /** tokens of the reference (prefix excluded) */
  tokens: number;
  /** ms since the epoch */
  createdAt: number;
  /** bytes its encoded K/V take on disk */
  bytes: number;
}

/** A text split into references and written into memories, not yet stored. */
export interface WrittenReferences {
  readonly count: number;
}

/**
 * The knowledge base a Memory³ engine reads: texts become references (≤ `maxReferenceTokens`
 * each) whose sparse K/V the model writes; completions retrieve from it every 64 tokens.
 * Writing is model compute (synchronous, queued with the generations); storing is durable I/O.
 */
export interface EngineMemories {
  readonly maxReferenceTokens: number;
  /** references stored */
  readonly size: number;
  /** split `text` into references and write their memories (model compute) */
  write(text: string): WrittenReferences;
  /** store them; resolves once durable, with their infos in text order */
  store(written: WrittenReferences): Promise<ReferenceInfo[]>;
  list(offset: number, limit: number): ReferenceInfo[];
  get(id: number): ReferenceInfo | undefined;
  /** false when no such reference */
  delete(id: number): Promise<boolean>;
  /** the references each 64-token chunk of `tokens` would read: [start, end) token ranges and ids */
  references(tokens: number[]): { start: number; end: number; ids: number[] }[];
}

/** What one taught text wrote (sparse memory finetuning: only its most specific slots). */
export interface TaughtText {
  /** tokens of the text */
  tokens: number;
  /** the value rows written (rows of the memory pool every memory block reads), ascending */
  slots: number[];
  /** the text's LM loss before and after (nats per token) */
  lossBefore: number;
  lossAfter: number;
}

export interface TeachOptions {
  /** optimizer steps (default: the library's) */
  steps?: number;
  /** slots written per memory block (default: the library's) */
  topT?: number;
}

/**
 * Teaching a served model new facts: write a text into the few memory slots its tokens read
 * (most specific to it vs a background sample), nothing else. `teach` is model compute
 * (synchronous: the scheduler runs it between decoding steps, so no request sees a half-written
 * row); `save` writes the checkpoint atomically (synchronous too, for the same reason).
 */
export interface EngineTeacher {
  /** texts taught since the last save */
  readonly unsaved: number;
  teach(tokens: number[], opts: TeachOptions): TaughtText;
  /** write the checkpoint with what was taught (atomic: the old one stays until the new is whole) */
  save(): { path: string; bytes: number };
}

export interface SamplingParams {
  /** 0 = greedy (argmax) */
  temperature: number;
  /** nucleus mass in (0, 1] */
  topP: number;
}

/** Per memory block: the slots each token read, laid out [T, H, k]. */
export interface MemoryReads {
  block: number;
  heads: number;
  topK: number;
  ids: Int32Array; // [T, H, k]
  weights: Float32Array; // [T, H, k]
}

export interface EngineInfo {
  /** model id shown by /v1/models */
  id: string;
  vocabSize: number;
  /** longest sequence (prompt + generated) the model can hold */
  maxSeqLen: number;
  /** blocks with a memory FFN (empty: lookups are refused) */
  memoryBlocks: number[];
  denseParams: number;
  memoryParams: number;
  flopsPerToken: number;
}

export interface Engine {
  readonly info: EngineInfo;
  /** token ends generation when sampled (not part of the text or the usage count); -1 if none */
  readonly eosId: number;
  /** token fed in place of an empty prompt (as the library's generate does) */
  readonly bosId: number;
  encode(text: string): number[];
  /**
   * Token ids of `text` if it has at most `maxTokens`, else null, with the work bounded by
   * `maxTokens` rather than by the text's length (a prompt limit is checked before a megabyte
   * of one word is tokenized).
   */
  encodeUpTo(text: string, maxTokens: number): number[] | null;
  decode(ids: number[]): string;
  newCache(): EngineCache;
  /** Feed tokens of ONE sequence; logits [V] of its last position. */
  prefill(tokens: number[], cache: EngineCache): Float32Array;
  /** One decoding step for several sequences (one new token each); logits [V] per sequence. */
  decodeBatch(tokens: number[], caches: EngineCache[]): Float32Array[];
  sample(logits: Float32Array, params: SamplingParams, rng: () => number): number;
  /** the seeded RNG generation uses (so a seed means the same thing as in the library) */
  rng(seed: number): () => number;
  /** per memory block, the slots each token of `tokens` reads */
  lookup(tokens: number[]): MemoryReads[];
  /** how /v1/chat/completions renders messages (absent: the default, chat-template.ts) */
  readonly chatTemplate?: ChatTemplate;
  /** Memory³ knowledge base, when the engine reads one (absent: /v1/memories answers 400) */
  readonly memories?: EngineMemories;
  /** sparse memory finetuning, when the model has memory layers and was loaded from a checkpoint */
  readonly teacher?: EngineTeacher;
  /** live tensors held by the tensor runtime (leak check, /metrics) */
  numTensors(): number;
  /** free the model (and close what it reads: a Memory³ store); the server awaits it at shutdown */
  dispose(): void | Promise<void>;
}
