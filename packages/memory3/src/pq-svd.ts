/**
 * A small SVD for the product quantiser's learned rotation (OPQ, docs/design.md §4.3): one-sided
 * Jacobi (Hestenes) on a square d×d matrix, and the orthogonal Procrustes solution built on it.
 *
 *   M = U Σ Vᵀ        M [d, d] row-major; U, V orthogonal [d, d]; Σ ≥ 0 [d]
 *   argmin_R ‖X R − Y‖_F over orthogonal R  =  U Vᵀ   with  Xᵀ Y = U Σ Vᵀ
 *
 * Jacobi rotates pairs of columns of A = M until all are orthogonal (A = U Σ), accumulating the
 * rotations in V. d ≤ a few hundred: O(d³) per sweep, a handful of sweeps.
 */

export interface Svd {
  /** [d, d] row-major, columns = left singular vectors */
  u: Float64Array;
  /** [d] */
  s: Float64Array;
  /** [d, d] row-major, columns = right singular vectors */
  v: Float64Array;
}

/** SVD of the square matrix `m` [d, d] (row-major). */
export function jacobiSvd(m: ArrayLike<number>, d: number, opts: { maxSweeps?: number; tol?: number } = {}): Svd {
  const a = Float64Array.from(m); // [d, d], columns get orthogonalised in place
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  const tol = opts.tol ?? 1e-12;
  for (let sweep = 0; sweep < (opts.maxSweeps ?? 60); sweep++) {
    let rotated = false;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < d; i++) {
          const ap = a[i * d + p]!;
          const aq = a[i * d + q]!;
          alpha += ap * ap;
          beta += aq * aq;
          gamma += ap * aq;
        }
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotateColumns(a, d, p, q, c, s);
        rotateColumns(v, d, p, q, c, s);
      }
    }
    if (!rotated) break;
  }
  const s = new Float64Array(d);
  const u = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let n = 0;
    for (let i = 0; i < d; i++) n += a[i * d + j]! ** 2;
    s[j] = Math.sqrt(n);
    if (s[j]! > 0) for (let i = 0; i < d; i++) u[i * d + j] = a[i * d + j]! / s[j]!;
  }
  completeBasis(u, d, s);
  return { u, s, v };
}

function rotateColumns(a: Float64Array, d: number, p: number, q: number, c: number, s: number): void {
  for (let i = 0; i < d; i++) {
    const ap = a[i * d + p]!;
    const aq = a[i * d + q]!;
    a[i * d + p] = c * ap - s * aq;
    a[i * d + q] = s * ap + c * aq;
  }
}

/** Columns of `u` whose singular value is ~0 are undefined: fill them by Gram–Schmidt so U stays orthogonal. */
function completeBasis(u: Float64Array, d: number, s: Float64Array): void {
  const smax = Math.max(...s, 0);
  const defined = Array.from(s, (x) => x > 0 && x > smax * 1e-12);
  for (let j = 0; j < d; j++) {
    if (defined[j]) continue;
    for (let e = 0; e < d && !defined[j]; e++) {
      const col = new Float64Array(d);
      col[e] = 1;
      for (let k = 0; k < d; k++) {
        if (!defined[k]) continue;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += col[i]! * u[i * d + k]!;
        for (let i = 0; i < d; i++) col[i] = col[i]! - dot * u[i * d + k]!;
      }
      const n = Math.sqrt(col.reduce((acc, x) => acc + x * x, 0));
      if (n < 1e-6) continue;
      for (let i = 0; i < d; i++) u[i * d + j] = col[i]! / n;
      s[j] = 0;
      defined[j] = true;
    }
  }
}

/** The orthogonal R [d, d] minimising ‖X R − Y‖_F, given M = Xᵀ Y [d, d]: R = U Vᵀ. */
export function procrustes(m: ArrayLike<number>, d: number): Float64Array {
  const { u, v } = jacobiSvd(m, d);
  const r = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += u[i * d + k]! * v[j * d + k]!;
      r[i * d + j] = acc;
    }
  return r;
}
