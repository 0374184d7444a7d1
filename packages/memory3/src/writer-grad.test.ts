import { mulberry32 } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { LanguageModel, parseModelConfig } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MemoryKV, REFERENCE_POSITIONS } from './host';
import { writeMemory } from './writer';
import { TrainableMemories } from './writer-grad';

let model: LanguageModel;
const opts = { prefixId: 0, tokens: 6 };
const CTX = 24; // context tokens are 1..CTX−1, reference tokens CTX..49: their embedding rows are disjoint

beforeAll(async () => {
  await initBackend({ log: false });
  model = new LanguageModel(
    parseModelConfig({ vocabSize: 50, dim: 32, layers: 4, heads: 4, kvHeads: 2, maxSeqLen: 160, ffnHidden: 48, seed: 3 }),
  );
});
afterAll(() => model.dispose());

const draw = (n: number, seed: number, lo: number, hi: number) => {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo)));
};
const refs = [draw(9, 1, CTX, 50), draw(4, 2, CTX, 50), draw(12, 3, CTX, 50)]; // 4 < tokens: all kept, no padding read
const table = [[[0, 2]], [[1]], [[]]]; // row 0 reads references 0 and 2, row 1 reads 1, row 2 none
const B = 3;
const W = 17;
const rows = Int32Array.from(draw(B * W, 9, 1, CTX));

/** The same memories as constants, from the store's writer (writeMemory), as the reader hands them. */
function constantExternal(): MemoryKV {
  const ms = refs.map((r) => writeMemory(model, r, opts).memory);
  const { kvHeads: Hk, tokens: M, headDim: dh } = ms[0]!.shape;
  const part = (m: (typeof ms)[0], n: number, l: number, kind: number) =>
    tf.tensor3d(
      Array.from({ length: Hk }, (_, g) =>
        m.kv.subarray(((l * 2 + kind) * Hk + g) * M * dh, (((l * 2 + kind) * Hk + g) * M + n) * dh),
      ).flatMap((a) => [...a]),
      [Hk, n, dh],
    );
  return {
    blocks: [0, 1],
    contextStart: REFERENCE_POSITIONS,
    chunk: W - 1,
    get: (block, row) => {
      const ids = table[row]![0]!;
      if (ids.length === 0) return undefined;
      const n = (i: number) => Math.min(refs[i]!.length, M);
      const cat = (kind: number) =>
        tf.concat(
          ids.map((i) => part(ms[i]!, n(i), block, kind)),
          1,
        ) as tf.Tensor3D;
      return { k: cat(0), v: cat(1) };
    },
  };
}

describe('TrainableMemories (writing with gradient)', () => {
  it('keeps the positions writeMemory keeps and holds the same K/V', () => {
    const tm = new TrainableMemories(model, refs, opts);
    try {
      refs.forEach((r, i) => {
        const w = writeMemory(model, r, opts).memory;
        const { kvHeads: Hk, tokens: M, headDim: dh } = w.shape;
        const n = Math.min(r.length, M);
        expect(tm.tokensOf(i)).toBe(n);
        for (let l = 0; l < 2; l++) {
          const got = tm.gather([i], l);
          const k = got.k.dataSync();
          const v = got.v.dataSync();
          tf.dispose([got.k, got.v]);
          for (let g = 0; g < Hk; g++) {
            expect(tm.kept[i]![l]!.slice(g * n, (g + 1) * n)).toEqual(
              Array.from(w.positions.subarray((l * Hk + g) * M, (l * Hk + g) * M + n)),
            );
            for (let s = 0; s < n * dh; s++) {
              expect(k[g * n * dh + s]).toBeCloseTo(w.kv[((l * 2 + 0) * Hk + g) * M * dh + s]!, 4);
              expect(v[g * n * dh + s]).toBeCloseTo(w.kv[((l * 2 + 1) * Hk + g) * M * dh + s]!, 4);
            }
          }
        }
      });
    } finally {
      tm.dispose();
    }
  });

  it('sends the loss gradient into the references tokens, which constant memories never do', () => {
    const ids = tf.tensor2d(rows, [B, W], 'int32');
    const emb = model.namedVariables()['tok_emb']!;
    const gradOf = (external: () => MemoryKV) => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, { external: external() }), [emb]);
      const g = grads[emb.name]!.arraySync() as number[][];
      const loss = value.dataSync()[0]!;
      tf.dispose([value, grads[emb.name]!]);
      return { g, loss };
    };
    let tm: TrainableMemories | undefined;
    const trained = gradOf(() => {
      tm = new TrainableMemories(model, refs, opts);
      return tm.external(table, W - 1);
    });
    tm?.dispose();
    const fixed = gradOf(constantExternal);
    ids.dispose();
    expect(trained.loss).toBeCloseTo(fixed.loss, 4); // same forward
    const norm = (g: number[][], lo: number, hi: number) => Math.hypot(...g.slice(lo, hi).flat());
    const diff = trained.g.map((row, i) => row.map((x, j) => x - fixed.g[i]![j]!));
    // context rows: the same gradient either way; reference rows: only the trainable memories add the memory path
    expect(norm(diff, 1, CTX)).toBeLessThan(1e-4 * norm(fixed.g, 1, CTX));
    expect(norm(diff, CTX, 50)).toBeGreaterThan(0.05 * norm(fixed.g, CTX, 50));
  });

  it('refuses empty or too long references and table indices it does not hold, naming them', () => {
    expect(() => new TrainableMemories(model, [], opts)).toThrow(/references/);
    expect(() => new TrainableMemories(model, [[1, 2], []], opts)).toThrow(/references\[1\]/);
    expect(() => new TrainableMemories(model, [draw(128, 4, 1, 50)], opts)).toThrow(/references\[0\].*128 tokens/);
    const tm = new TrainableMemories(model, refs, opts);
    expect(() => tm.external([[[0, 3]]], 16)).toThrow(/table\[0\]\[0\].*reference 3/);
    tm.dispose();
  });
});
