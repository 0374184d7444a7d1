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
