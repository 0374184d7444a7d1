/**
 * The FFN slot of a transformer block. Every block has one; its kind comes from `config.ffn[i]`:
 *   dense       SwiGLU MLP                        (swiglu.ts)
 *   moe         top-2 of E SwiGLU experts          (moe.ts)
 *   memory      PKM memory layer, gating 'none'    (memory-ffn.ts)
 *   memoryPlus  Memory+ layer, gating 'silu'       (memory-ffn.ts)
 * A new kind (e.g. an UltraMem layer in place of the FFN) implements `FfnSlot`; memories that
 * read one block and write after a later one use `SkipLayerMemory` (extensions.ts) instead.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface FfnSlot {
  readonly kind: string;
  /**
   * x [N, D]: the block's RMS-normalised input, tokens flattened (N = B·T) → y [N, D], added to
   * the residual by the block. `aux`: an auxiliary loss to add to the LM loss (MoE balance).
   */
  apply(x: tf.Tensor2D, opts: { training: boolean }): { y: tf.Tensor2D; aux?: tf.Scalar };
  /** trainable tensors by their name inside the slot (`w13`, `router`, …) */
  variables(): Record<string, tf.Variable>;
  dispose(): void;
}
