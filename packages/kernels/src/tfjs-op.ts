/**
 * tfjs op: the embedding bag over any ValueTable (value-table.ts: ValueStore, CudaValueTable, …),
 * differentiable w.r.t. the weights.
 *
 *   const out = embeddingBag(table, ids, w);   // ids int32 [B, K], w float32 [B, K] → [B, dv]
 *
 * Forward reads the ids and weights from the tensors (in place on the cpu backend, one host copy
 * on wasm and tensorflow), runs the table's forward and returns a new tensor. Backward (run by any
 * tfjs gradient call: tf.grads, variableGrads, optimizer.minimize) returns gw [B, K] = <dy[b],
 * V[ids[b,j]]> for the weights and, in the same call, applies the table's fused optimizer update
 * to the touched rows (or queues it, when the table or `opts` says deferred). Both calls are
 * synchronous (tf.customGrad cannot await), which is why ValueTable's methods are. The ids get no
 * gradient. The table never enters tfjs, so no N-sized tensor or gradient exists.
 * Note: each gradient evaluation updates the table once; compute the gradient once per step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@mnemo/core';
import type { BackwardOptions, ValueTable } from './value-table';

export function embeddingBag(
  table: ValueTable,
  ids: tf.Tensor2D, // [B, K] int32; −1 = padding
  weights: tf.Tensor2D, // [B, K] float32
  opts: BackwardOptions = {},
): tf.Tensor2D {
  if (!(ids instanceof tf.Tensor) || ids.rank !== 2 || ids.dtype !== 'int32') {
    throw new ShapeError(
      'ids',
      `must be an int32 tf.Tensor2D [B, K], got ${ids instanceof tf.Tensor ? `${ids.dtype} rank ${ids.rank}` : typeof ids}`,
    );
  }
  if (!(weights instanceof tf.Tensor) || weights.rank !== 2 || weights.dtype !== 'float32') {
    throw new ShapeError('weights', 'must be a float32 tf.Tensor2D [B, K]');
  }
  const [B, K] = ids.shape;
  if (weights.shape[0] !== B || weights.shape[1] !== K) {
    throw new ShapeError('weights', `shape [${weights.shape}] must equal the ids' shape [${B}, ${K}]`);
  }
  const idArr = Int32Array.from(ids.dataSync() as Int32Array); // [B, K], kept for the backward
  const bag = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const w = args[0] as tf.Tensor; // [B, K]
    const wArr = Float32Array.from(w.dataSync() as Float32Array); // [B, K]
    const out = table.forward(idArr, wArr, K, B); // [B, dv]
    return {
      value: tf.tensor2d(out, [B, table.dim]),
      gradFunc: (dy: tf.Tensor) => {
        const gOut = dy.dataSync() as Float32Array; // [B, dv]
        const gw = table.backward(idArr, wArr, gOut, K, opts); // [B, K]; rows updated here
        return tf.tensor2d(gw, [B, K]);
      },
    };
  });
  return bag(weights) as tf.Tensor2D;
}
