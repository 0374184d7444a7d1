import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { svd } from './svd';
import { rank1, summedCores, tuckerAuxLoss } from './tucker';

const lcg = (seed: number) => {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 4294967296) * 2 - 1;
  };
};

beforeAll(async () => {
  await initBackend({ log: false });
});

describe('svd of small cores', () => {
  it('U diag(s) Tᵀ reconstructs C; s descending and ≥ 0; vectors unit length', () => {
    const r0 = lcg(1);
    for (const r of [1, 2, 3, 4, 6]) {
      for (let trial = 0; trial < 20; trial++) {
        const c = Float64Array.from({ length: r * r }, () => r0());
        const d = svd(c, r);
        for (let i = 1; i < r; i++) expect(d.s[i]!).toBeLessThanOrEqual(d.s[i - 1]! + 1e-12);
        for (let i = 0; i < r; i++) expect(Math.hypot(...d.t[i]!)).toBeCloseTo(1, 10);
        for (let a = 0; a < r; a++) {
          for (let b = 0; b < r; b++) {
            let x = 0;
            for (let i = 0; i < r; i++) x += d.u[i]![a]! * d.s[i]! * d.t[i]![b]!;
            expect(x).toBeCloseTo(c[a * r + b]!, 9);
          }
        }
      }
    }
  });

  it('rank1 keeps the sign closest to the previous factors', () => {
    const c = Float64Array.of(2, 1, 1, 3);
    const first = rank1(c, 1, 2);
    const flipped = rank1(c, 1, 2, { u: first.u.map((x) => -x), t: first.t.map((x) => -x) });
    expect(Array.from(flipped.u)).toEqual(Array.from(first.u).map((x) => -x));
    expect(Array.from(rank1(c, 1, 2, first).u)).toEqual(Array.from(first.u));
  });
});

describe('Tucker auxiliary loss', () => {
  // closed form for 2×2: λ1,2² = (‖C‖² ± √(‖C‖⁴ − 4 det²)) / 2
  const lambda2 = (c: number[]) => {
    const f = c.reduce((a, x) => a + x * x, 0);
    const det = c[0]! * c[3]! - c[1]! * c[2]!;
    return Math.sqrt(Math.max(0, (f - Math.sqrt(Math.max(0, f * f - 4 * det * det))) / 2));
  };

  it('equals α/(r−1)·mean_h max(0, λ2 − τ)² of the summed cores (closed-form 2×2 SVD)', () => {
    const data = [0.9, 0.3, 0.2, 0.8, 0.1, -0.2, 0.4, 0.05, 0.3, 0.1, 0.1, 0.6, 0.2, 0.5, 0.4, 0.3]; // [Hc 2, H 2, 2, 2]
    const cores = tf.tensor4d(data, [2, 2, 2, 2]);
    const [alpha, tau] = [0.001, 0.15];
    const cbar = summedCores(Float32Array.from(data), 2, 2, 2);
    let want = 0;
    for (let h = 0; h < 2; h++) want += Math.max(0, lambda2(Array.from(cbar.subarray(h * 4, h * 4 + 4))) - tau) ** 2;
    want = (alpha / 1) * (want / 2);
    expect(want).toBeGreaterThan(0);
    expect(tuckerAuxLoss(cores, alpha, tau).dataSync()[0]).toBeCloseTo(want, 9);
    expect(tuckerAuxLoss(cores, 0, tau).dataSync()[0]).toBe(0);
  });

  it('its gradient matches finite differences, and is the same for every core', () => {
    const r0 = lcg(7);
    const data = Float32Array.from({ length: 2 * 3 * 3 * 3 }, () => r0());
    const cores = tf.tensor4d(data, [2, 3, 3, 3]);
    const f = (x: tf.Tensor) => tuckerAuxLoss(x as tf.Tensor4D, 1, 0.05);
    const g = tf.grad(f)(cores).dataSync();
    const eps = 1e-3;
    for (const i of [0, 5, 13, 26, 27 + 4]) {
      const plus = Float32Array.from(data);
      const minus = Float32Array.from(data);
      plus[i]! += eps;
      minus[i]! -= eps;
      const fd = (f(tf.tensor4d(plus, [2, 3, 3, 3])).dataSync()[0]! - f(tf.tensor4d(minus, [2, 3, 3, 3])).dataSync()[0]!) / (2 * eps);
      expect(g[i]!).toBeCloseTo(fd, 2);
    }
    for (let i = 0; i < 27; i++) expect(g[i]).toBe(g[27 + i]);
  });
});
