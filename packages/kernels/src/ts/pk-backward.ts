/**
 * Backward of the product-key search, portable TypeScript kernel (twin of
 * native/cpu/pk_backward.cc, same loop order). For slot t of (b, h) with g = dL/dscore[b,h,t]
 * and (i, j) = (id div n, id mod n):
 *   dq1[b,h] += g · K1[h,i]     dK1[h,i] += g · q1[b,h]
 *   dq2[b,h] += g · K2[h,j]     dK2[h,j] += g · q2[b,h]
 * Only the B·H·k selected sub-key rows are touched; nothing of size N = n² is built.
 */
import type { PkDims } from './pk-topk';

export function pkBackwardTs(
  grad: Float32Array, // [B, H, k]
  ids: Int32Array, // [B, H, k]
  queries: Float32Array, // [B, H, dk]
  subkeys: Float32Array, // [H, 2, n, dk/2]
  d: PkDims,
  dq: Float32Array, // [B, H, dk], added into
  dkeys: Float32Array, // [H, 2, n, dk/2], added into
): void {
  const { batch, heads, n, dk, k } = d;
  const half = dk / 2;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      const K = (h * 2 + s) * n * half; // offset of K_s[h]: [n, half]
      for (let b = 0; b < batch; b++) {
        const bh = b * heads + h;
        const qo = bh * dk + s * half;
        for (let t = 0; t < k; t++) {
          const g = grad[bh * k + t]!;
          if (g === 0) continue;
          const id = ids[bh * k + t]!;
          const row = K + (s === 0 ? Math.floor(id / n) : id % n) * half;
          for (let c = 0; c < half; c++) {
            dq[qo + c] = dq[qo + c]! + g * subkeys[row + c]!;
            dkeys[row + c] = dkeys[row + c]! + g * queries[qo + c]!;
          }
        }
      }
    }
  }
}
