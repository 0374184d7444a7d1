/**
 * Brute-force references: score every one of the N = n² explicit keys. O(N·dk) per query;
 * used by the tests (exact, float64) and the benchmark (tfjs matMul + topk).
 */
import * as tf from '@tensorflow/tfjs-core';
import { explicitKeys } from './subkeys';

export interface TopKArrays {
  scores: Float64Array; // [B, H, k]
  ids: Int32Array; // [B, H, k]
}

/**
 * Exact top-k over the explicit keys, in float64, with the documented tie rule:
 * higher score first, then lower slot id.
 */
export function bruteForceTopK(
  queries: Float32Array, // [B, H, dk]
  subkeys: Float32Array, // [H, 2, n, dk/2]
  dims: { batch: number; heads: number; n: number; dk: number; k: number },
): TopKArrays {
  const { batch, heads, n, dk, k } = dims;
  const N = n * n;
  const keys = explicitKeys(subkeys, heads, n, dk); // [H, N, dk]
  const scores = new Float64Array(batch * heads * k);
  const ids = new Int32Array(batch * heads * k);
  const s = new Float64Array(N);
  const order = new Int32Array(N);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const qo = (b * heads + h) * dk;
      for (let slot = 0; slot < N; slot++) {
        const ko = (h * N + slot) * dk;
        let acc = 0;
        for (let c = 0; c < dk; c++) acc += queries[qo + c]! * keys[ko + c]!;
        s[slot] = acc;
        order[slot] = slot;
      }
      order.sort((x, y) => (s[y]! - s[x]! !== 0 ? s[y]! - s[x]! : x - y));
      const o = (b * heads + h) * k;
      for (let t = 0; t < k; t++) {
        ids[o + t] = order[t]!;
        scores[o + t] = s[order[t]!]!;
      }
    }
  }
  return { scores, ids };
}

/**
 * The brute force as a user would write it in tfjs: scores = q · Kᵀ over a materialised key
 * matrix, then tf.topk. `keyChunks`: ONE head's keys stored transposed, chunks of [dk, rows]
 * (tfjs-wasm multiplies by a transposed operand ~10x slower, so the index keeps Kᵀ);
 * `queries` [B, dk]. Chunked over N so no tensor is huge (wasm's heap is 32-bit).
 */
export function bruteForceTopKTf(queries: tf.Tensor2D, keyChunks: tf.Tensor2D[], k: number): { scores: tf.Tensor2D; ids: tf.Tensor2D } {
  return tf.tidy(() => {
    let bestS: tf.Tensor2D | undefined;
    let bestI: tf.Tensor2D | undefined;
    let base = 0;
    for (const chunk of keyChunks) {
      const s = tf.matMul(queries, chunk); // [B, rows]
      const { values, indices } = tf.topk(s, Math.min(k, chunk.shape[1]));
      const gi = tf.add(indices, tf.scalar(base, 'int32')) as tf.Tensor2D;
      if (!bestS || !bestI) {
        bestS = values as tf.Tensor2D;
        bestI = gi;
      } else {
        // merge: candidates from the earlier chunks come first, so equal scores keep the lower id
        const cs = tf.concat([bestS, values], 1);
        const ci = tf.concat([bestI, gi], 1);
        const top = tf.topk(cs, k);
        bestS = top.values as tf.Tensor2D;
        const B = cs.shape[0]!;
        const rowBase = tf.mul(tf.expandDims(tf.range(0, B, 1, 'int32'), 1), tf.scalar(cs.shape[1]!, 'int32'));
        const flat = tf.add(top.indices, rowBase);
        bestI = tf.reshape(tf.gather(tf.reshape(ci, [-1]), tf.reshape(flat, [-1])), [B, k]) as tf.Tensor2D;
      }
      base += chunk.shape[1];
    }
    return { scores: bestS!, ids: bestI! };
  });
}

/** Materialise one head's explicit keys, transposed: chunks [dk, rows] of ≤ chunkRows slots. */
export function explicitKeyChunks(subkeys: Float32Array, head: number, n: number, dk: number, chunkRows = 1 << 16): tf.Tensor2D[] {
  const half = dk / 2;
  const N = n * n;
  const chunks: tf.Tensor2D[] = [];
  const k1 = head * 2 * n * half;
  const k2 = k1 + n * half;
  for (let start = 0; start < N; start += chunkRows) {
    const rows = Math.min(chunkRows, N - start);
    const buf = new Float32Array(dk * rows); // [dk, rows]
    for (let r = 0; r < rows; r++) {
      const slot = start + r;
      const i = Math.floor(slot / n);
      const j = slot % n;
      for (let c = 0; c < half; c++) {
        buf[c * rows + r] = subkeys[k1 + i * half + c]!;
        buf[(half + c) * rows + r] = subkeys[k2 + j * half + c]!;
      }
    }
    chunks.push(tf.tensor2d(buf, [dk, rows]));
  }
  return chunks;
}
