import { ConfigError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bruteForceTopK } from './brute-force';
import { ProductKeys } from './product-keys';
import { normalizeQueries, normalizeSubkeys } from './query-norm';
import { subkeyInitBound } from './subkeys';

describe('ProductKeys', () => {
  beforeAll(async () => {
    await initBackend({ log: false });
  });

  it.each([
    ['meta', 1 / Math.sqrt(64)],
    ['xlm', 1 / Math.sqrt(32)],
  ] as const)('%s init: uniform within ±bound, filling the range, seeded', (init, bound) => {
    expect(subkeyInitBound(init, 64)).toBeCloseTo(bound, 12);
    const a = new ProductKeys({ heads: 2, numKeys: 64, keyDim: 64, topK: 4, keyInit: init, seed: 3 });
    const b = new ProductKeys({ heads: 2, numKeys: 64, keyDim: 64, topK: 4, keyInit: init, seed: 3 });
    const v = a.subkeys.dataSync();
    expect(a.subkeys.shape).toEqual([2, 2, 64, 32]);
    expect(Math.max(...v)).toBeLessThanOrEqual(bound);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-bound);
    expect(Math.max(...v)).toBeGreaterThan(0.95 * bound);
    expect(Array.from(b.subkeys.dataSync())).toEqual(Array.from(v));
    expect(a.slots).toBe(4096);
    a.dispose();
    b.dispose();
  });

  it('query normalisations act per half', () => {
    const q = tf.tensor3d([[[3, 4, 1, 1, 1, 5, 0, 0]]]); // B=1, H=1, dk=8: halves [3,4,1,1], [1,5,0,0]
    const l2 = normalizeQueries(q, 'l2').arraySync()[0]![0]!;
    expect(Math.hypot(...l2.slice(0, 4))).toBeCloseTo(1, 5);
    expect(Math.hypot(...l2.slice(4))).toBeCloseTo(1, 5);
    const ln = normalizeQueries(q, 'layernorm').arraySync()[0]![0]!;
    for (const h of [ln.slice(0, 4), ln.slice(4)]) {
      const mean = h.reduce((x, y) => x + y) / 4;
      expect(mean).toBeCloseTo(0, 5);
      expect(h.reduce((x, y) => x + (y - mean) ** 2, 0) / 4).toBeCloseTo(1, 3);
    }
    expect(normalizeQueries(q, 'none')).toBe(q);
    const keys = tf.tensor4d([[[[3, 4]], [[0, 2]]]]); // [1, 2, 1, 2]
    expect(normalizeSubkeys(keys, 'qknorm').arraySync()[0]![0]![0]![0]).toBeCloseTo(0.6, 5);
    expect(normalizeSubkeys(keys, 'l2')).toBe(keys);
  });

  it('qknorm search equals the brute force over normalised queries and keys', () => {
    const pk = new ProductKeys({ heads: 3, numKeys: 20, keyDim: 16, topK: 5, queryNorm: 'qknorm', seed: 1 });
    const q = tf.randomNormal([4, 3, 16], 0, 1, 'float32', 2) as tf.Tensor3D;
    const { scores, ids } = pk.search(q);
    const qn = normalizeQueries(q, 'qknorm').dataSync() as Float32Array;
    const kn = normalizeSubkeys(pk.subkeys, 'qknorm').dataSync() as Float32Array;
    const want = bruteForceTopK(qn, kn, { batch: 4, heads: 3, n: 20, dk: 16, k: 5 });
    expect(Array.from(ids.dataSync())).toEqual(Array.from(want.ids));
    const s = scores.dataSync();
    want.scores.forEach((w, i) => expect(s[i]).toBeCloseTo(w, 5));
    // cosine halves: every score ≤ 2
    expect(Math.max(...s)).toBeLessThanOrEqual(2 + 1e-5);
  });

  it('trains: gradients flow through the normalisation to queries and sub-keys', () => {
    const pk = new ProductKeys({ heads: 2, numKeys: 16, keyDim: 8, topK: 4, queryNorm: 'layernorm', seed: 5 });
    const q = tf.variable(tf.randomNormal([8, 2, 8], 0, 1, 'float32', 6));
    const opt = tf.train.sgd(0.1);
    const objective = () => tf.neg(tf.mean(pk.search(q as unknown as tf.Tensor3D).scores)) as tf.Scalar;
    const before = objective().dataSync()[0]!;
    for (let i = 0; i < 20; i++) opt.minimize(objective, false, [q, pk.subkeys]);
    const after = objective().dataSync()[0]!;
    expect(after).toBeLessThan(before - 0.1); // maximising the top scores works
    pk.dispose();
  });

  it('rejects bad configs naming the field', () => {
    expect(() => new ProductKeys({ heads: 2, numKeys: 16, keyDim: 8, topK: 17 })).toThrow(/^topK: must be in \[1, 16\]/);
    expect(() => new ProductKeys({ heads: 2, numKeys: 16, keyDim: 7, topK: 4 })).toThrow(/^keyDim: must be even/);
    expect(() => new ProductKeys({ heads: 0, numKeys: 16, keyDim: 8, topK: 4 })).toThrow(/^heads:/);
    expect(() => new ProductKeys({ heads: 1, numKeys: 16.5, keyDim: 8, topK: 4 })).toThrow(/^numKeys: must be an integer/);
    expect(() => new ProductKeys({ heads: 1, numKeys: 16, keyDim: 8, topK: 4, queryNorm: 'bn' as never })).toThrow(ConfigError);
    expect(() => new ProductKeys({ heads: 1, numKeys: 16, keyDim: 8, topK: 4, keyInit: 'he' as never })).toThrow(/^keyInit:/);
  });
});
