import { initBackend } from '@mnemo/kernels';
import { explicitKeys } from '@mnemo/product-keys';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLayer } from './memory-layer';
import { MemoryPool } from './pool';

const allRows = (N: number) => Int32Array.from({ length: N }, (_, i) => i);

/** Dense brute-force memory in float64: softmax over the TRUE top-k of all N keys, then the bag. */
function denseMemory(layer: MemoryLayer, x: Float32Array, B: number): Float64Array {
  const c = layer.config;
  const [D, H, dk, n, k, dv] = [c.inputDim, c.heads, c.keyDim, c.numKeys, c.topK, c.valueDim];
  const N = n * n;
  const half = dk / 2;
  const wq = layer.wq.dataSync();
  const bq = layer.bq.dataSync();
  const sub = Float32Array.from(layer.keys.subkeys.dataSync());
  if (c.queryNorm === 'qknorm') {
    for (let r = 0; r < sub.length / half; r++) {
      let s = 0;
      for (let j = 0; j < half; j++) s += sub[r * half + j]! ** 2;
      for (let j = 0; j < half; j++) sub[r * half + j]! /= Math.sqrt(s + 1e-6);
    }
  }
  const keys = explicitKeys(sub, H, n, dk); // [H, N, dk]
  const V = layer.pool instanceof MemoryPool ? layer.pool.readRows(allRows(N)) : new Float32Array();
  const out = new Float64Array(B * D);
  for (let b = 0; b < B; b++) {
    const m = new Float64Array(dv);
    for (let h = 0; h < H; h++) {
      const q = new Float64Array(dk);
      for (let o = 0; o < dk; o++) {
        let s = bq[h * dk + o]!;
        for (let i = 0; i < D; i++) s += x[b * D + i]! * wq[i * H * dk + h * dk + o]!;
        q[o] = s;
      }
      if (c.queryNorm === 'qknorm') {
        for (const off of [0, half]) {
          let s = 0;
          for (let j = 0; j < half; j++) s += q[off + j]! ** 2;
          for (let j = 0; j < half; j++) q[off + j]! /= Math.sqrt(s + 1e-6);
        }
      }
      const scores = Array.from({ length: N }, (_, slot) => {
        let s = 0;
        for (let o = 0; o < dk; o++) s += q[o]! * keys[(h * N + slot) * dk + o]!;
        return { slot, s };
      }).sort((u, v) => v.s - u.s || u.slot - v.slot);
      const top = scores.slice(0, k);
      const mx = top[0]!.s;
      const z = top.reduce((a, t) => a + Math.exp(t.s - mx), 0);
      for (const t of top) {
        const w = c.scoreFn === 'softmax' ? Math.exp(t.s - mx) / z : c.scoreFn === 'relu' ? Math.max(0, t.s) : t.s;
        for (let d = 0; d < dv; d++) m[d]! += w * V[t.slot * dv + d]!;
      }
    }
    if (c.gating === 'silu') {
      const w1 = layer.w1!.dataSync();
      const b1 = layer.b1!.dataSync();
      const w2 = layer.w2!.dataSync();
      const b2 = layer.b2!.dataSync();
      const g = new Float64Array(dv);
      for (let d = 0; d < dv; d++) {
        let s = b1[d]!;
        for (let i = 0; i < D; i++) s += x[b * D + i]! * w1[i * dv + d]!;
        g[d] = m[d]! * (s / (1 + Math.exp(-s)));
      }
      for (let o = 0; o < D; o++) {
        let s = b2[o]!;
        for (let d = 0; d < dv; d++) s += g[d]! * w2[d * D + o]!;
        out[b * D + o] = s;
      }
    } else {
      for (let o = 0; o < D; o++) out[b * D + o] = m[o]!;
    }
  }
  return out;
}

describe('MemoryLayer', () => {
  beforeAll(async () => {
    await initBackend({ log: false });
  });
  const layers: MemoryLayer[] = [];
  afterAll(() => {
    for (const l of layers) l.dispose();
  });

  it.each([
    ['Memory+ (silu gating, qknorm, softmax)', { gating: 'silu', queryNorm: 'qknorm', scoreFn: 'softmax' }],
    ['PKM (no gating, no norm, softmax)', { gating: 'none', queryNorm: 'none', scoreFn: 'softmax' }],
    ['raw scores (UltraMem-style)', { gating: 'silu', queryNorm: 'qknorm', scoreFn: 'none' }],
  ] as const)('equals a dense brute-force memory over all N ≤ 4096 keys: %s', (_name, over) => {
    const layer = new MemoryLayer({ inputDim: 16, numKeys: 64, heads: 2, topK: 8, keyDim: 16, seed: 7, ...over });
    layers.push(layer);
    const B = 12;
    const x = tf.randomNormal([B, 16], 0, 1, 'float32', 3);
    const y = layer.apply(x).dataSync();
    const want = denseMemory(layer, x.dataSync() as Float32Array, B);
    let maxErr = 0;
    for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(y[i]! - want[i]!));
    expect(maxErr).toBeLessThan(1e-5);
    expect(layer.slots).toBe(4096);
  });

  it('gradients equal a dense tfjs reference, and the value table after one SGD step is V − lr·dL/dV', async () => {
    await initBackend({ backend: 'cpu', log: false }); // the dense reference needs tf.gather's gradient
    try {
      const [B, D, n, H, k, dk] = [6, 8, 12, 2, 3, 8];
      const N = n * n;
      const lr = 0.5;
      const layer = new MemoryLayer(
        { inputDim: D, numKeys: n, heads: H, topK: k, keyDim: dk, queryNorm: 'none', gating: 'silu', seed: 11 },
        { poolOptions: { optimizer: { kind: 'sgd', lr } } },
      );
      layers.push(layer);
      const pool = layer.pool as MemoryPool;
      const V0 = pool.readRows(allRows(N)); // [N, dv]
      const x = tf.randomNormal([B, D], 0, 1, 'float32', 5) as tf.Tensor2D;
      const R = tf.randomNormal([B, D], 0, 1, 'float32', 6); // loss = Σ y ⊙ R
      const trace = layer.inspect(x); // the slots this batch reads (fixed for the reference)

      // --- dense reference: V as a dense variable, selection fixed, everything by tfjs autodiff
      const V = tf.variable(tf.tensor2d(V0, [N, D]));
      const vars = layer.variables();
      const idsT = tf.tensor3d(trace.ids, [B, H, k], 'int32');
      const refLoss = () => {
        const q = tf.reshape(tf.add(tf.matMul(x, vars.wq as tf.Tensor2D), vars.bq!), [B, H, dk]);
        const sub = vars.subkeys as tf.Tensor4D; // [H, 2, n, dk/2]
        const perHead = [];
        for (let h = 0; h < H; h++) {
          const idh = tf.reshape(tf.slice(idsT, [0, h, 0], [B, 1, k]), [B * k]);
          const i = tf.floorDiv(idh, tf.scalar(n, 'int32'));
          const j = tf.mod(idh, tf.scalar(n, 'int32'));
          const k1 = tf.reshape(tf.gather(tf.reshape(tf.slice(sub, [h, 0, 0, 0], [1, 1, n, dk / 2]), [n, dk / 2]), i), [B, k, dk / 2]);
          const k2 = tf.reshape(tf.gather(tf.reshape(tf.slice(sub, [h, 1, 0, 0], [1, 1, n, dk / 2]), [n, dk / 2]), j), [B, k, dk / 2]);
          const qh = tf.slice(q, [0, h, 0], [B, 1, dk]); // [B, 1, dk]
          const s = tf.add(
            tf.sum(tf.mul(tf.slice(qh, [0, 0, 0], [B, 1, dk / 2]), k1), -1),
            tf.sum(tf.mul(tf.slice(qh, [0, 0, dk / 2], [B, 1, dk / 2]), k2), -1),
          ); // [B, k]
          perHead.push(tf.softmax(s, -1));
        }
        const w = tf.stack(perHead, 1); // [B, H, k]
        const dense = tf.sum(tf.mul(tf.oneHot(idsT, N), tf.expandDims(w, -1)), [1, 2]); // [B, N]
        const m = tf.matMul(dense, V); // [B, dv]
        const gate = tf.add(tf.matMul(x, vars.w1 as tf.Tensor2D), vars.b1!);
        const y = tf.add(tf.matMul(tf.mul(m, tf.mul(gate, tf.sigmoid(gate))), vars.w2 as tf.Tensor2D), vars.b2!);
        return tf.sum(tf.mul(y, R)) as tf.Scalar;
      };
      const ref = tf.variableGrads(refLoss, [...Object.values(vars), V]);

      // --- finite differences through the real layer (forward only: no value update)
      const layerLoss = () => tf.sum(tf.mul(layer.apply(x), R)) as tf.Scalar;
      const eps = 1e-2;
      const baseIds = Array.from(trace.ids).join();
      for (const name of ['wq', 'w1', 'w2', 'subkeys'] as const) {
        const v = vars[name]!;
        const base = v.dataSync().slice();
        const at = (idx: number, delta: number) => {
          const p = base.slice();
          p[idx]! += delta;
          v.assign(tf.tensor(p, v.shape));
          const loss = layerLoss().dataSync()[0]!;
          const same = Array.from(layer.inspect(x).ids).join() === baseIds;
          v.assign(tf.tensor(base, v.shape));
          return { loss, same };
        };
        // the first coordinates whose ±eps step keeps the selection (a kink is not differentiable)
        let checked = 0;
        for (let idx = 0; idx < base.length && checked < 3; idx++) {
          const p = at(idx, eps);
          const m = at(idx, -eps);
          if (!p.same || !m.same) continue;
          expect(ref.grads[v.name]!.dataSync()[idx], `${name}[${idx}]`).toBeCloseTo((p.loss - m.loss) / (2 * eps), 2);
          checked++;
        }
        expect(checked).toBe(3);
      }

      // --- the layer's own gradients (this backward also applies the sparse SGD step to V)
      const got = tf.variableGrads(layerLoss, Object.values(vars));
      for (const [name, v] of Object.entries(vars)) {
        const a = got.grads[v.name]!.dataSync();
        const b = ref.grads[v.name]!.dataSync();
        let err = 0;
        let scale = 1e-6;
        for (let i = 0; i < a.length; i++) {
          err = Math.max(err, Math.abs(a[i]! - b[i]!));
          scale = Math.max(scale, Math.abs(b[i]!));
        }
        expect(err / scale, `gradient of ${name}`).toBeLessThan(1e-4);
      }
      const gV = ref.grads[V.name]!.dataSync();
      const V1 = pool.readRows(allRows(N));
      let touched = 0;
      for (let i = 0; i < V1.length; i++) {
        expect(V1[i]).toBeCloseTo(V0[i]! - lr * gV[i]!, 5);
        if (gV[i] !== 0) touched++;
      }
      expect(touched).toBeGreaterThan(0);
      expect(touched).toBeLessThanOrEqual(B * H * k * D); // only rows that were read changed
    } finally {
      await initBackend({ log: false });
    }
  });

  it('layers share one pool (Memory+); a pool of the wrong size is refused naming the field', () => {
    const pool = new MemoryPool({ rows: 256, dim: 8, seed: 1 });
    const cfg = { inputDim: 8, numKeys: 16, heads: 2, topK: 4, keyDim: 8 };
    const three = [0, 1, 2].map((s) => new MemoryLayer({ ...cfg, seed: s }, { pool }));
    layers.push(...three);
    const x = tf.randomNormal([4, 8], 0, 1, 'float32', 9);
    const outs = three.map((l) => Array.from(l.apply(x).dataSync()));
    expect(outs[0]).not.toEqual(outs[1]); // own keys and projections
    expect(three.every((l) => l.pool === pool)).toBe(true);
    expect(() => new MemoryLayer({ ...cfg, numKeys: 8 }, { pool })).toThrow(/^pool: has 256 rows but numKeys² = 64/);
    expect(() => new MemoryLayer({ ...cfg, valueDim: 4 }, { pool })).toThrow(/^pool: has width 8 but valueDim = 4/);
    expect(() => three[0]!.apply(tf.zeros([4, 7]))).toThrow(/^x: must be \[B, 8\] or \[B, T, 8\]/);
  });

  it('introspection and usage tracking report the slots read', () => {
    const layer = new MemoryLayer({ inputDim: 8, numKeys: 16, heads: 2, topK: 4, keyDim: 8, seed: 2 });
    layers.push(layer);
    const x = tf.randomNormal([5, 3, 8], 0, 1, 'float32', 4); // [B, T, D] works too
    const t = layer.inspect(x);
    expect([t.batch, t.heads, t.k]).toEqual([15, 2, 4]);
    for (let i = 0; i < t.batch * t.heads; i++) {
      const w = t.weights.slice(i * 4, i * 4 + 4);
      expect(w.reduce((a, b) => a + b)).toBeCloseTo(1, 5); // softmax per head
      for (let j = 1; j < 4; j++) expect(t.scores[i * 4 + j]!).toBeLessThanOrEqual(t.scores[i * 4 + j - 1]!);
    }
    const tracker = layer.trackUsage();
    layer.apply(x);
    layer.stopUsage();
    const r = tracker.report();
    expect(r.lookups).toBe(15 * 2 * 4);
    let reads = 0;
    for (const c of tracker.readCounts) reads += c;
    expect(reads).toBe(120);
    const ids = new Set(t.ids);
    expect(r.usedFraction).toBeCloseTo(ids.size / 256, 10); // same batch, same slots
  });
});
