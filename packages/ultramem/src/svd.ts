/**
 * Singular value decomposition of small square matrices (the r × r Tucker cores, r ≤ 8), on the
 * host in float64: Jacobi eigen-decomposition of CᵀC = T Λ² Tᵀ, then U = C T Λ⁻¹.
 * tfjs has no SVD; for r ≤ 8 this costs microseconds.
 */

export interface Svd {
  /** left singular vectors, column-major: u[i] is the i-th vector (length r) */
  u: Float64Array[];
  /** singular values, descending */
  s: Float64Array;
  /** right singular vectors: t[i] is the i-th vector */
  t: Float64Array[];
}

/** SVD of the r × r row-major matrix `c`. */
export function svd(c: ArrayLike<number>, r: number): Svd {
  // A = CᵀC (symmetric), eigenvectors V by cyclic Jacobi rotations
  const A = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += c[k * r + i]! * c[k * r + j]!;
      A[i * r + j] = s;
    }
  }
  const V = new Float64Array(r * r);
  for (let i = 0; i < r; i++) V[i * r + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < r; p++) for (let q = p + 1; q < r; q++) off += A[p * r + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < r; p++) {
      for (let q = p + 1; q < r; q++) {
        const apq = A[p * r + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * r + q]! - A[p * r + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1);
        const sn = t * cs;
        for (let k = 0; k < r; k++) {
          // A ← Jᵀ A J on rows/columns p, q
          const akp = A[k * r + p]!;
          const akq = A[k * r + q]!;
          A[k * r + p] = cs * akp - sn * akq;
          A[k * r + q] = sn * akp + cs * akq;
        }
        for (let k = 0; k < r; k++) {
          const apk = A[p * r + k]!;
          const aqk = A[q * r + k]!;
          A[p * r + k] = cs * apk - sn * aqk;
          A[q * r + k] = sn * apk + cs * aqk;
        }
        for (let k = 0; k < r; k++) {
          const vkp = V[k * r + p]!;
          const vkq = V[k * r + q]!;
          V[k * r + p] = cs * vkp - sn * vkq;
          V[k * r + q] = sn * vkp + cs * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: r }, (_, i) => i).sort((a, b) => A[b * r + b]! - A[a * r + a]!);
  const s = new Float64Array(r);
  const u: Float64Array[] = [];
  const tv: Float64Array[] = [];
  order.forEach((col, i) => {
    s[i] = Math.sqrt(Math.max(0, A[col * r + col]!));
    const t = Float64Array.from({ length: r }, (_, k) => V[k * r + col]!);
    const uu = new Float64Array(r);
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let j = 0; j < r; j++) acc += c[k * r + j]! * t[j]!;
      uu[k] = acc;
    }
    const norm = Math.hypot(...uu);
    if (norm > 1e-300) for (let k = 0; k < r; k++) uu[k] = uu[k]! / norm;
    else uu[i] = 1; // a zero singular value: any unit vector (orthogonality is not needed here)
    u.push(uu);
    tv.push(t);
  });
  return { u, s, t: tv };
}
