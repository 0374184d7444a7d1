/**
 * What memory3 needs of a language model, as structural types: @mnemo/memory3 imports no model;
 * @mnemo/model's LanguageModel satisfies `MemoryHost` and accepts `MemoryKV` as its `ExternalKV`.
 */
import { ConfigError } from '@mnemo/core';
import type * as tf from '@tensorflow/tfjs-core';
import type { MemoryShape } from './types';

/** A block's captured attention inputs for one sequence (no gradient). */
export interface CapturedBlock {
  block: number;
  /** [H, T, dh] after RoPE, pre-scaled by 1/√dh */
  q: Float32Array;
  /** [Hkv, T, dh] after RoPE */
  k: Float32Array;
  /** [Hkv, T, dh] */
  v: Float32Array;
}

export interface MemoryHost {
  readonly config: { layers: number; heads: number; kvHeads: number; dim: number; maxSeqLen: number };
  /** `hidden: l`: the residual stream [T, D] entering block l (layers: final-normed) */
  captureKV(tokens: number[], opts: { blocks: number[]; hidden?: number }): { blocks: CapturedBlock[]; hidden?: Float32Array };
}

/** The model's ExternalKV (packages/model/src/extensions.ts), structurally. */
export interface MemoryKV {
  readonly blocks: number[];
  readonly contextStart?: number;
  readonly chunk?: number;
  get(block: number, row: number, chunk: number): { k: tf.Tensor3D; v: tf.Tensor3D } | undefined;
}

/** Memory³ settings shared by writer, reader and knowledge base (docs/design.md §4). */
export interface Memory3Options {
  /** the "Reference:" prefix token written before every reference (the tokenizer's BOS: see README) */
  prefixId: number;
  /** memory-reading blocks (default: the first ⌊L/2⌋) */
  blocks?: number[];
  /** tokens kept per block and KV head (default 8) */
  tokens?: number;
  /** the residual stream the embedding mean-pools (default 0: the token embeddings; see embed.ts) */
  embedLayer?: number;
}

export interface ResolvedMemory3 {
  prefixId: number;
  blocks: number[];
  tokens: number;
  embedLayer: number;
}

/** Positions a reference (prefix included) may fill; the context then starts here (parallel position encoding). */
export const REFERENCE_POSITIONS = 128;

export function resolveOptions(host: MemoryHost, o: Memory3Options): ResolvedMemory3 {
  const L = host.config.layers;
  const blocks = o.blocks ?? Array.from({ length: Math.max(1, Math.floor(L / 2)) }, (_, i) => i);
  if (blocks.length === 0 || blocks.some((b, i) => !Number.isInteger(b) || b < 0 || b >= L || (i > 0 && b <= blocks[i - 1]!)))
    throw new ConfigError('blocks', `must be increasing block indices in [0, ${L}), got ${JSON.stringify(blocks)}`);
  const tokens = o.tokens ?? 8;
  if (!Number.isInteger(tokens) || tokens < 1 || tokens >= REFERENCE_POSITIONS)
    throw new ConfigError('tokens', `must be an integer in [1, ${REFERENCE_POSITIONS}), got ${tokens}`);
  const embedLayer = o.embedLayer ?? 0;
  if (!Number.isInteger(embedLayer) || embedLayer < 0 || embedLayer > L)
    throw new ConfigError('embedLayer', `must be an integer in [0, layers = ${L}], got ${embedLayer}`);
  if (!Number.isInteger(o.prefixId) || o.prefixId < 0) throw new ConfigError('prefixId', `must be a token id, got ${o.prefixId}`);
  return { prefixId: o.prefixId, blocks, tokens, embedLayer };
}

/** The shape of the memories a host writes with these options. */
export function memoryShapeOf(host: MemoryHost, o: Memory3Options): MemoryShape {
  const r = resolveOptions(host, o);
  const { kvHeads, dim, heads } = host.config;
  return { layers: r.blocks.length, kvHeads, tokens: r.tokens, headDim: dim / heads };
}
