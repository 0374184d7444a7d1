/**
 * The memory core's seams: any addressor + value pool + readout composes into a Memory, and the
 * composition is checked once, at construction.
 */
import { ConfigError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Address, Addressor } from './addressor';
import { Memory } from './memory';
import { MemoryLayer } from './memory-layer';
import { MemoryPool } from './pool';
import { IdentityReadout, ProjectionReadout, SiluGateReadout } from './readout';

/** A toy addressor: token b reads rows (b + j·7) mod N with weight 1/(j+1), in G bags of K rows (bag g shifted by g). */
class ModAddressor implements Addressor {
  readonly heads = 1;
  constructor(
    readonly rows: number,
    readonly topK: number,
    readonly bags = 1,
  ) {}
  address(x: tf.Tensor2D): Address {
    const B = x.shape[0];
    const R = B * this.bags;
    const K = this.topK;
    const ids = new Int32Array(R * K);
    const w = new Float32Array(R * K);
    for (let r = 0; r < R; r++) {
      const b = Math.floor(r / this.bags);
      const g = r % this.bags;
      for (let j = 0; j < K; j++) {
        ids[r * K + j] = (b + j * 7 + g) % this.rows;
        w[r * K + j] = 1 / (j + 1);
      }
    }
    const weights = tf.tensor2d(w, [R, K]);
    return { ids: tf.tensor2d(ids, [R, K], 'int32'), weights, scores: weights };
  }
  variables(): Record<string, tf.Variable> {
    return {};
  }
  dispose(): void {}
}

describe('Memory (addressor → pool → readout)', () => {
  beforeAll(async () => {
    await initBackend({ log: false });
  });

  it('composes any addressor with a pool and a readout: y = readout(Σ_j w_j V[id_j], x)', () => {
    const [N, dv, K, B] = [64, 4, 3, 5];
    const pool = new MemoryPool({ rows: N, dim: dv, seed: 3 });
    const mem = new Memory({
      config: { kind: 'mod' },
      addressor: new ModAddressor(N, K),
      pool,
      readout: new IdentityReadout(dv),
      inputDim: dv,
    });
    const x = tf.randomNormal([B, dv], 0, 1, 'float32', 1);
    const y = mem.apply(x).dataSync();
    const V = pool.readRows(Int32Array.from({ length: N }, (_, i) => i));
    for (let b = 0; b < B; b++) {
      for (let d = 0; d < dv; d++) {
        let want = 0;
        for (let j = 0; j < K; j++) want += (1 / (j + 1)) * V[((b + j * 7) % N) * dv + d]!;
        expect(y[b * dv + d]).toBeCloseTo(want, 5);
      }
    }
    const t = mem.inspect(x);
    expect([t.batch, t.heads, t.k, t.bags]).toEqual([B, 1, K, 1]);
    expect(Array.from(t.ids.slice(0, K))).toEqual([0, 7, 14]);
    mem.dispose();
    pool.dispose();
  });

  it('hands a readout G bags per token as m [B, G·dv]', () => {
    const [N, dv, K, B, G] = [32, 2, 2, 3, 3];
    const pool = new MemoryPool({ rows: N, dim: dv, seed: 5 });
    const mem = new Memory({
      config: {},
      addressor: new ModAddressor(N, K, G),
      pool,
      readout: new ProjectionReadout(G * dv, 4, { seed: 1, name: 't' }),
      inputDim: 4,
    });
    const x = tf.randomNormal([B, 4], 0, 1, 'float32', 2);
    const seen: number[][] = [];
    const apply = mem.readout.apply.bind(mem.readout);
    mem.readout.apply = (m, xx) => {
      seen.push(m.shape);
      return apply(m, xx);
    };
    expect(mem.apply(x).shape).toEqual([B, 4]);
    expect(seen).toEqual([[B, G * dv]]);
    expect(mem.inspect(x).bags).toBe(G);
    mem.dispose();
    pool.dispose();
  });

  it('refuses parts that do not fit, naming the part', () => {
    const pool = new MemoryPool({ rows: 64, dim: 4 });
    expect(
      () => new Memory({ config: {}, addressor: new ModAddressor(100, 2), pool, readout: new IdentityReadout(4), inputDim: 4 }),
    ).toThrow(ConfigError);
    expect(
      () => new Memory({ config: {}, addressor: new ModAddressor(100, 2), pool, readout: new IdentityReadout(4), inputDim: 4 }),
    ).toThrow(/^pool: has 64 rows/);
    expect(
      () => new Memory({ config: {}, addressor: new ModAddressor(64, 2), pool, readout: new IdentityReadout(8), inputDim: 8 }),
    ).toThrow(/^readout: reads m of width 8, the pool and addressor give 4/);
    const silu = new SiluGateReadout(4, 6, { seeds: { w1: 1, w2: 2 }, name: 's' });
    expect(() => new Memory({ config: {}, addressor: new ModAddressor(64, 2), pool, readout: silu, inputDim: 8 })).toThrow(
      /^readout: writes width 6, the layer's input is 8/,
    );
    silu.dispose();
    pool.dispose();
  });

  it('PKM and Memory+ are compositions: product-key addressor + identity / projection / SiLU-gate readout', () => {
    const base = { inputDim: 8, numKeys: 8, heads: 2, topK: 2, keyDim: 4, seed: 3 };
    const plus = new MemoryLayer({ ...base, gating: 'silu' });
    const pkm = new MemoryLayer({ ...base, gating: 'none' });
    const pkmNarrow = new MemoryLayer({ ...base, gating: 'none', valueDim: 4 });
    expect(plus.readout).toBeInstanceOf(SiluGateReadout);
    expect(pkm.readout).toBeInstanceOf(IdentityReadout);
    expect(pkmNarrow.readout).toBeInstanceOf(ProjectionReadout);
    // checkpoint and optimizer order: the addressor's tensors, then the readout's
    expect(Object.keys(plus.variables())).toEqual(['wq', 'bq', 'subkeys', 'w1', 'b1', 'w2', 'b2']);
    expect(Object.keys(pkm.variables())).toEqual(['wq', 'bq', 'subkeys']);
    expect(Object.keys(pkmNarrow.variables())).toEqual(['wq', 'bq', 'subkeys', 'wo']);
    const before = tf.memory().numTensors;
    for (const l of [plus, pkm, pkmNarrow]) l.dispose(); // each owns the pool it created
    expect(tf.memory().numTensors).toBeLessThan(before);
    expect(plus.pool instanceof MemoryPool && plus.pool.store.disposed).toBe(true);
  });
});
