/**
 * The teach bench's LoRA baseline: only the targeted matrices change, each by a matrix of rank
 * ≤ r; the loss it is stepped on falls; every other weight and the memory values stay
 * byte-identical; restore() gives back the base weights exactly.
 */
import { initBackend } from '@mnemo/kernels';
import { LanguageModel, ffnPlan } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter, loraTargets } from './lora';

beforeAll(async () => {
  await initBackend({ log: false });
});

/** Numerical rank of a row-major [rows, cols] matrix: Gaussian elimination with partial pivoting. */
function rank(m: Float32Array, rows: number, cols: number, tol = 1e-5): number {
  const a = Array.from({ length: rows }, (_, i) => Array.from(m.subarray(i * cols, (i + 1) * cols), Number));
  let r = 0;
  const scale = Math.max(1e-30, ...m.map(Math.abs));
  for (let c = 0; c < cols && r < rows; c++) {
    let p = r;
    for (let i = r + 1; i < rows; i++) if (Math.abs(a[i]![c]!) > Math.abs(a[p]![c]!)) p = i;
    if (Math.abs(a[p]![c]!) <= tol * scale) continue;
    [a[r], a[p]] = [a[p]!, a[r]!];
    for (let i = r + 1; i < rows; i++) {
      const f = a[i]![c]! / a[r]![c]!;
      for (let j = c; j < cols; j++) a[i]![j]! -= f * a[r]![j]!;
    }
    r++;
  }
  return r;
}

describe('LoraAdapter', () => {
  it('changes only the targets, each by rank ≤ r, lowers the loss, and restores exactly', () => {
    const model = new LanguageModel({
      vocabSize: 64,
      dim: 32,
      layers: 2,
      heads: 2,
      kvHeads: 2,
      maxSeqLen: 16,
      ffnHidden: 64,
      ffn: ffnPlan('memoryPlus', 2, 1),
      memory: { numKeys: 8, heads: 2, topK: 2, keyDim: 8 },
      seed: 5,
    });
    const named = model.namedVariables();
    const before = Object.fromEntries(Object.entries(named).map(([k, v]) => [k, v.dataSync().slice()]));
    const pool = model.pool!;
    const all = Int32Array.from({ length: pool.rows }, (_, i) => i);
    const values = pool.readRows(all);
    const targets = loraTargets(named);
    expect(targets.map((v) => v.name)).not.toContain(named.tok_emb!.name);
    expect(targets.length).toBeGreaterThan(6);
    const ids = tf.tensor2d(
      Int32Array.from({ length: 12 }, (_, i) => (i * 5 + 3) % 64),
      [1, 12],
      'int32',
    );
    const r = 2;
    const lora = new LoraAdapter(model, { rank: r, lr: 1e-2, seed: 3 });
    expect(lora.params).toBe(targets.reduce((s, v) => s + r * (v.shape[0]! + v.shape[1]!), 0));
    const losses: number[] = [];
    for (let s = 0; s < 15; s++) losses.push(lora.step(() => model.loss(ids, { aux: false })));
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.05);
    const targetNames = new Set(targets.map((v) => v.name));
    let moved = 0;
    for (const [k, v] of Object.entries(named)) {
      const now = v.dataSync();
      if (!targetNames.has(v.name)) {
        expect(Array.from(now), k).toEqual(Array.from(before[k]!));
        continue;
      }
      const [rows, cols] = v.shape as [number, number];
      const delta = Float32Array.from(now, (x, i) => x - before[k]![i]!);
      if (delta.some((x) => x !== 0)) moved++;
      expect(rank(delta, rows, cols), k).toBeLessThanOrEqual(r);
    }
    expect(moved).toBe(targets.length);
    expect(Array.from(pool.readRows(all))).toEqual(Array.from(values));
    lora.restore();
    for (const [k, v] of Object.entries(named)) expect(Array.from(v.dataSync()), k).toEqual(Array.from(before[k]!));
    lora.dispose();
    ids.dispose();
    model.dispose();
  }, 60_000);
});
