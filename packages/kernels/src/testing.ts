/**
 * Test data shared by this package's tests (not exported from index.ts): a small seeded LCG and
 * random embedding-bag batches with padding (-1) and a few hot rows, so duplicated ids within
 * and across bags are common.
 */
import * as tf from '@tensorflow/tfjs-core';

/** uniform [0, 1) from a 32-bit LCG (Numerical Recipes constants) */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** ids [B, K] (a `pad` share of -1, a `hot` share from rows 0..hotRows-1), weights [B, K], gOut [B, dv] */
export function bagBatch(seed: number, N: number, B: number, K: number, dv: number, mix = { pad: 0.05, hot: 0.2, hotRows: 4 }) {
  const r = rng(seed);
  const ids = Int32Array.from({ length: B * K }, () => {
    const u = r();
    return u < mix.pad ? -1 : u < mix.pad + mix.hot ? Math.floor(r() * mix.hotRows) : Math.floor(r() * N);
  });
  const w = Float32Array.from({ length: B * K }, () => r() * 2 - 1);
  const gOut = Float32Array.from({ length: B * dv }, () => r() * 2 - 1);
  return { ids, w, gOut };
}

/** max |a − b| / max |b|: the error on the scale of the data (lengths must match) */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  let s = 1e-12;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return m / s;
}

/** A float32 tensor of uniform values in [lo, hi) from rng(seed). */
export function randTensor(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => lo + r() * (hi - lo)),
    shape,
  );
}
