/**
 * Partial top-k selection on the host: the k best of n values in one pass with a small sorted
 * buffer (insertion; O(n) when few values enter it), ordered by value descending, ties → lower key.
 * UltraMem selects 16 of 512 per (token, head) thousands of times a step; a full sort per
 * selection was the layer's largest cost.
 */

/**
 * Writes into `out` (length ≥ k) the positions p ∈ [0, n) of the k largest `sign·value(p)`,
 * best first; ties → lower `key(p)`. Returns the count written (min(k, n)).
 */
export function selectTop(
  n: number,
  k: number,
  value: (p: number) => number,
  key: (p: number) => number,
  out: Int32Array,
  sign = 1,
): number {
  const kk = Math.min(k, n);
  const vals = new Float64Array(kk);
  const keys = new Float64Array(kk);
  let size = 0;
  for (let p = 0; p < n; p++) {
    const v = sign * value(p);
    if (size === kk && v < vals[kk - 1]!) continue; // the common case: not among the best (key not needed)
    const kp = key(p);
    if (size === kk) {
      if (v === vals[kk - 1]! && kp >= keys[kk - 1]!) continue;
    } else size++;
    let i = size - 1;
    while (i > 0 && (vals[i - 1]! < v || (vals[i - 1]! === v && keys[i - 1]! > kp))) {
      vals[i] = vals[i - 1]!;
      keys[i] = keys[i - 1]!;
      out[i] = out[i - 1]!;
      i--;
    }
    vals[i] = v;
    keys[i] = kp;
    out[i] = p;
  }
  return kk;
}

/**
 * `selectTop` over an array slice, without callbacks (the hot loop of pre-selection): positions
 * p ∈ [0, n) of the k largest `sign·vals[offset + p]`, best first; ties → lower p (sign 1) or
 * higher p (sign −1, so the k smallest are the LAST k of the descending, lower-p-first order).
 */
export function selectTopOf(vals: ArrayLike<number>, offset: number, n: number, k: number, out: Int32Array, sign: 1 | -1 = 1): number {
  const kk = Math.min(k, n);
  const best = new Float64Array(kk);
  let size = 0;
  for (let p = 0; p < n; p++) {
    const v = sign * vals[offset + p]!;
    if (size === kk) {
      const last = best[kk - 1]!;
      if (v < last) continue;
      // equal value: a later p loses to the held one for sign 1, wins for sign −1
      if (v === last && sign === 1) continue;
    } else size++;
    let i = size - 1;
    // a later p goes before equal values when sign is −1
    while (i > 0 && (best[i - 1]! < v || (sign === -1 && best[i - 1]! === v))) {
      best[i] = best[i - 1]!;
      out[i] = out[i - 1]!;
      i--;
    }
    best[i] = v;
    out[i] = p;
  }
  return kk;
}
