/**
 * Small tfjs building blocks of the model: RMSNorm, SwiGLU and the next-token cross-entropy
 * (the row gather with a host-side gradient is `gatherRows` in @mnemo/kernels).
 */
import { rmsNorm as kernelRmsNorm, siluMul } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';

/** RMSNorm (Zhang & Sennrich 2019): x / √(mean(x²) + eps) · g over the last axis (fused on the native path). */
export const rmsNorm = kernelRmsNorm;

/**
 * SwiGLU FFN (Shazeer 2020): (silu(x W1) ⊙ x W3) W2. W1 and W3 stay separate matrices: on wasm,
 * splitting one fused [N, 2h] product costs more than the second matmul (Slice reads the whole input).
 */
export function swiglu(x: tf.Tensor2D, w1: tf.Tensor2D, w3: tf.Tensor2D, w2: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const gate = tf.matMul(x, w1); // [N, h]
    const act = siluMul(gate, tf.matMul(x, w3)); // silu(gate) ⊙ up [N, h], one fused op on the native path
    return tf.matMul(act, w2); // [N, D]
  });
}

/**
 * Mean cross-entropy of logits [N, V] against integer targets [N], as one op:
 *   forward p = softmax(logits) (one exp pass), loss = −mean(log p[target]);
 *   backward dlogits = (p − onehot(target)) · dy / N, reusing p.
 * The picks and the one-hot subtraction run on the host (N values, not an [N, V] one-hot tensor).
 * log p is floored at log(1e-38) per token (float32 softmax underflow), i.e. at most 87.5 nats.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  const [N, V] = logits.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const p = tf.softmax(args[0] as tf.Tensor2D, -1); // [N, V]
    const pv = p.dataSync() as Float32Array;
    p.dispose();
    let sum = 0;
    for (let i = 0; i < N; i++) sum -= Math.log(Math.max(pv[i * V + targets[i]!]!, 1e-38));
    return {
      value: tf.scalar(sum / N),
      gradFunc: (dy: tf.Tensor) => {
        const scale = (dy.dataSync() as Float32Array)[0]! / N;
        const g = Float32Array.from(pv);
        for (let i = 0; i < N; i++) g[i * V + targets[i]!]! -= 1;
        for (let j = 0; j < g.length; j++) g[j]! *= scale;
        return tf.tensor2d(g, [N, V]);
      },
    };
  });
  return op(logits) as tf.Scalar;
}

/**
 * float32 one-hot [N, depth]. Built as int32 then cast: tfjs-backend-wasm 4.22's OneHot writes
 * integer bits into a float32 output when asked for dtype 'float32'.
 */
export function oneHot(indices: Int32Array, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(indices, 'int32'), depth), 'float32') as tf.Tensor2D);
}
