/**
 * Data-parallel dense parameters next to a sharded pool: every rank holds the same dense
 * variables, computes gradients on its own tokens (with the loss normalised by the GLOBAL batch,
 * so the per-rank gradients sum to the full-batch gradient), and all-reduces them before the
 * dense optimizer step; every rank then applies the same update. The value table is not here:
 * its update happens inside the sharded pool's backward.
 *
 *   const { value, grads } = tf.variableGrads(() => localLoss, vars);
 *   dense.applyGradients(allReduceGradients(group, grads));     // same on every rank
 *   const loss = allReduceScalar(group, value);                 // Σ over ranks = the global loss
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ProcessGroup } from './process-group';

/** Σ over ranks of each gradient, in one all-reduce of their concatenation (name order). */
export function allReduceGradients(group: ProcessGroup, grads: tf.NamedTensorMap): tf.NamedTensorMap {
  const names = Object.keys(grads).sort();
  if (group.size === 1) return grads;
  let n = 0;
  for (const k of names) n += grads[k]!.size;
  const flat = new Float32Array(n);
  let off = 0;
  for (const k of names) {
    flat.set(grads[k]!.dataSync() as Float32Array, off);
    off += grads[k]!.size;
  }
  const sum = group.allReduce(flat);
  const out: tf.NamedTensorMap = {};
  off = 0;
  for (const k of names) {
    const g = grads[k]!;
    out[k] = tf.tensor(sum.subarray(off, off + g.size), g.shape, 'float32');
    off += g.size;
  }
  return out;
}

/** Σ over ranks of a scalar. */
export function allReduceScalar(group: ProcessGroup, x: tf.Scalar | number): number {
  const v = typeof x === 'number' ? x : (x.dataSync() as Float32Array)[0]!;
  return group.size === 1 ? v : group.allReduce(Float32Array.of(v))[0]!;
}
