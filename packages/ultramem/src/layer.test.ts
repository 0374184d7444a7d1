import { initBackend } from '@mnemo/kernels';
import { MemoryPool, type ProjectionReadout } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseUltraMemConfig, ultraMemShape } from './config';
import { ultraMemFlops, ultraMemParams } from './flops';
import { UltraMemLayer } from './layer';

beforeAll(async () => {
  await initBackend({ log: false });
});

const base = { inputDim: 8, numKeys: 6, heads: 2, topM: 3, keyDim: 4, valueDim: 4, rank: 2, cores: 2, expansion: 4, seed: 3 };

describe('UltraMemLayer', () => {
  it('y = W_projᵀ [block p: concat_c Σ_j ŝ^(c)_j V^(c)[row_j]]: pool first, project after', () => {
    const layer = new UltraMemLayer(base);
    const { poolRows, poolDim } = ultraMemShape(layer.config);
    expect([layer.pool.rows, layer.pool.dim]).toEqual([6 * 6 * 2, 2]);
    const x = tf.randomNormal([5, 8], 0, 1, 'float32', 1) as tf.Tensor2D;
    const y = layer.apply(x).dataSync();
    const t = layer.inspect(x); // [B, G = E·cores, H, m]
    expect([t.batch, t.bags, t.heads, t.k]).toEqual([5, 8, 2, 3]);
    const V = layer.pool.readRows(Int32Array.from({ length: poolRows }, (_, i) => i));
    const W = (layer.readout as ProjectionReadout).wo.dataSync(); // [E·dv, D]
    const K = t.heads * t.k;
    for (let b = 0; b < 5; b++) {
      const m = new Float64Array(t.bags * poolDim); // [E·cores·dv/cores]
      for (let g = 0; g < t.bags; g++) {
        for (let j = 0; j < K; j++) {
          const id = t.ids[(b * t.bags + g) * K + j]!;
          if (id < 0) continue;
          for (let d = 0; d < poolDim; d++) m[g * poolDim + d]! += t.weights[(b * t.bags + g) * K + j]! * V[id * poolDim + d]!;
        }
      }
      for (let o = 0; o < 8; o++) {
        let s = 0;
        for (let i = 0; i < m.length; i++) s += m[i]! * W[i * 8 + o]!;
        expect(y[b * 8 + o]!).toBeCloseTo(s, 4);
      }
      // each read lands in exactly one block per core chunk
      for (let c = 0; c < 2; c++) {
        let reads = 0;
        for (let p = 0; p < 4; p++) for (let j = 0; j < K; j++) if (t.ids[(b * t.bags + p * 2 + c) * K + j]! >= 0) reads++;
        expect(reads).toBe(K);
      }
    }
    layer.dispose();
  });

  it('trains: values, keys, cores and projection move; the loss falls; the aux loss is a scalar ≥ 0', () => {
    const layer = new UltraMemLayer({ ...base, numKeys: 8 }, { poolOptions: { optimizer: { kind: 'adam', lr: 1e-2 } } });
    const x = tf.randomNormal([32, 8], 0, 1, 'float32', 4) as tf.Tensor2D;
    const target = tf.randomNormal([32, 8], 0, 1, 'float32', 5);
    const opt = tf.train.adam(1e-2);
    const loss = () => tf.add(tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }), target))), layer.auxLoss()!) as tf.Scalar;
    const first = loss().dataSync()[0]!;
    const core0 = Array.from(layer.addressor.variables().tuckerCore!.dataSync());
    for (let i = 0; i < 30; i++) opt.minimize(loss, false, layer.trainableVariables());
    expect(loss().dataSync()[0]!).toBeLessThan(first * 0.9);
    expect(Array.from(layer.addressor.variables().tuckerCore!.dataSync())).not.toEqual(core0);
    expect(layer.auxLoss()!.dataSync()[0]!).toBeGreaterThanOrEqual(0);
    const before = tf.memory().numTensors;
    layer.dispose();
    expect(tf.memory().numTensors).toBeLessThan(before);
  });

  it('product-key scoring on the expanded grid (the IVE rung without TDQKR) and validation by field', () => {
    const pk = new UltraMemLayer({ ...base, scoring: 'pk', cores: 1 });
    expect(pk.pool.rows).toBe(36);
    expect(pk.apply(tf.randomNormal([2, 8])).shape).toEqual([2, 8]);
    pk.dispose();
    expect(() => parseUltraMemConfig({ ...base, expansion: 3 })).toThrow(/^expansion: must be a perfect square/);
    expect(() => parseUltraMemConfig({ ...base, valueDim: 5 })).toThrow(/^valueDim: 5 must be divisible by cores/);
    expect(() => parseUltraMemConfig({ ...base, topM: 13 })).toThrow(/^topM:/);
    expect(() => new UltraMemLayer(base, { pool: new MemoryPool({ rows: 36, dim: 4 }) })).toThrow(
      /^pool: is 36×4; this UltraMem layer needs 72×2/,
    );
    const c = parseUltraMemConfig(base);
    const layer = new UltraMemLayer(c);
    const n = Object.values(layer.variables()).reduce((s, v) => s + v.size, 0);
    expect(n).toBe(ultraMemParams(c));
    expect(ultraMemFlops(c)).toBeGreaterThan(0);
    layer.dispose();
  });
});
