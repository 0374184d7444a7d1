/**
 * Fused dense AdamW and Σ g² (dense-adamw.ts): the native kernel against the tfjs-ops path and a
 * float64 reference, on sizes that run on one thread and on all, with clipping and weight decay;
 * no tensor leaks; the wasm dense path takes the tfjs ops.
 *
 * Tolerance: |native − ops| ≤ 1e-6 · (|value| + 1) (the same float32 operations in the same order;
 * FMA contraction may differ by an ulp of the terms, which are O(1) here). Σ g²: native sums in
 * double across blocks (≤ 1e-6 relative); tfjs's float32 sum of 300 k squares drifts ~6e-5.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denseAdamW, fusedDenseOptimizer, initBackend, nativeDense, setDensePath, sumOfSquares } from './index';
import { rng } from './testing';

const native = nativeDense();
if (!native.addon) console.log(`[dense-adamw.test] native fused AdamW skipped: ${native.reason}`);

const rand = (n: number, seed: number, lo = -1) => {
  const r = rng(seed);
  return tf.tensor1d(Float32Array.from({ length: n }, () => lo + r() * (1 - lo)));
};

function stepOn(path: 'native' | 'wasm', n: number, p: Parameters<typeof denseAdamW>[4]) {
  setDensePath(path);
  const x = rand(n, 1);
  const m = rand(n, 2);
  const v = rand(n, 3, 0); // v ≥ 0
  const g = rand(n, 4);
  const r = denseAdamW(x, m, v, g, p);
  const out = { x: r.x.dataSync().slice(), m: r.m.dataSync().slice(), v: r.v.dataSync().slice() };
  const inputsKept = [x, m, v, g].every((t) => !t.isDisposed);
  for (const t of [x, m, v, g, r.x, r.m, r.v]) t.dispose();
  return { ...out, inputsKept, fused: path === 'native' && fusedDenseOptimizer() };
}

beforeAll(async () => {
  await initBackend();
});

afterAll(() => {
  setDensePath();
});

describe('denseAdamW', () => {
  const p = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, t: 7, scale: 0.5 };

  it.runIf(native.addon)('natively equals the tfjs ops, on one thread and on all (1 k and 3 M values)', () => {
    for (const n of [1000, 3_000_001]) {
      const a = stepOn('native', n, p);
      const b = stepOn('wasm', n, p);
      expect(a.fused).toBe(true);
      expect(a.inputsKept && b.inputsKept).toBe(true);
      for (const k of ['x', 'm', 'v'] as const) {
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[k][i]! - b[k][i]!) / (Math.abs(b[k][i]!) + 1));
        expect(worst, `${k}, n ${n}`).toBeLessThan(1e-6);
      }
    }
  });

  it('matches the update in float64 on either path', () => {
    for (const path of native.addon ? (['native', 'wasm'] as const) : (['wasm'] as const)) {
      const n = 257;
      const got = stepOn(path, n, p);
      const [x, m, v, g] = [rand(n, 1), rand(n, 2), rand(n, 3, 0), rand(n, 4)].map((t) => {
        const d = Array.from(t.dataSync());
        t.dispose();
        return d;
      });
      for (let i = 0; i < n; i++) {
        const gi = p.scale * g![i]!;
        const mi = p.beta1 * m![i]! + (1 - p.beta1) * gi;
        const vi = p.beta2 * v![i]! + (1 - p.beta2) * gi * gi;
        const xi =
          (1 - p.lr * p.weightDecay) * x![i]! - ((p.lr / (1 - p.beta1 ** p.t)) * mi) / (Math.sqrt(vi / (1 - p.beta2 ** p.t)) + p.eps);
        expect(got.m[i]).toBeCloseTo(mi, 6);
        expect(got.v[i]).toBeCloseTo(vi, 6);
        expect(got.x[i]).toBeCloseTo(xi, 5);
      }
    }
  });

  it.runIf(native.addon)('MNEMO_FUSED_ADAMW=0 runs the tfjs ops on the native path', () => {
    setDensePath('native');
    expect(fusedDenseOptimizer()).toBe(true);
    process.env.MNEMO_FUSED_ADAMW = '0';
    try {
      expect(fusedDenseOptimizer()).toBe(false);
      const off = stepOn('native', 1000, p);
      const ops = stepOn('wasm', 1000, p);
      expect(off.fused).toBe(false);
      // the tfjs ops on either dense path: the same elementwise kernels, bit for bit
      expect(Array.from(off.x)).toEqual(Array.from(ops.x));
      expect(Array.from(off.v)).toEqual(Array.from(ops.v));
    } finally {
      delete process.env.MNEMO_FUSED_ADAMW;
    }
    setDensePath('native');
    expect(fusedDenseOptimizer()).toBe(true);
  });

  it('leaves no tensor behind, and the wasm dense path runs the tfjs ops', () => {
    const before = tf.memory().numTensors;
    stepOn('wasm', 100, p);
    expect(fusedDenseOptimizer()).toBe(false);
    if (native.addon) stepOn('native', 100, p);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('sumOfSquares', () => {
  it('is Σ t² over every tensor on either path (in double across blocks)', () => {
    const ts = [rand(5, 1), rand(300_001, 2), tf.tensor2d([[3, 4]])];
    let want = 0;
    for (const t of ts) for (const x of t.dataSync()) want += x * x;
    for (const path of native.addon ? (['native', 'wasm'] as const) : (['wasm'] as const)) {
      setDensePath(path);
      expect(Math.abs(sumOfSquares(ts) / want - 1), path).toBeLessThan(path === 'native' ? 1e-6 : 3e-4);
    }
    expect(sumOfSquares([])).toBe(0);
    for (const t of ts) t.dispose();
  });
});
