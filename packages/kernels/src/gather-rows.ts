/**
 * tfjs op: a row gather whose gradient works on every backend (see gatherRows).
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * rows = table[idx]: [R, D] → [M, D]. The gradient is a host-side scatter-add of dy into a
 * [R, D] buffer: tf.gather's own gradient needs UnsortedSegmentSum, which the wasm backend lacks,
 * and a one-hot matmul would cost 2·M·R·D FLOPs where the scatter costs M·D adds.
 * On the host backends (wasm, cpu) the forward copies rows on the host too: wasm's GatherV2 is
 * slow for row gathers (measured 5 ms for 1008 rows of 128 floats; the host copy takes < 0.5 ms).
 * Used for token embeddings, MoE dispatch/combine and UltraMem's candidate scores.
 */
export function gatherRows(table: tf.Tensor2D, idx: Int32Array): tf.Tensor2D {
  const [R, D] = table.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor2D;
    let value: tf.Tensor2D;
    if (onHost()) {
      const src = t.dataSync() as Float32Array;
      const out = new Float32Array(idx.length * D);
      for (let i = 0; i < idx.length; i++) out.set(src.subarray(idx[i]! * D, (idx[i]! + 1) * D), i * D);
      value = tf.tensor2d(out, [idx.length, D]);
    } else {
      value = tf.tidy(() => tf.gather(t, tf.tensor1d(idx, 'int32')));
    }
    return {
      value, // [M, D]
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync() as Float32Array; // [M, D]
        const out = new Float32Array(R * D);
        for (let i = 0; i < idx.length; i++) {
          const src = i * D;
          const dst = idx[i]! * D;
          for (let d = 0; d < D; d++) out[dst + d] = out[dst + d]! + g[src + d]!;
        }
        return tf.tensor2d(out, [R, D]);
      },
    };
  });
  return op(table) as tf.Tensor2D;
}

/** Backends whose tensors live in host memory (reading them is a copy, not a device transfer). */
function onHost(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}
