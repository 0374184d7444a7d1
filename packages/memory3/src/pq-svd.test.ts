import { mulberry32 } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { jacobiSvd, procrustes } from './pq-svd';

function randn(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}
function randomMatrix(d: number, seed: number): Float64Array {
  const rng = mulberry32(seed);
  return Float64Array.from({ length: d * d }, () => randn(rng));
}
function matmul(a: Float64Array, b: Float64Array, d: number, transB = false): Float64Array {
  const c = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a[i * d + k]! * (transB ? b[j * d + k]! : b[k * d + j]!);
      c[i * d + j] = s;
    }
  return c;
}
function expectOrthogonal(q: Float64Array, d: number): void {
  const qtq = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += q[k * d + i]! * q[k * d + j]!;
      qtq[i * d + j] = s;
    }
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) expect(qtq[i * d + j]).toBeCloseTo(i === j ? 1 : 0, 9);
}

describe('jacobiSvd', () => {
  it('reconstructs M = U Σ Vᵀ with orthogonal U, V', () => {
    const d = 12;
    const m = randomMatrix(d, 1);
    const { u, s, v } = jacobiSvd(m, d);
    expectOrthogonal(u, d);
    expectOrthogonal(v, d);
    const us = Float64Array.from(u, (x, i) => x * s[i % d]!);
    const back = matmul(us, v, d, true);
    for (let i = 0; i < d * d; i++) expect(back[i]).toBeCloseTo(m[i]!, 9);
    for (const x of s) expect(x).toBeGreaterThanOrEqual(0);
  });
  it('completes U for a rank-deficient matrix', () => {
    const d = 6;
    const m = new Float64Array(d * d);
    m[0] = 2; // rank 1
    const { u, s } = jacobiSvd(m, d);
    expectOrthogonal(u, d);
    expect([...s].sort((a, b) => b - a)[0]).toBeCloseTo(2, 12);
  });
});

describe('procrustes', () => {
  it('recovers a known rotation: Y = X Q → R = Q', () => {
    const d = 10;
    const n = 200;
    const rng = mulberry32(5);
    const q = jacobiSvd(randomMatrix(d, 9), d).u; // a random orthogonal matrix
    const x = Float64Array.from({ length: n * d }, () => randn(rng));
    const y = new Float64Array(n * d);
    for (let r = 0; r < n; r++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += x[r * d + k]! * q[k * d + j]!;
        y[r * d + j] = s;
      }
    const m = new Float64Array(d * d); // Xᵀ Y
    for (let r = 0; r < n; r++)
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) m[i * d + j] = m[i * d + j]! + x[r * d + i]! * y[r * d + j]!;
    const r = procrustes(m, d);
    for (let i = 0; i < d * d; i++) expect(r[i]).toBeCloseTo(q[i]!, 8);
  });
});
