/**
 * Addressor: the first of a memory's three parts (addressor → value table → readout).
 * It turns a token's hidden state into WHICH rows of the value table to read and with WHAT weight:
 *
 *   x [B, D]  →  ids [B·G, K] int32 (−1 = nothing), weights [B·G, K], scores [B·G, K]
 *
 * K = heads · topK rows per bag, G = `bags` bags per token (1 for product keys: all heads summed
 * into one bag, docs/design.md §2.4; UltraMem's value expansion reads G = E bags per token).
 * Gradients reach the addressor's own variables through `weights`; `ids` carry none.
 * Implementations: ProductKeyAddressor (PKM, Memory+); TDQKR and a chunk retriever next.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface Address {
  ids: tf.Tensor2D; // [B·G, K] int32 row ids of the value table, −1 = padding
  weights: tf.Tensor2D; // [B·G, K] pooling weights (after the score function)
  scores: tf.Tensor2D; // [B·G, K] raw scores, for traces and introspection
}

export interface Addressor {
  /** rows of the value table its ids index (ids ∈ [0, rows)) */
  readonly rows: number;
  /** H: heads per bag, so K = heads · topK */
  readonly heads: number;
  /** k: rows each head reads */
  readonly topK: number;
  /** G: bags per token (the readout receives m as [B, G·dv]) */
  readonly bags: number;
  /** x [B, D] → ids, weights, scores [B·G, K] */
  address(x: tf.Tensor2D, opts: { training: boolean }): Address;
  /** an auxiliary loss on the addressor's own tensors (UltraMem's Tucker-core penalty), if any */
  auxLoss?(): tf.Scalar | undefined;
  /** trainable tensors by name (`wq`, `subkeys`, …), trained by the model's dense optimizer */
  variables(): Record<string, tf.Variable>;
  dispose(): void;
}
