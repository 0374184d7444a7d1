/**
 * Small tfjs building blocks of the model: a row gather whose gradient works on every backend,
 * RMSNorm, SwiGLU and the next-token cross-entropy.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * rows = table[idx]: [R, D] → [M, D]. The gradient is a host-side scatter-add of dy into a
 * [R, D] buffer: tf.gather's own gradient needs UnsortedSegmentSum, which the wasm backend lacks,
 * and a one-hot matmul would cost 2·M·R·D FLOPs where the scatter costs M·D adds.
 * On the host backends (wasm, cpu) the forward copies rows on the host too: wasm's GatherV2 is
 * slow for row gathers (measured 5 ms for 1008 rows of 128 floats; the host copy takes < 0.5 ms).
 * Used for the token embedding and for MoE dispatch/combine.
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
          for (let d = 0; d < D; d++) out[dst + d]! += g[src + d];
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

