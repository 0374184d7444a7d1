/**
 * Small tfjs building blocks of the model: a row gather whose gradient works on every backend,
 * RMSNorm, SwiGLU and the next-token cross-entropy.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * rows = table[idx]: [R, D] → [M, D]. The gradient is a host-side scatter-add of dy into a
 * [R, D] buffer: tf.gather's own gradient needs UnsortedSegmentSum, which the wasm backend lacks,
 * and a one-hot matmul would cost 2·M·R·D FLOPs where the scatter costs M·D adds.
 * Used for the token embedding and for MoE dispatch/combine.
 */
export function gatherRows(table: tf.Tensor2D, idx: Int32Array): tf.Tensor2D {
  const [R, D] = table.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.tidy(() => tf.gather(args[0] as tf.Tensor, tf.tensor1d(idx, 'int32'))), // [M, D]
    gradFunc: (dy: tf.Tensor) => {
      const g = dy.dataSync() as Float32Array; // [M, D]
      const out = new Float32Array(R * D);
      for (let i = 0; i < idx.length; i++) {
        const src = i * D;
        const dst = idx[i]! * D;
        for (let d = 0; d < D; d++) out[dst + d] += g[src + d]!;
      }
      return tf.tensor2d(out, [R, D]);
    },
  }));
  return op(table) as tf.Tensor2D;
}

/** RMSNorm (Zhang & Sennrich 2019): x / √(mean(x²) + eps) · g over the last axis. */
export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, eps: number): T {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true); // [..., 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g) as T;
  });
}

/**
 * SwiGLU FFN (Shazeer 2020): (silu(x W1) ⊙ x W3) W2. W1 and W3 stay separate matrices: on wasm,
 * splitting one fused [N, 2h] product costs more than the second matmul (Slice reads the whole input).
 */
export function swiglu(x: tf.Tensor2D, w1: tf.Tensor2D, w3: tf.Tensor2D, w2: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const gate = tf.matMul(x, w1); // [N, h]
    const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), tf.matMul(x, w3)); // silu(gate) ⊙ up
    return tf.matMul(act, w2); // [N, D]
  });
}

/** Mean cross-entropy of logits [N, V] against integer targets [N]. */
export function crossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const logp = tf.logSoftmax(logits, -1); // [N, V]
    const onehot = oneHot(targets, V); // [N, V]
    return tf.neg(tf.div(tf.sum(tf.mul(logp, onehot)), targets.length)) as tf.Scalar;
  });
}

/**
 * float32 one-hot [N, depth]. Built as int32 then cast: tfjs-backend-wasm 4.22's OneHot writes
 * integer bits into a float32 output when asked for dtype 'float32'.
 */
export function oneHot(indices: Int32Array, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(indices, 'int32'), depth), 'float32') as tf.Tensor2D);
}

