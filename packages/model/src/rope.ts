/**
 * Rotary position embedding (Su et al. 2021), "rotate-half" layout: the head vector
 * x = [x1 | x2] (halves of dh/2) at position p becomes
 *   [x1·cos − x2·sin | x1·sin + x2·cos],   angle_i = p · θ^(−2i/dh),  i < dh/2.
 * rotateHalf(x) = [−x2 | x1] is one [dh, dh] matmul, so the op is x·cos + (x·R)·sin with
 * plain, differentiable tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';

export class Rope {
  readonly cos: tf.Tensor2D; // [maxSeqLen, dh]  (each angle twice: both halves)
  readonly sin: tf.Tensor2D; // [maxSeqLen, dh]
  private readonly rot: tf.Tensor2D; // [dh, dh]: x·rot = [−x2 | x1]

  constructor(
    readonly maxSeqLen: number,
    readonly headDim: number,
    theta: number,
  ) {
    const half = headDim / 2;
    const cos = new Float32Array(maxSeqLen * headDim);
    const sin = new Float32Array(maxSeqLen * headDim);
    for (let p = 0; p < maxSeqLen; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * theta ** ((-2 * i) / headDim);
        cos[p * headDim + i] = cos[p * headDim + half + i] = Math.cos(a);
        sin[p * headDim + i] = sin[p * headDim + half + i] = Math.sin(a);
      }
    }
    const rot = new Float32Array(headDim * headDim);
    for (let j = 0; j < half; j++) {
      rot[(j + half) * headDim + j] = -1; // out[j] = −x[j + h]
      rot[j * headDim + j + half] = 1; // out[j + h] = x[j]
    }
    this.cos = tf.tensor2d(cos, [maxSeqLen, headDim]);
    this.sin = tf.tensor2d(sin, [maxSeqLen, headDim]);
    this.rot = tf.tensor2d(rot, [headDim, headDim]);
  }

  /** cos/sin for positions [B, T] (row-major), shaped [B, 1, T, dh] to broadcast over heads. */
  at(positions: Int32Array, B: number, T: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
    return tf.tidy(() => {
      const p = tf.tensor1d(positions, 'int32');
      const shape: [number, number, number, number] = [B, 1, T, this.headDim];
      return { cos: tf.reshape(tf.gather(this.cos, p), shape), sin: tf.reshape(tf.gather(this.sin, p), shape) };
    });
  }

  /** cos/sin for positions start..start+T−1 of every row: [1, 1, T, dh]. */
  prefix(T: number, start = 0): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
    return tf.tidy(() => {
      const shape: [number, number, number, number] = [1, 1, T, this.headDim];
      return {
        cos: tf.reshape(tf.slice(this.cos, [start, 0], [T, this.headDim]), shape),
        sin: tf.reshape(tf.slice(this.sin, [start, 0], [T, this.headDim]), shape),
      };
    });
  }

  /** x [B, heads, T, dh] rotated by the given cos/sin ([B or 1, 1, T, dh]). */
  apply(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, this.headDim]), this.rot), x.shape); // [−x2 | x1]
      return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
    });
  }

  dispose(): void {
    this.cos.dispose();
    this.sin.dispose();
    this.rot.dispose();
  }
}
