import { CheckpointError, ValueError, mulberry32 } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { ProductQuantizer, deserializeQuantizer, relativeError, serializeQuantizer, subspaceBounds, trainProductQuantizer } from './pq';
import { anisotropicGaussian, gaussian } from './pq-synthetic';

describe('trainProductQuantizer', () => {
  const dim = 12;
  const x = anisotropicGaussian(600, dim, 1);

  it('is deterministic in its seed and differs across seeds', () => {
    const a = trainProductQuantizer(x, dim, { subspaces: 3, bits: 4, iters: 5, seed: 3 });
    const b = trainProductQuantizer(x, dim, { subspaces: 3, bits: 4, iters: 5, seed: 3 });
    const c = trainProductQuantizer(x, dim, { subspaces: 3, bits: 4, iters: 5, seed: 4 });
    expect(a.codebooks).toEqual(b.codebooks);
    expect(a.codebooks).not.toEqual(c.codebooks);
  });

  it('reconstructs exactly when each subspace holds at most 2^bits distinct points', () => {
    const rng = mulberry32(2);
    const atoms = Array.from({ length: 2 }, () => Float32Array.from({ length: 16 }, () => gaussian(rng))); // 16 points per 3-dim subspace
    const pts = new Float32Array(400 * 6);
    for (let r = 0; r < 400; r++)
      for (let j = 0; j < 2; j++) {
        const a = Math.floor(rng() * 16);
        for (let t = 0; t < 3; t++) pts[r * 6 + j * 3 + t] = atoms[j]![(a + t) % 16]! + a;
      }
    const q = trainProductQuantizer(pts, 6, { subspaces: 2, bits: 4, iters: 20, seed: 1 });
    expect(q.relativeError(pts)).toBeLessThan(1e-10);
  });

  it('error falls with more subspaces and more bits', () => {
    const e2 = trainProductQuantizer(x, dim, { subspaces: 2, bits: 4, iters: 8 }).relativeError(x);
    const e6 = trainProductQuantizer(x, dim, { subspaces: 6, bits: 4, iters: 8 }).relativeError(x);
    const e6b = trainProductQuantizer(x, dim, { subspaces: 6, bits: 6, iters: 8 }).relativeError(x);
    expect(e6).toBeLessThan(e2);
    expect(e6b).toBeLessThan(e6);
    expect(e6b).toBeGreaterThan(0);
  });

  it('a learned rotation (OPQ) lowers the error on rotated anisotropic data, and is orthogonal', () => {
    const d = 16;
    const y = anisotropicGaussian(800, d, 7, { decay: 0.75 });
    const plain = trainProductQuantizer(y, d, { subspaces: 4, bits: 4, iters: 10, seed: 1 });
    const opq = trainProductQuantizer(y, d, { subspaces: 4, bits: 4, iters: 10, seed: 1, rotation: true, rotationIters: 5 });
    const ep = plain.relativeError(y);
    const eo = opq.relativeError(y);
    expect(eo).toBeLessThan(ep * 0.9);
    const r = opq.rotation!;
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += r[k * d + i]! * r[k * d + j]!;
        expect(s).toBeCloseTo(i === j ? 1 : 0, 4);
      }
  });

  it('refuses fewer training vectors than centroids', () => {
    expect(() => trainProductQuantizer(x.subarray(0, 100 * dim), dim, { subspaces: 3, bits: 8 })).toThrow(ValueError);
  });
});

describe('ProductQuantizer', () => {
  it('splits uneven dims into near-equal subspaces and encodes m bytes per vector', () => {
    expect([...subspaceBounds(80, 14)].map((b, i, a) => (i ? b - a[i - 1]! : 0)).slice(1)).toSatisfy((w: number[]) =>
      w.every((v) => v === 5 || v === 6),
    );
    const x = anisotropicGaussian(300, 10, 3);
    const q = trainProductQuantizer(x, 10, { subspaces: 3, bits: 8, iters: 3 });
    expect(q.bytesPerVector).toBe(3);
    expect(q.encode(x).length).toBe(300 * 3);
    expect(relativeError(x, q.decode(q.encode(x)))).toBe(q.relativeError(x));
  });

  it('serialises and refuses corrupt bytes', () => {
    const x = anisotropicGaussian(300, 8, 4);
    const q = trainProductQuantizer(x, 8, { subspaces: 2, bits: 8, iters: 2, rotation: true, rotationIters: 1 });
    const bytes = serializeQuantizer(q);
    const back = deserializeQuantizer(bytes);
    expect(back).toBeInstanceOf(ProductQuantizer);
    expect(back.decode(back.encode(x))).toEqual(q.decode(q.encode(x)));
    expect(() => deserializeQuantizer(bytes.subarray(0, bytes.length - 4), 'meta:codec')).toThrow(/meta:codec.*expected/);
    const bad = bytes.slice();
    bad[0] = 0;
    expect(() => deserializeQuantizer(bad)).toThrow(CheckpointError);
  });
});
