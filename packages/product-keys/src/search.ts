/**
 * The product-key search as a differentiable tfjs op (Lample et al. 2019; docs/design.md §1).
 *
 * Forward (per batch row b and head h), in the kernel of `@mnemo/kernels` (native C++ when
 * built, else TypeScript):
 *   s1 = K1 q1, s2 = K2 q2                       // [n] each
 *   (a, I1) = topK(s1, k), (b, I2) = topK(s2, k)
 *   candidates a[u] + b[v], id = I1[u]·n + I2[v]  // k² of them
 *   (scores, ids) = topK(candidates, k)          // sorted descending
 * Exact: the true top-k of <q, K[slot]> over all N = n² slots is always among the candidates.
 * Ties: higher score first, then lower slot id.
 *
 * Backward: score[b,h,t] = <q1, K1[i]> + <q2, K2[j]> with (i, j) = (id div n, id mod n), so
 *   dq1[b,h]  += g · K1[h, i]      dK1[h, i] += g · q1[b,h]
 *   dq2[b,h]  += g · K2[h, j]      dK2[h, j] += g · q2[b,h]
 * Only the B·H·k selected sub-key rows get a gradient; nothing of size N is ever built.
 * Computed by the kernels' `productKeyTopKBackward` (native C++ or TypeScript) on host copies:
 * works on every backend (wasm has no UnsortedSegmentSum, which a tf.gather gradient would need).
 */
import { ShapeError, checkInt } from '@mnemo/core';
import { type KernelImpl, productKeyTopK, productKeyTopKBackward } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';

export interface SearchOptions {
  /** force the native or TypeScript kernel (default: native when available) */
  impl?: KernelImpl;
}

export interface SearchResult {
  scores: tf.Tensor3D; // [B, H, k] float32, descending; differentiable w.r.t. queries and sub-keys
  ids: tf.Tensor3D; // [B, H, k] int32 slot ids i·n + j
}

/** Check ranks, sizes and dtypes of a search; returns the dimensions. */
export function checkSearchInputs(queries: tf.Tensor, subkeys: tf.Tensor, k: number) {
  if (queries.rank !== 3) throw new ShapeError('queries', `must be [B, H, dk] (rank 3), got shape [${queries.shape}]`);
  if (subkeys.rank !== 4 || subkeys.shape[1] !== 2) {
    throw new ShapeError('subkeys', `must be [H, 2, n, dk/2], got shape [${subkeys.shape}]`);
  }
  if (queries.dtype !== 'float32') throw new ShapeError('queries', `must be float32, got ${queries.dtype}`);
  if (subkeys.dtype !== 'float32') throw new ShapeError('subkeys', `must be float32, got ${subkeys.dtype}`);
  const [batch, heads, dk] = queries.shape as [number, number, number];
  const [kh, , n, half] = subkeys.shape as [number, number, number, number];
  if (kh !== heads) throw new ShapeError('subkeys', `has ${kh} heads but queries have ${heads}`);
  if (dk % 2 !== 0) throw new ShapeError('queries', `query width dk must be even (two halves), got ${dk}`);
  if (half * 2 !== dk) throw new ShapeError('subkeys', `sub-key width ${half} must be dk/2 = ${dk / 2}`);
  checkInt('k', k, 1, n);
  return { batch, heads, n, dk, k };
}

/**
 * Exact multi-head product-key top-k. `queries` [B, H, dk], `subkeys` [H, 2, n, dk/2] →
 * `{ scores [B, H, k], ids [B, H, k] }`. Gradients reach the queries and the selected sub-key rows.
 */
export function productKeySearch(queries: tf.Tensor3D, subkeys: tf.Tensor4D, k: number, opts: SearchOptions = {}): SearchResult {
  const dims = checkSearchInputs(queries, subkeys, k);
  const { batch, heads, n, dk } = dims;
  const half = dk / 2;
  // The search itself has no gradient: run the kernel once, outside the differentiable op.
  const r = productKeyTopK(queries.dataSync() as Float32Array, subkeys.dataSync() as Float32Array, dims, {
    impl: opts.impl,
  });
  const idv = r.ids; // [B, H, k]

  // tfjs types customGrad's inputs as a rest array, hence the cast
  const scoresOp = tf.customGrad(((q: tf.Tensor, keys: tf.Tensor, save: tf.GradSaveFunc) => {
    save([q, keys]);
    const value = tf.tensor3d(r.scores, [batch, heads, k], 'float32');

    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const { dq, dkeys } = productKeyTopKBackward(
        dy.dataSync() as Float32Array, // [B, H, k]
        idv,
        saved[0]!.dataSync() as Float32Array, // [B, H, dk]
        saved[1]!.dataSync() as Float32Array, // [H, 2, n, dk/2]
        dims,
        { impl: opts.impl },
      );
      return [tf.tensor(dq, q.shape, 'float32'), tf.tensor(dkeys, keys.shape, 'float32')];
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);

  const scores = scoresOp(queries, subkeys) as tf.Tensor3D;
  return { scores, ids: tf.tensor3d(idv, [batch, heads, k], 'int32') };
}
