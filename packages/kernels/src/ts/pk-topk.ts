/**
 * Product-key top-k, portable TypeScript kernel (Lample et al. 2019; docs/design.md §1).
 *
 * For each (b, h): q = [q1 | q2] (dk = 2·half), sub-keys K1, K2 ∈ R^{n × half}
 *   s1 = K1 q1, s2 = K2 q2                         // [n], [n]
 *   (a, I1) = topk(s1, k), (b, I2) = topk(s2, k)   // sorted descending
 *   candidates a[u] + b[v], id = I1[u]·n + I2[v]   // k² of them, pruned (b sorted)
 *   final topk(k) over candidates, sorted
 * Tie rule everywhere: higher score first, then lower index / slot id. With that rule the result
 * is exactly the brute-force top-k over all n² slots.
 * Dot products accumulate in float64; scores are returned as float32.
 */

/** Sizes of one product-key search. */
export interface PkDims {
  batch: number; // B
  heads: number; // H
  n: number; // sub-keys per half, N = n²
  dk: number; // query width per head (even)
  k: number; // results per head, k ≤ n
}

export interface PkTopKResult {
  scores: Float32Array; // [B, H, k] descending
  ids: Int32Array; // [B, H, k] slot id i·n + j
}

/**
 * Insert (score, id) into the sorted buffers (descending score, ascending id on ties) of
 * current length `len` and capacity `cap`. Returns the new length.
 */
function insertSorted(sc: Float64Array, id: Int32Array, len: number, cap: number, s: number, i: number): number {
  let p = len < cap ? len : cap - 1;
  if (len === cap) {
    // full: beat the last one?
    const ls = sc[cap - 1]!;
    if (s < ls || (s === ls && i > id[cap - 1]!)) return len;
  }
  while (p > 0) {
    const ps = sc[p - 1]!;
    if (ps > s || (ps === s && id[p - 1]! < i)) break;
    sc[p] = ps;
    id[p] = id[p - 1]!;
    p--;
  }
  sc[p] = s;
  id[p] = i;
  return len < cap ? len + 1 : len;
}

/**
 * queries: [B, H, dk]; subkeys: [H, 2, n, dk/2] (half 0 = most significant digit).
 * No validation here: `productKeyTopK` validates once at the op level.
 */
export function pkTopKTs(queries: Float32Array, subkeys: Float32Array, d: PkDims): PkTopKResult {
  const { batch, heads, n, dk, k } = d;
  const half = dk >> 1;
  const scores = new Float32Array(batch * heads * k);
  const ids = new Int32Array(batch * heads * k);
  const s1 = new Float64Array(n);
  const s2 = new Float64Array(n);
  const a = new Float64Array(k);
  const b = new Float64Array(k);
  const i1 = new Int32Array(k);
  const i2 = new Int32Array(k);
  const fs = new Float64Array(k);
  const fi = new Int32Array(k);
  for (let bi = 0; bi < batch; bi++) {
    for (let h = 0; h < heads; h++) {
      const qo = (bi * heads + h) * dk;
      const k1o = h * 2 * n * half;
      const k2o = k1o + n * half;
      for (let r = 0; r < n; r++) {
        let x = 0;
        let y = 0;
        const r1 = k1o + r * half;
        const r2 = k2o + r * half;
        for (let c = 0; c < half; c++) {
          x += queries[qo + c]! * subkeys[r1 + c]!;
          y += queries[qo + half + c]! * subkeys[r2 + c]!;
        }
        s1[r] = x;
        s2[r] = y;
      }
      let la = 0;
      let lb = 0;
      for (let r = 0; r < n; r++) {
        la = insertSorted(a, i1, la, k, s1[r]!, r);
        lb = insertSorted(b, i2, lb, k, s2[r]!, r);
      }
      // k² candidates; b is descending, so once a[u]+b[v] < the current k-th best, stop v.
      let lf = 0;
      for (let u = 0; u < k; u++) {
        if (lf === k && a[u]! + b[0]! < fs[k - 1]!) break;
        for (let v = 0; v < k; v++) {
          const s = a[u]! + b[v]!;
          if (lf === k && s < fs[k - 1]!) break;
          lf = insertSorted(fs, fi, lf, k, s, i1[u]! * n + i2[v]!);
        }
      }
      const o = (bi * heads + h) * k;
      for (let t = 0; t < k; t++) {
        scores[o + t] = fs[t]!;
        ids[o + t] = fi[t]!;
      }
    }
  }
  return { scores, ids };
}
