/**
 * Memory FFN slots (algorithms.md §2): a MemoryLayer from @mnemo/memory-layer in place of the
 * block's FFN, reading the model's ONE shared value pool.
 *   memory      PKM: y = m (gating 'none'; m Wo when valueDim ≠ dim)
 *   memoryPlus  Memory+: y = W2 (m ⊙ silu(W1 x + b1)) + b2 (gating 'silu')
 * The layer's dense tensors (query projection, sub-keys, W1/W2) train with the model's optimizer;
 * the values are updated sparsely by the pool during backward.
 */
import { type MemoryLayerConfig, MemoryLayer, type ValuePool, parseMemoryLayerConfig } from '@mnemo/memory-layer';
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config';
import type { FfnSlot } from './ffn';
import { subSeed } from '@mnemo/core';

/** The MemoryLayer config of block `block` of a model. */
export function memoryLayerConfigFor(c: ModelConfig, block: number): MemoryLayerConfig {
  const m = c.memory;
  return parseMemoryLayerConfig({
    inputDim: c.dim,
    numKeys: m.numKeys,
    heads: m.heads,
    topK: m.topK,
    keyDim: m.keyDim,
    valueDim: m.valueDim ?? c.dim,
    queryNorm: m.queryNorm,
    gating: c.ffn[block] === 'memoryPlus' ? 'silu' : 'none',
    seed: subSeed(c.seed, `blocks.${block}.ffn`),
  });
}

export class MemoryFfn implements FfnSlot {
  readonly kind: 'memory' | 'memoryPlus';

  constructor(readonly layer: MemoryLayer) {
    this.kind = layer.config.gating === 'silu' ? 'memoryPlus' : 'memory';
  }

  static create(c: ModelConfig, block: number, pool: ValuePool): MemoryFfn {
    return new MemoryFfn(new MemoryLayer(memoryLayerConfigFor(c, block), { pool, name: `blocks.${block}.ffn` }));
  }

  apply(x: tf.Tensor2D, opts: { training: boolean }): { y: tf.Tensor2D } {
    return { y: this.layer.apply(x, { training: opts.training }) as tf.Tensor2D };
  }

  variables(): Record<string, tf.Variable> {
    return this.layer.variables();
  }

  dispose(): void {
    this.layer.dispose(); // its variables; the shared pool is the model's
  }
}
