/**
 * Stand-in K/V vectors for codec tests and the compression bench until the writer feeds real ones:
 * anisotropic Gaussians x = (z ⊙ σ) Q + μ, with z ~ N(0, I) [n, d], per-dim scales σ_i = decay^i
 * (a few directions carry most of the energy, as attention keys do), a random orthogonal Q (so no
 * axis-aligned subspace sees the spectrum directly; what a learned rotation can undo) and a mean μ.
 */
import { mulberry32 } from '@mnemo/core';
import { jacobiSvd } from './pq-svd';

export interface SyntheticOptions {
  /** σ_i = decay^i (default 0.93: σ_79 ≈ 0.003 at d = 80) */
  decay?: number;
  /** |μ| scale (default 0.5) */
  mean?: number;
}

export function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** n anisotropic Gaussian vectors [n, dim], deterministic in `seed` */
export function anisotropicGaussian(n: number, dim: number, seed: number, opts: SyntheticOptions = {}): Float32Array {
  const rng = mulberry32(seed);
  const decay = opts.decay ?? 0.93;
  const q = jacobiSvd(
    Float64Array.from({ length: dim * dim }, () => gaussian(rng)),
    dim,
  ).u; // random orthogonal [dim, dim]
  const mu = Float64Array.from({ length: dim }, () => (opts.mean ?? 0.5) * gaussian(rng));
  const out = new Float32Array(n * dim);
  const z = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) z[i] = gaussian(rng) * decay ** i;
    for (let j = 0; j < dim; j++) {
      let s = mu[j]!;
      for (let i = 0; i < dim; i++) s += z[i]! * q[i * dim + j]!;
      out[r * dim + j] = s;
    }
  }
  return out;
}
