import { ShapeError, ValueError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FfnKind, type ModelConfigInput, ffnPlan, parseModelConfig } from './config';
import { modelCounts } from './counts';
import type { SkipLayerMemory } from './extensions';
import { LanguageModel } from './model';
import type { MoeFfn } from './moe';
import { mulberry32 } from '@mnemo/core';

const tiny = (kind: FfnKind, over: Partial<ModelConfigInput> = {}) =>
  parseModelConfig({
    vocabSize: 61,
    dim: 32,
    layers: 3,
    heads: 4,
    kvHeads: 2,
    maxSeqLen: 24,
    ffnHidden: 48,
    ffn: ffnPlan(kind, 3, kind === 'memoryPlus' ? 2 : undefined),
    memory: { numKeys: 8, heads: 2, topK: 4, keyDim: 16 },
    moe: { experts: 4, hidden: 24 },
    seed: 7,
    ...over,
  });

function randomIds(n: number, V: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
}

/** logits of the last position of a full recomputation over `ids` */
function lastLogits(m: LanguageModel, ids: number[]): Float32Array {
  return tf.tidy(() => {
    const { logits } = m.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
    return tf.slice(logits, [0, ids.length - 1, 0], [1, 1, m.config.vocabSize]).dataSync() as Float32Array;
  });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

beforeAll(async () => {
  await initBackend({ log: false });
});

describe('LanguageModel', () => {
  it.each(['dense', 'memoryPlus', 'moe'] as const)('%s: prefill + decode steps equal full recomputation (GQA, KV cache)', (kind) => {
    const m = new LanguageModel(tiny(kind));
    const ids = randomIds(14, 61, 1);
    const full = ids.map((_, t) => (t >= 4 ? lastLogits(m, ids.slice(0, t + 1)) : undefined));
    const cache = m.newCache();
    const before = tf.memory().numTensors;
    let logits = m.prefill(ids.slice(0, 5), cache);
    expect(maxDiff(logits, full[4]!)).toBeLessThan(1e-4);
    for (let t = 5; t < ids.length; t++) {
      logits = m.prefill([ids[t]!], cache);
      expect(maxDiff(logits, full[t]!)).toBeLessThan(1e-4);
    }
    expect(cache.length).toBe(ids.length);
    // the cache holds 2 tensors per block; nothing else leaks
    expect(tf.memory().numTensors - before).toBeLessThanOrEqual(2 * 3);
    cache.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    m.dispose();
  });

  it.each(['dense', 'memoryPlus'] as const)('%s: decodeBatch over caches of different lengths equals per-sequence decoding', (kind) => {
    const m = new LanguageModel(tiny(kind));
    const prompts = [randomIds(3, 61, 2), randomIds(9, 61, 3), randomIds(1, 61, 4)];
    const next = [
      [5, 6, 7],
      [8, 9, 10],
      [11, 12, 13],
    ];
    const single = prompts.map((p) => {
      const c = m.newCache();
      m.prefill(p, c);
      const out = next[0]!.map((_, s) => m.prefill([next[prompts.indexOf(p)]![s]!], c));
      c.dispose();
      return out;
    });
    const caches = prompts.map((p) => {
      const c = m.newCache();
      m.prefill(p, c);
      return c;
    });
    for (let s = 0; s < 3; s++) {
      const out = m.decodeBatch(
        next.map((n) => n[s]!),
        caches,
      );
      out.forEach((l, b) => expect(maxDiff(l, single[b]![s]!)).toBeLessThan(1e-4));
    }
    expect(caches.map((c) => c.length)).toEqual([6, 12, 4]);
    for (const c of caches) c.dispose();
    m.dispose();
  });

  it('is causal: logits at position t ignore tokens after t', () => {
    const m = new LanguageModel(tiny('memoryPlus'));
    const a = randomIds(10, 61, 13);
    const b = [...a.slice(0, 6), ...randomIds(4, 61, 14)];
    const [la, lb] = [a, b].map((ids) => m.forward(tf.tensor2d([ids], [1, 10], 'int32')).logits.dataSync() as Float32Array);
    const V = 61;
    expect(maxDiff(la!.subarray(0, 6 * V), lb!.subarray(0, 6 * V))).toBeLessThan(1e-5);
    expect(maxDiff(la!.subarray(6 * V), lb!.subarray(6 * V))).toBeGreaterThan(1e-3);
    m.dispose();
  });

  it('refuses caches of another model, one cache twice, overflow and bad ids', () => {
    const a = new LanguageModel(tiny('dense'));
    const b = new LanguageModel(tiny('dense'));
    const c = a.newCache();
    expect(() => b.prefill([1], c)).toThrow(ValueError);
    expect(() => a.decodeBatch([1, 2], [c, c])).toThrow(/one cache twice/);
    expect(() => a.prefill([61], c)).toThrow(/token ids must be integers in \[0, 61\)/);
    expect(() => a.prefill(randomIds(25, 61, 5), c)).toThrow(/maxSeqLen 24/);
    expect(() => a.forward(tf.tensor2d([[1.5]], [1, 1]) as tf.Tensor2D)).toThrow(ShapeError);
    c.dispose();
    a.dispose();
    b.dispose();
  });

  it('two models from one config are identical; another seed differs', () => {
    const a = new LanguageModel(tiny('memoryPlus'));
    const b = new LanguageModel(tiny('memoryPlus'));
    const c = new LanguageModel(tiny('memoryPlus', { seed: 8 }));
    const va = a.namedVariables();
    const vb = b.namedVariables();
    const vc = c.namedVariables();
    expect(Object.keys(va)).toEqual(Object.keys(vb));
    let differs = 0;
    for (const k of Object.keys(va)) {
      expect(Array.from(va[k]!.dataSync())).toEqual(Array.from(vb[k]!.dataSync()));
      if (maxDiff(va[k]!.dataSync() as Float32Array, vc[k]!.dataSync() as Float32Array) > 0) differs++;
    }
    const ids = new Int32Array([0, 1, 2, 3]);
    expect(Array.from(a.pool!.readRows(ids))).toEqual(Array.from(b.pool!.readRows(ids)));
    expect(differs).toBeGreaterThan(Object.keys(va).length / 2); // everything but the norms (ones, zeros)
    for (const m of [a, b, c]) m.dispose();
  });

  it.each(['dense', 'moe'] as const)('%s: loss = cross-entropy + the MoE balance term; aux: false leaves the term out', (kind) => {
    const m = new LanguageModel(tiny(kind));
    const ids = tf.tensor2d(randomIds(2 * 9, 61, 4), [2, 9], 'int32');
    const [full, ce, aux] = tf.tidy(() =>
      [m.loss(ids), m.loss(ids, { aux: false }), m.forward(tf.slice(ids, [0, 0], [2, 8])).auxLoss].map((t) => t.dataSync()[0]!),
    ); // loss reads ids[:, :-1]
    if (kind === 'moe') expect(aux).toBeGreaterThan(0.001);
    else expect(aux).toBe(0);
    expect(full! - ce!).toBeCloseTo(aux!, 5);
    ids.dispose();
    m.dispose();
  });

  it.each(['dense', 'moe', 'memory', 'memoryPlus'] as const)('%s: dispose() frees every tensor the model made', (kind) => {
    const before = tf.memory().numTensors;
    const m = new LanguageModel(tiny(kind));
    tf.tidy(() => m.loss(tf.tensor2d(randomIds(2 * 6, 61, 2), [2, 6], 'int32'))).dispose();
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(['dense', 'moe', 'memory', 'memoryPlus'] as const)('%s: modelCounts matches the variables and the pool', (kind) => {
    for (const over of [{}, { tieEmbeddings: false, kvHeads: 4, memory: { numKeys: 6, heads: 3, topK: 2, keyDim: 8, valueDim: 20 } }]) {
      const cfg = tiny(kind, over);
      const m = new LanguageModel(cfg);
      const counts = modelCounts(cfg);
      const named = m.namedVariables();
      const size = (keys: string[]) => keys.reduce((s, k) => s + named[k]!.size, 0);
      const memBlocks = m.memoryBlocks().map((i) => `blocks.${i}.ffn.`);
      const isMem = (k: string) => memBlocks.some((p) => k.startsWith(p));
      expect(size(Object.keys(named).filter((k) => !isMem(k)))).toBe(counts.denseParams);
      const pool = m.pool ? m.pool.rows * m.pool.dim : 0;
      expect(size(Object.keys(named).filter(isMem)) + pool).toBe(counts.memoryParams);
      expect(m.trainableVariables().reduce((s, v) => s + v.size, 0)).toBe(counts.denseParams + counts.memoryParams - pool);
      m.dispose();
    }
  });

  it.each(['dense', 'memoryPlus', 'moe'] as const)('%s: training lowers the loss on a repeated batch within 30 steps', (kind) => {
    const m = new LanguageModel(tiny(kind, { memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16, valueLr: 1e-2 } }));
    const ids = tf.tensor2d(randomIds(4 * 16, 61, 9), [4, 16], 'int32');
    const opt = tf.train.adam(1e-2);
    const losses: number[] = [];
    for (let s = 0; s < 30; s++) {
      const l = opt.minimize(() => m.loss(ids, { training: true }), true, m.trainableVariables())!;
      losses.push(l.dataSync()[0]!);
      l.dispose();
      m.stepMemory();
    }
    expect(losses[0]).toBeGreaterThan(Math.log(61) - 0.5); // starts near uniform
    expect(losses[29]).toBeLessThan(0.5 * losses[0]!);
    if (kind === 'moe') {
      const { auxLoss } = m.forward(ids);
      const aux = auxLoss.dataSync()[0]!;
      expect(aux).toBeGreaterThan(0);
      expect(Number.isFinite(aux)).toBe(true);
      const balances = [0, 1, 2].map((i) => (m.ffnSlot(i) as MoeFfn).lastBalance);
      for (const b of balances) expect(b).toBeGreaterThan(0.5); // 1 when routing is uniform
      expect(aux).toBeCloseTo(0.01 * balances.reduce((a, b) => a + b), 5); // Σ over blocks × balanceCoef
    }
    opt.dispose();
    ids.dispose();
    m.dispose();
  });

  it('memory training updates the shared pool values sparsely', () => {
    const m = new LanguageModel(tiny('memoryPlus'));
    const rows = Int32Array.from({ length: 64 }, (_, i) => i);
    const before = m.pool!.readRows(rows);
    const ids = tf.tensor2d(randomIds(2 * 8, 61, 10), [2, 8], 'int32');
    const opt = tf.train.sgd(0.1);
    opt.minimize(() => m.loss(ids, { training: true }), false, m.trainableVariables());
    const after = m.pool!.readRows(rows);
    let changedRows = 0;
    for (let r = 0; r < 64; r++) {
      if (maxDiff(before.subarray(r * 32, r * 32 + 32), after.subarray(r * 32, r * 32 + 32)) > 0) changedRows++;
    }
    expect(changedRows).toBeGreaterThan(0);
    expect(changedRows).toBeLessThan(64); // 2 blocks × 16 tokens × 2 heads × 4 reads touch a subset
    ids.dispose();
    m.dispose();
  });

  it('inspectMemory lists each memory block with ids and weights [T, H, k]', () => {
    const m = new LanguageModel(tiny('memoryPlus'));
    const tokens = randomIds(5, 61, 11);
    const out = m.inspectMemory(tokens);
    expect(out.map((o) => o.block)).toEqual(m.memoryBlocks());
    for (const o of out) {
      expect(o.heads).toBe(2);
      expect(o.topK).toBe(4);
      expect(o.ids.length).toBe(5 * 2 * 4);
      expect(Math.max(...o.ids)).toBeLessThan(64);
      for (let r = 0; r < 5 * 2; r++) {
        const w = o.weights.subarray(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0);
        expect(w).toBeCloseTo(1, 5); // softmax per head
      }
    }
    m.dispose();
  });

  it('skip-layer memories add their output after the write block', () => {
    const cfg = tiny('dense');
    const base = new LanguageModel(cfg);
    const ids = randomIds(6, 61, 12);
    const ref = lastLogits(base, ids);
    const seen: number[] = [];
    const mk = (scale: number): SkipLayerMemory => {
      const w = tf.variable(tf.fill([32, 32], scale));
      return {
        readBlock: 0,
        writeBlock: 2,
        apply: (x) => {
          seen.push(x.shape[0]);
          return tf.matMul(x, w);
        },
        variables: () => ({ w }),
        dispose: () => w.dispose(),
      };
    };
    const zero = new LanguageModel(cfg, { skips: [mk(0)] });
    expect(maxDiff(lastLogits(zero, ids), ref)).toBeLessThan(1e-6);
    expect(seen).toEqual([6]);
    expect(Object.keys(zero.namedVariables())).toContain('skips.0.w');
    const some = new LanguageModel(cfg, { skips: [mk(0.05)] });
    expect(maxDiff(lastLogits(some, ids), ref)).toBeGreaterThan(1e-3);
    expect(() => new LanguageModel(cfg, { skips: [{ ...mk(0), readBlock: 2, writeBlock: 1 }] })).toThrow(/skips\.0/);
    for (const m of [base, zero, some]) m.dispose();
  });
});
