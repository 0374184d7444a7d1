/**
 * TDQKR against brute force over the whole n × n Tucker grid: exact for rank-1 cores (signed
 * pre-selection), recall measured for rank 2; MCS weights equal each core's own score; gradients
 * against finite differences.
 */
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TdqkrAddressor, type TdqkrOptions } from './tdqkr';

beforeAll(async () => {
  await initBackend({ log: false });
});

let made = 0;
const make = (o: Partial<TdqkrOptions>) =>
  new TdqkrAddressor({
    inputDim: 8,
    gridSize: 12,
    heads: 2,
    topM: 4,
    keyDim: 6,
    rank: 2,
    cores: 2,
    preselect: 'signed',
    layerNorm: true,
    aux: { alpha: 0.001, tau: 0.15 },
    seed: 1,
    name: `test_${made++}`,
    ...o,
  });

/** exact grid scores per (b, h): S_row[i]ᵀ C S_col[j] for core data [Hc, H, r, r] summed or one core */
function gridScores(a: TdqkrAddressor, x: tf.Tensor2D, core?: number) {
  const [Sr, Sc] = a.scores(x);
  const [H, B, n, r] = Sr.shape;
  const sr = Sr.dataSync();
  const sc = Sc.dataSync();
  const C = a.tuckerCore.dataSync();
  const Hc = a.tuckerCore.shape[0];
  const out = new Float64Array(B * H * n * n);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let c = 0; c < Hc; c++) {
            if (core !== undefined && c !== core) continue;
            for (let p = 0; p < r; p++) {
              for (let q = 0; q < r; q++) {
                s += sr[((h * B + b) * n + i) * r + p]! * C[((c * H + h) * r + p) * r + q]! * sc[((h * B + b) * n + j) * r + q]!;
              }
            }
          }
          out[((b * H + h) * n + i) * n + j] = s;
        }
      }
    }
  }
  return { out, B, H, n };
}

function exactTop(g: Float64Array, base: number, nn: number, m: number): number[] {
  return Array.from({ length: nn }, (_, i) => i)
    .sort((p, q) => g[base + q]! - g[base + p]! || p - q)
    .slice(0, m);
}

/** make every core rank 1: C^(c) = w_c · u tᵀ (so the summed core is rank 1 too) */
function setRank1(a: TdqkrAddressor, seed: number) {
  const [Hc, H, r] = a.tuckerCore.shape;
  // factors of magnitude 0.2..1 and random sign (no near-zero cores: their float32 scores would tie)
  let st = seed >>> 0;
  const rand = Array.from({ length: H * 2 * r + Hc }, () => {
    st = (Math.imul(st, 1664525) + 1013904223) >>> 0;
    const u = st / 4294967296;
    return (u < 0.5 ? -1 : 1) * (0.2 + 1.6 * Math.abs(u - 0.5));
  });
  const data = new Float32Array(Hc * H * r * r);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < Hc; c++) {
      const wc = 0.5 + Math.abs(rand[H * 2 * r + c]!);
      for (let p = 0; p < r; p++)
        for (let q = 0; q < r; q++) data[((c * H + h) * r + p) * r + q] = wc * rand[h * 2 * r + p]! * rand[h * 2 * r + r + q]!;
    }
  }
  a.tuckerCore.assign(tf.tensor4d(data, [Hc, H, r, r]));
}

describe('TdqkrAddressor', () => {
  it('with a rank-1 core, its top-m equals the exact top-m over the full n² grid (ties → lower grid id)', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 3, max: 14 }),
          m: fc.integer({ min: 1, max: 5 }),
          r: fc.integer({ min: 1, max: 3 }),
          B: fc.integer({ min: 1, max: 4 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
        }),
        ({ n, m, r, B, seed }) => {
          const topM = Math.min(m, n);
          const a = make({ gridSize: n, topM, rank: r, seed });
          setRank1(a, seed);
          const x = tf.randomNormal([B, 8], 0, 1, 'float32', seed) as tf.Tensor2D;
          const got = a.address(x, { training: false });
          const ids = got.ids.dataSync();
          const { out, H } = gridScores(a, x);
          for (let b = 0; b < B; b++) {
            for (let h = 0; h < H; h++) {
              const want = exactTop(out, (b * H + h) * n * n, n * n, topM);
              const have = Array.from(ids.slice((b * 2 + 0) * H * topM + h * topM, (b * 2 + 0) * H * topM + (h + 1) * topM));
              expect(have).toEqual(want);
            }
          }
          a.dispose();
        },
      ),
      { numRuns: 40, seed: 11 },
    );
  });

  it('with rank 2, measures the recall of the exact top-m (signed and paper pre-selection)', () => {
    const recall = (preselect: 'signed' | 'top') => {
      const a = make({ gridSize: 32, topM: 8, rank: 2, preselect, seed: 3 });
      const x = tf.randomNormal([16, 8], 0, 1, 'float32', 5) as tf.Tensor2D;
      const ids = a.address(x, { training: false }).ids.dataSync();
      const { out, H, n } = gridScores(a, x);
      let hit = 0;
      for (let b = 0; b < 16; b++) {
        for (let h = 0; h < H; h++) {
          const want = new Set(exactTop(out, (b * H + h) * n * n, n * n, 8));
          for (let j = 0; j < 8; j++) if (want.has(ids[b * 2 * H * 8 + h * 8 + j]!)) hit++;
        }
      }
      a.dispose();
      return hit / (16 * H * 8);
    };
    const signed = recall('signed');
    const top = recall('top');
    console.log(
      `TDQKR rank 2, n = 32, m = 8: recall of the exact top-m ${(100 * signed).toFixed(1)}% (signed), ${(100 * top).toFixed(1)}% (top-m only, the paper's)`,
    );
    expect(signed).toBeGreaterThan(0.5);
    expect(signed).toBeGreaterThanOrEqual(top);
  });

  it('MCS: bag c pools with core c own score at the selected pairs; selection by the summed score', () => {
    const a = make({ gridSize: 10, topM: 3, cores: 3, seed: 8 });
    const x = tf.randomNormal([3, 8], 0, 1, 'float32', 2) as tf.Tensor2D;
    const got = a.address(x, { training: false });
    const ids = got.ids.dataSync();
    const w = got.weights.dataSync();
    const per = [0, 1, 2].map((c) => gridScores(a, x, c));
    const { H, n } = per[0]!;
    const K = H * 3;
    for (let b = 0; b < 3; b++) {
      for (let c = 0; c < 3; c++) {
        for (let h = 0; h < H; h++) {
          for (let j = 0; j < 3; j++) {
            const pos = (b * 3 + c) * K + h * 3 + j;
            expect(ids[pos]).toBe(ids[b * 3 * K + h * 3 + j]); // same ids in every core's bag
            expect(w[pos]!).toBeCloseTo(per[c]!.out[(b * H + h) * n * n + ids[pos]!]!, 4);
          }
        }
      }
    }
    a.dispose();
  });

  it('gradients reach Wq, keys and the cores and match finite differences (selection held fixed)', () => {
    const a = make({ gridSize: 6, topM: 2, cores: 2, seed: 4 });
    const x = tf.randomNormal([2, 8], 0, 1, 'float32', 9) as tf.Tensor2D;
    const coef = tf.randomNormal([2 * 2, 2 * 2], 0, 1, 'float32', 10);
    const vars = a.variables();
    const f = () => tf.sum(tf.mul(a.address(x, { training: false }).weights, coef)) as tf.Scalar;
    const { grads } = tf.variableGrads(f, Object.values(vars));
    const ids0 = Array.from(a.address(x, { training: false }).ids.dataSync());
    const eps = 1e-2;
    for (const [name, v] of Object.entries(vars)) {
      const g = grads[v.name]!.dataSync();
      expect(g.some((z) => z !== 0)).toBe(true);
      const data = Float32Array.from(v.dataSync());
      let checked = 0;
      for (let i = 0; i < data.length && checked < 4; i += Math.max(1, Math.floor(data.length / 7))) {
        if (Math.abs(g[i]!) < 1e-3) continue;
        const at = (d: number) => {
          const p = Float32Array.from(data);
          p[i]! += d;
          v.assign(tf.tensor(p, v.shape));
          const same = Array.from(a.address(x, { training: false }).ids.dataSync()).every((z, k) => z === ids0[k]);
          const val = f().dataSync()[0]!;
          return { val, same };
        };
        const up = at(eps);
        const down = at(-eps);
        v.assign(tf.tensor(data, v.shape));
        if (!up.same || !down.same) continue; // the step crossed a selection boundary
        expect(g[i]!, `${name}[${i}]`).toBeCloseTo((up.val - down.val) / (2 * eps), 1);
        checked++;
      }
      expect(checked, name).toBeGreaterThan(0);
    }
    a.dispose();
  });
});
