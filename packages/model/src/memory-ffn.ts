/**
 * Memory FFN slots (docs/design.md §2): a memory from @mnemo/memory-layer in place of the
 * block's FFN, reading the model's ONE shared value pool.
 *   memory      PKM: y = m (gating 'none'; m Wo when valueDim ≠ dim)
 *   memoryPlus  Memory+: y = W2 (m ⊙ silu(W1 x + b1)) + b2 (gating 'silu')
 * The memory's dense tensors (query projection, sub-keys, W1/W2) train with the model's
 * optimizer; the values are updated sparsely by the pool during backward.
 */
import { subSeed } from '@mnemo/core';
import { type Memory, type MemoryLayerConfig, MemoryLayer, type ValuePool, parseMemoryLayerConfig } from '@mnemo/memory-layer';
import type * as tf from '@tensorflow/tfjs-core';
import { type UltraMemConfig, parseUltraMemConfig } from '@mnemo/ultramem';
import type { ModelConfig } from './config';
import type { FfnSlot } from './ffn';

/**
 * The product-key layer config of the memory at `site` (`blocks.<i>.ffn`, `skips.<i>`) of a
 * model: the shared `memory` section, the model width, the site's own seed.
 */
export function productKeyLayerConfig(c: ModelConfig, site: string, gating: 'none' | 'silu'): MemoryLayerConfig {
  const m = c.memory;
  return parseMemoryLayerConfig({
    inputDim: c.dim,
    numKeys: m.numKeys,
    heads: m.heads,
    topK: m.topK,
    keyDim: m.keyDim,
    valueDim: m.valueDim ?? c.dim,
    queryNorm: m.queryNorm,
    scoreFn: m.scoreFn,
    gating,
    seed: subSeed(c.seed, site),
  });
}

/** The UltraMem layer config of the memory at `site`: `ultramem` section + the pool's numKeys + the site's seed. */
export function ultraMemLayerConfig(c: ModelConfig, site: string): UltraMemConfig {
  return parseUltraMemConfig({ ...c.ultramem, inputDim: c.dim, numKeys: c.memory.numKeys, seed: subSeed(c.seed, site) }, 'ultramem');
}

/** A product-key memory layer on the model's pool, its tfjs variables named after the site. */
export function newMemoryLayer(config: MemoryLayerConfig, pool: ValuePool, site: string): MemoryLayer {
  return new MemoryLayer(config, { pool, name: site });
}

/** An FFN slot holding a memory. */
export class MemoryFfn implements FfnSlot {
  constructor(
    readonly memory: Memory,
    readonly kind: string,
  ) {}

  apply(x: tf.Tensor2D, opts: { training: boolean }): { y: tf.Tensor2D; aux?: tf.Scalar } {
    return { y: this.memory.apply(x, { training: opts.training }) as tf.Tensor2D, aux: this.memory.auxLoss() };
  }

  variables(): Record<string, tf.Variable> {
    return this.memory.variables();
  }

  dispose(): void {
    this.memory.dispose(); // its variables; the shared pool is the model's
  }
}
