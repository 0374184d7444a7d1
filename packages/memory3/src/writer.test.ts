import { mulberry32 } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { LanguageModel, parseModelConfig } from '@mnemo/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embedTokens } from './embed';
import { memoryShapeOf } from './host';
import { tokenImportance, topPositions, writeMemory } from './writer';

let model: LanguageModel;
const opts = { prefixId: 0 };

beforeAll(async () => {
  await initBackend({ log: false });
  model = new LanguageModel(
    parseModelConfig({ vocabSize: 50, dim: 32, layers: 4, heads: 4, kvHeads: 2, maxSeqLen: 160, ffnHidden: 48, seed: 3 }),
  );
});
afterAll(() => model.dispose());

function ids(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => 1 + Math.floor(r() * 49));
}

describe('tokenImportance / topPositions', () => {
  it('ranks keys as the naive Σ_{h ∈ group} Σ_i softmax-free exp(q_i·k_j) does', () => {
    const r = mulberry32(5);
    const H = 4;
    const Hk = 2;
    const T = 20;
    const dh = 6;
    const q = Float32Array.from({ length: H * T * dh }, () => r() * 2 - 1);
    const k = Float32Array.from({ length: Hk * T * dh }, () => r() * 2 - 1);
    const w = tokenImportance(q, k, H, Hk, T, dh);
    for (let g = 0; g < Hk; g++) {
      const naive: number[] = [];
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (const h of [2 * g, 2 * g + 1]) {
          for (let i = 0; i < T; i++) {
            let dot = 0;
            for (let d = 0; d < dh; d++) dot += q[(h * T + i) * dh + d]! * k[(g * T + j) * dh + d]!;
            s += Math.exp(dot);
          }
        }
        naive.push(s);
        expect(w[g * T + j]).toBeCloseTo(Math.log(s), 9);
      }
      const want = naive
        .map((s, j) => [s, j] as const)
        .filter(([, j]) => j >= 1)
        .sort((a, b) => b[0] - a[0])
        .slice(0, 8)
        .map(([, j]) => j)
        .sort((a, b) => a - b);
      expect(topPositions(w, g * T, T, 1, 8)).toEqual(want);
    }
  });

  it('keeps the earlier position on ties and never the prefix', () => {
    const w = Float64Array.from([9, 1, 3, 3, 2]);
    expect(topPositions(w, 0, 5, 1, 2)).toEqual([2, 3]);
    expect(topPositions(w, 0, 5, 1, 3)).toEqual([2, 3, 4]);
  });
});

describe('writeMemory', () => {
  it('keeps 8 tokens per memory block and KV head: their K (after RoPE) and V at their positions', () => {
    const toks = ids(30, 1);
    const { memory, embedding } = writeMemory(model, toks, opts);
    expect(memory.shape).toEqual(memoryShapeOf(model, opts));
    expect(memory.shape).toEqual({ layers: 2, kvHeads: 2, tokens: 8, headDim: 8 });
    const cap = model.captureKV([0, ...toks], { blocks: [0, 1] });
    const T = 31;
    for (let l = 0; l < 2; l++) {
      const w = tokenImportance(cap.blocks[l]!.q, cap.blocks[l]!.k, 4, 2, T, 8);
      for (let g = 0; g < 2; g++) {
        const pos = Array.from(memory.positions.subarray((l * 2 + g) * 8, (l * 2 + g + 1) * 8));
        expect(pos).toEqual(topPositions(w, g * T, T, 1, 8));
        pos.forEach((j, s) => {
          for (const [kind, src] of [
            [0, cap.blocks[l]!.k],
            [1, cap.blocks[l]!.v],
          ] as const) {
            const got = memory.kv.subarray((((l * 2 + kind) * 2 + g) * 8 + s) * 8, (((l * 2 + kind) * 2 + g) * 8 + s + 1) * 8);
            expect(Array.from(got)).toEqual(Array.from(src.subarray((g * T + j) * 8, (g * T + j + 1) * 8)));
          }
        });
      }
    }
    let n = 0;
    for (const x of embedding) n += x * x;
    expect(Math.sqrt(n)).toBeCloseTo(1, 5);
  });

  it('zero-pads references shorter than 8 tokens (positions −1) and refuses empty or too long ones', () => {
    const { memory } = writeMemory(model, ids(5, 2), opts);
    for (let l = 0; l < 2; l++) {
      for (let g = 0; g < 2; g++) {
        expect(Array.from(memory.positions.subarray((l * 2 + g) * 8, (l * 2 + g + 1) * 8))).toEqual([1, 2, 3, 4, 5, -1, -1, -1]);
      }
    }
    expect(memory.kv.subarray(5 * 8, 8 * 8).every((x) => x === 0)).toBe(true);
    expect(() => writeMemory(model, [], opts)).toThrow(/reference has 0 tokens/);
    expect(() => writeMemory(model, ids(128, 3), opts)).toThrow(/1\.\.127/);
  });

  it('the embedding is deterministic, unit-norm, and the text decides it (its own tokens nearer than others)', () => {
    const a = ids(20, 4);
    const e1 = writeMemory(model, a, opts).embedding;
    expect(embedTokens(model, a, opts)).toEqual(e1);
    const dot = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    const partial = embedTokens(model, a.slice(0, 14), opts); // the same text, cut
    const other = embedTokens(model, ids(20, 5), opts);
    expect(dot(e1, partial)).toBeGreaterThan(dot(e1, other));
    const deep = writeMemory(model, a, { ...opts, embedLayer: 4 }).embedding;
    expect(deep).not.toEqual(e1);
  });
});
