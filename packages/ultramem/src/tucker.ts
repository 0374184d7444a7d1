/**
 * The Tucker cores of TDQKR (docs/design.md §3.3–3.5): the rank-1 approximation that drives the
 * pre-selection, and the auxiliary loss that keeps the summed core near rank 1.
 *
 *   cores C^(c) [Hc, H, r, r],  C̄[h] = Σ_c C^(c)[h] = U Λ Tᵀ  (λ1 ≥ … ≥ λr)
 *   rank-1:   C̄[h] ≈ λ1 u tᵀ,  u = U[:, 0], t = T[:, 0]     (no gradient)
 *   L_aux = α/(r−1) · mean_h Σ_{i≥2} max(0, λ_i − τ)²
 *   ∂λ_i/∂C̄ = u_i t_iᵀ, so ∂L_aux/∂C^(c)[h] = 2α/((r−1)H) Σ_{i≥2} max(0, λ_i − τ) u_i t_iᵀ
 */
import * as tf from '@tensorflow/tfjs-core';
import { svd } from './svd';

/** C̄[h] = Σ_c C^(c)[h] from cores [Hc, H, r, r] (host data), row-major [H, r, r]. */
export function summedCores(cores: Float32Array, Hc: number, H: number, r: number): Float64Array {
  const out = new Float64Array(H * r * r);
  for (let c = 0; c < Hc; c++) for (let i = 0; i < H * r * r; i++) out[i] = out[i]! + cores[c * H * r * r + i]!;
  return out;
}

/**
 * Leading singular vectors (u, t) [H, r] of each head's summed core, with the sign rule of the
 * reference: flip (u, t) together when that brings them closer (L1) to `prev`.
 */
export function rank1(cbar: Float64Array, H: number, r: number, prev?: { u: Float64Array; t: Float64Array }) {
  const u = new Float64Array(H * r);
  const t = new Float64Array(H * r);
  for (let h = 0; h < H; h++) {
    const d = svd(cbar.subarray(h * r * r, (h + 1) * r * r), r);
    let uu = d.u[0]!;
    let tt = d.t[0]!;
    if (prev) {
      let same = 0;
      let flip = 0;
      for (let k = 0; k < r; k++) {
        same += Math.abs(uu[k]! - prev.u[h * r + k]!) + Math.abs(tt[k]! - prev.t[h * r + k]!);
        flip += Math.abs(-uu[k]! - prev.u[h * r + k]!) + Math.abs(-tt[k]! - prev.t[h * r + k]!);
      }
      if (flip < same) {
        uu = uu.map((x) => -x);
        tt = tt.map((x) => -x);
      }
    }
    u.set(uu, h * r);
    t.set(tt, h * r);
  }
  return { u, t };
}

/** L_aux of cores [Hc, H, r, r] as a differentiable scalar (0 when r = 1 or α = 0). */
export function tuckerAuxLoss(cores: tf.Tensor4D, alpha: number, tau: number): tf.Scalar {
  const [Hc, H, r] = cores.shape as [number, number, number, number];
  if (r < 2 || alpha === 0) return tf.scalar(0);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor4D;
    const cbar = summedCores(x.dataSync() as Float32Array, Hc, H, r);
    const grad = new Float32Array(H * r * r); // ∂L/∂C̄, the same for every core
    let loss = 0;
    for (let h = 0; h < H; h++) {
      const d = svd(cbar.subarray(h * r * r, (h + 1) * r * r), r);
      for (let i = 1; i < r; i++) {
        const excess = Math.max(0, d.s[i]! - tau);
        loss += excess * excess;
        const g = (2 * alpha * excess) / ((r - 1) * H);
        for (let a = 0; a < r; a++)
          for (let b = 0; b < r; b++) grad[h * r * r + a * r + b] = grad[h * r * r + a * r + b]! + g * d.u[i]![a]! * d.t[i]![b]!;
      }
    }
    return {
      value: tf.scalar((alpha / (r - 1)) * (loss / H)),
      gradFunc: (dy: tf.Tensor) => {
        const k = dy.dataSync()[0]!;
        const one = tf.tensor3d(
          grad.map((v) => v * k),
          [H, r, r],
        );
        return tf.tidy(() => tf.tile(tf.expandDims(one, 0), [Hc, 1, 1, 1]));
      },
    };
  });
  return op(cores) as tf.Scalar;
}
