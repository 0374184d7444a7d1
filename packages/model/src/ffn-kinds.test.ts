/**
 * The registry of FFN kinds and skip-layer memories built from config.skips: every kind has an
 * entry, memory kinds read the one shared pool from any site, counts match the built variables.
 */
import { initBackend } from '@mnemo/kernels';
import type { MemoryLayer, MemoryLayerConfig } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FFN_KINDS, type ModelConfigInput, parseModelConfig } from './config';
import { modelCounts } from './counts';
import { FFN_REGISTRY, MEMORY_KINDS, isMemoryKind, memoryLayerConfigFor, usesMemoryPool } from './ffn-kinds';
import { LanguageModel } from './model';

const base: ModelConfigInput = {
  vocabSize: 41,
  dim: 16,
  layers: 4,
  heads: 2,
  maxSeqLen: 16,
  ffnHidden: 24,
  memory: { numKeys: 6, heads: 2, topK: 3, keyDim: 8 },
  seed: 2,
};

beforeAll(async () => {
  await initBackend({ log: false });
});

describe('FFN kind registry', () => {
  it('has one entry per kind; memory kinds are exactly those with a memory spec', () => {
    expect(Object.keys(FFN_REGISTRY).sort()).toEqual([...FFN_KINDS].sort());
    expect(MEMORY_KINDS).toEqual(['memory', 'memoryPlus', 'ultramem']);
    expect(FFN_KINDS.filter(isMemoryKind)).toEqual(MEMORY_KINDS);
    expect(isMemoryKind('toString')).toBe(false);
    expect(usesMemoryPool({ ffn: ['dense', 'moe'] })).toBe(false);
    expect(usesMemoryPool({ ffn: ['dense', 'memory'] })).toBe(true);
    expect(usesMemoryPool({ ffn: ['dense'], skips: [{ kind: 'memoryPlus' }] })).toBe(true);
    const c = parseModelConfig({ ...base, ffn: ['dense', 'memoryPlus', 'moe', 'memory'] });
    expect((memoryLayerConfigFor(c, 1) as MemoryLayerConfig).gating).toBe('silu');
    expect((memoryLayerConfigFor(c, 3) as MemoryLayerConfig).gating).toBe('none');
    expect(() => memoryLayerConfigFor(c, 2)).toThrow(/^ffn\.2: is 'moe', not a memory kind/);
  });

  it('builds each block from its kind and reports its memory', () => {
    const m = new LanguageModel({ ...base, ffn: ['dense', 'memoryPlus', 'moe', 'memory'] });
    expect([0, 1, 2, 3].map((i) => m.ffnSlot(i).kind)).toEqual(['dense', 'memoryPlus', 'moe', 'memory']);
    expect([0, 1, 2, 3].map((i) => m.ffnSlot(i).memory !== undefined)).toEqual([false, true, false, true]);
    expect(m.memoryBlocks()).toEqual([1, 3]);
    expect(m.memorySites().map((s) => s.site)).toEqual(['blocks.1.ffn', 'blocks.3.ffn']);
    m.dispose();
  });
});

describe('skip-layer memories from config.skips', () => {
  const cfg = {
    ...base,
    ffn: ['dense', 'memoryPlus', 'dense', 'dense'],
    skips: [{ read: 0, write: 2, kind: 'memory' }],
  } as ModelConfigInput;

  it('read block i, write after block j, on the one shared pool; counted and inspected', () => {
    const c = parseModelConfig(cfg);
    const m = new LanguageModel(c);
    const sites = m.memorySites();
    expect(sites.map((s) => [s.site, s.readBlock, s.writeBlock])).toEqual([
      ['blocks.1.ffn', 1, 1],
      ['skips.0', 0, 2],
    ]);
    expect(sites.every((s) => s.memory.pool === m.pool)).toBe(true);
    expect((sites[1]!.memory as MemoryLayer).config.gating).toBe('none');
    // counts: the skip's tensors are memory parameters
    const named = m.namedVariables();
    const isMem = (k: string) => k.startsWith('blocks.1.ffn.') || k.startsWith('skips.0.');
    const size = (keys: string[]) => keys.reduce((s, k) => s + named[k]!.size, 0);
    const counts = modelCounts(c);
    expect(Object.keys(named).some((k) => k.startsWith('skips.0.subkeys'))).toBe(true);
    expect(size(Object.keys(named).filter((k) => !isMem(k)))).toBe(counts.denseParams);
    expect(size(Object.keys(named).filter(isMem)) + m.pool!.rows * m.pool!.dim).toBe(counts.memoryParams);
    const without = modelCounts(parseModelConfig({ ...cfg, skips: undefined }));
    expect(counts.flopsPerToken).toBeGreaterThan(without.flopsPerToken);
    // inspection: block 0's x is read by the skip, block 1's by the FFN memory
    const reads = m.inspectMemory([1, 2, 3]);
    expect(reads.map((r) => [r.block, r.site])).toEqual([
      [0, 'skips.0'],
      [1, 'blocks.1.ffn'],
    ]);
    m.dispose();
  });

  it('change the output, and the loss trains through them', () => {
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32');
    const plain = new LanguageModel({ ...cfg, skips: undefined });
    const skip = new LanguageModel(cfg);
    const l0 = plain.loss(ids).dataSync()[0]!;
    const l1 = skip.loss(ids).dataSync()[0]!;
    expect(Math.abs(l0 - l1)).toBeGreaterThan(1e-6);
    const opt = tf.train.adam(1e-2);
    const wq = skip.namedVariables()['skips.0.wq']!;
    const before = Float32Array.from(wq.dataSync());
    opt.minimize(() => skip.loss(ids, { training: true }), false, skip.trainableVariables());
    expect(Array.from(wq.dataSync())).not.toEqual(Array.from(before));
    for (const m of [plain, skip]) m.dispose();
    ids.dispose();
  });

  it('refuses bad skips naming the field', () => {
    expect(() => parseModelConfig({ ...cfg, skips: [{ read: 2, write: 1, kind: 'memory' }] })).toThrow(
      /^skips\.0: needs 0 ≤ read < write < layers \(4\), got 2 → 1/,
    );
    expect(() => parseModelConfig({ ...cfg, skips: [{ read: 0, write: 4, kind: 'memory' }] })).toThrow(/^skips\.0:/);
    expect(() => parseModelConfig({ ...cfg, skips: [{ read: 0, write: 2, kind: 'dense' }] })).toThrow(/^skips\.0\.kind:/);
    expect(() => parseModelConfig({ ...cfg, skips: [{ read: 0, write: 2, kind: 'memory', extra: 1 }] })).toThrow(/^skips\.0/);
  });
});

describe('UltraMem memories (kind ultramem) in blocks and on skip sites', () => {
  const um = {
    ...base,
    ffn: ['dense', 'none', 'dense', 'ultramem'],
    skips: [{ read: 0, write: 1, kind: 'ultramem' }],
    ultramem: { heads: 2, topM: 3, keyDim: 8, expansion: 4, cores: 2 },
    memory: { ...base.memory, valueLrDecay: 10 },
  } as ModelConfigInput;

  it('share one pool of N·cores × dv/cores, count right, add their Tucker aux loss, schedule the value LR', () => {
    const c = parseModelConfig(um);
    const m = new LanguageModel(c);
    expect([m.pool!.rows, m.pool!.dim]).toEqual([36 * 2, 4]); // numKeys² · cores, (D/2) / cores
    expect(m.memorySites().map((s) => s.site)).toEqual(['blocks.3.ffn', 'skips.0']);
    const named = m.namedVariables();
    const isMem = (k: string) => k.startsWith('blocks.3.ffn.') || k.startsWith('skips.0.');
    const size = (keys: string[]) => keys.reduce((s, k) => s + named[k]!.size, 0);
    const counts = modelCounts(c);
    expect(size(Object.keys(named).filter((k) => !isMem(k)))).toBe(counts.denseParams);
    expect(size(Object.keys(named).filter(isMem)) + 72 * 4).toBe(counts.memoryParams);
    expect(Object.keys(named)).toContain('skips.0.tuckerCore');
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], 'int32');
    const withAux = m.loss(ids).dataSync()[0]!;
    const without = m.loss(ids, { aux: false }).dataSync()[0]!;
    expect(withAux).toBeGreaterThanOrEqual(without);
    expect(m.scheduleValueLr(0, 100)).toBeCloseTo(1e-2, 9); // 10 × valueLr 1e-3 at the start
    expect(m.scheduleValueLr(50, 100)).toBeCloseTo(5.5e-3, 9);
    expect(m.scheduleValueLr(100, 100)).toBeCloseTo(1e-3, 9);
    const opt = tf.train.adam(1e-2);
    opt.minimize(() => m.loss(ids, { training: true }), false, m.trainableVariables());
    expect(m.inspectMemory([1, 2, 3]).map((r) => r.site)).toEqual(['skips.0', 'blocks.3.ffn']);
    m.dispose();
    ids.dispose();
  });

  it('a pool shared by kinds of different shapes is refused, naming ffn', () => {
    expect(() => new LanguageModel({ ...um, ffn: ['dense', 'memoryPlus', 'dense', 'ultramem'] })).toThrow(
      /^ffn: memory kinds .* need pools of different shapes/,
    );
  });
});
