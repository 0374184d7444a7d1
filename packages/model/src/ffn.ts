/**
 * The FFN slot of a transformer block. Every block has one; its kind comes from `config.ffn[i]`
 * and is built by the kind's entry in the registry (ffn-kinds.ts). A slot that reads the model's
 * shared value pool exposes its `memory` (for checkpoints, usage metrics and inspection).
 * Memories that read one block and write after a later one are skip-layer sites (config.skips).
 */
import type { Memory } from '@mnemo/memory-layer';
import type * as tf from '@tensorflow/tfjs-core';

export interface FfnSlot {
  readonly kind: string;
  /** the memory this slot reads through, for memory kinds */
  readonly memory?: Memory;
  /**
   * x [N, D]: the block's RMS-normalised input, tokens flattened (N = B·T) → y [N, D], added to
   * the residual by the block. `aux`: an auxiliary loss to add to the LM loss (MoE balance).
   */
  apply(x: tf.Tensor2D, opts: { training: boolean }): { y: tf.Tensor2D; aux?: tf.Scalar };
  /** trainable tensors by their name inside the slot (`w13`, `router`, …) */
  variables(): Record<string, tf.Variable>;
  dispose(): void;
}
