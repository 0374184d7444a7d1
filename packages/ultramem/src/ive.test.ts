import { initBackend } from '@mnemo/kernels';
import type { Address, Addressor } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ExpandedAddressor, expand, permutation } from './ive';

beforeAll(async () => {
  await initBackend({ log: false });
});

/** Reads fixed virtual ids with weights per bag (c + 1)·(j + 1). */
class Fixed implements Addressor {
  readonly heads = 1;
  constructor(
    readonly rows: number,
    readonly bags: number,
    readonly virtual: number[],
  ) {}
  get topK() {
    return this.virtual.length;
  }
  address(x: tf.Tensor2D): Address {
    const B = x.shape[0];
    const K = this.virtual.length;
    const ids = new Int32Array(B * this.bags * K);
    const w = new Float32Array(B * this.bags * K);
    for (let r = 0; r < B * this.bags; r++) {
      for (let j = 0; j < K; j++) {
        ids[r * K + j] = this.virtual[j]!;
        w[r * K + j] = ((r % this.bags) + 1) * (j + 1);
      }
    }
    const weights = tf.tensor2d(w, [B * this.bags, K]);
    return { ids: tf.tensor2d(ids, [B * this.bags, K], 'int32'), weights, scores: weights };
  }
  variables() {
    return {};
  }
  dispose() {}
}

describe('implicit value expansion', () => {
  it('the permutation is a seeded bijection of [0, E·N); E = 1 is the identity', () => {
    for (const n of [1, 7, 64, 1000]) {
      const p = permutation(n, 3);
      expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(Array.from(permutation(n, 3))).toEqual(Array.from(p));
    }
    expect(Array.from(permutation(1000, 3))).not.toEqual(Array.from(permutation(1000, 4)));
    expect(Array.from(permutation(5, 3, false))).toEqual([0, 1, 2, 3, 4]);
    // every (block, row) pair is hit exactly once
    const [E, N] = [4, 25];
    const perm = permutation(E * N, 9);
    const seen = new Set<string>();
    for (let g = 0; g < E * N; g++) {
      const { block, row } = expand(g, perm, N);
      expect(block).toBeLessThan(E);
      seen.add(`${block}:${row}`);
    }
    expect(seen.size).toBe(E * N);
  });

  it('splits reads into E blocks × column chunks: bag (b, p, c) reads row·chunks + c with core c weights', () => {
    const [E, N, C] = [4, 9, 2];
    const perm = permutation(E * N, 1);
    const virtual = [0, 5, 17, 35];
    const a = new ExpandedAddressor(new Fixed(E * N, C, virtual), { expansion: E, physicalRows: N, chunks: C, perm });
    expect([a.rows, a.bags]).toEqual([N * C, E * C]);
    const x = tf.zeros([2, 3]) as tf.Tensor2D;
    const out = a.address(x, { training: false });
    expect(out.ids.shape).toEqual([2 * E * C, virtual.length]);
    const ids = out.ids.dataSync();
    const w = out.weights.dataSync();
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < E; p++) {
        for (let c = 0; c < C; c++) {
          const r = (b * E + p) * C + c;
          virtual.forEach((g, j) => {
            const e = expand(g, perm, N);
            expect(ids[r * 4 + j]).toBe(e.block === p ? e.row * C + c : -1);
            expect(w[r * 4 + j]).toBe((c + 1) * (j + 1));
          });
        }
      }
    }
    // one inner bag (product keys) feeds every chunk with the same weights
    const one = new ExpandedAddressor(new Fixed(E * N, 1, virtual), { expansion: E, physicalRows: N, chunks: C, perm });
    const w1 = one.address(x, { training: false }).weights.dataSync();
    expect(Array.from(w1.slice(0, 4))).toEqual(Array.from(w1.slice(4, 8)));
    expect(() => new ExpandedAddressor(new Fixed(10, 1, virtual), { expansion: E, physicalRows: N, chunks: C, perm })).toThrow(
      /^expansion:/,
    );
    expect(() => new ExpandedAddressor(new Fixed(E * N, 3, virtual), { expansion: E, physicalRows: N, chunks: C, perm })).toThrow(
      /^cores:/,
    );
  });
});
