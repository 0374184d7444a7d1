/**
 * Sparse memory finetuning (teach.ts): only the top-t value rows change, dense weights never do,
 * the taught text's loss drops, bad input throws a ConfigError naming the field.
 */
import { ConfigError, mulberry32 } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type BackgroundReads, MemoryPool, loadBackgroundReads, saveBackgroundReads } from '@mnemo/memory-layer';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffnPlan } from './config';
import { LanguageModel } from './model';
import { computeBackgroundReads, slotReadCounts, teachText } from './teach';

const V = 61;
let model: LanguageModel;
let bg: BackgroundReads;
const rand = mulberry32(11);
const seq = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));

function allRows(m: LanguageModel): Uint8Array {
  const ids = Int32Array.from({ length: m.pool!.rows }, (_, i) => i);
  return new Uint8Array(m.pool!.readRows(ids).buffer);
}
function dense(m: LanguageModel): Map<string, Uint8Array> {
  return new Map(Object.entries(m.namedVariables()).map(([k, v]) => [k, new Uint8Array((v.dataSync() as Float32Array).slice().buffer)]));
}

const CONFIG = {
  vocabSize: V,
  dim: 32,
  layers: 2,
  heads: 2,
  kvHeads: 2,
  maxSeqLen: 32,
  ffnHidden: 64,
  ffn: ffnPlan('memoryPlus', 2, 1),
  memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16 },
  seed: 5,
};

beforeAll(async () => {
  await initBackend({ log: false });
  model = new LanguageModel(CONFIG);
  bg = computeBackgroundReads(
    model,
    Array.from({ length: 20 }, () => seq(24)),
  );
});
afterAll(() => model.dispose());

describe('teachText', () => {
  it('background reads count every lookup of the sample and round-trip through their file', () => {
    expect(bg.slots).toBe(256);
    expect(bg.tokens).toBe(20 * 24);
    expect(bg.reads).toBe(20 * 24 * 2 * 4); // tokens × heads × topK, one memory block
    const dir = mkdtempSync(path.join(tmpdir(), 'wt-teach-'));
    try {
      saveBackgroundReads(path.join(dir, 'bg.json'), bg);
      const back = loadBackgroundReads(path.join(dir, 'bg.json'));
      expect(back.reads).toBe(bg.reads);
      expect(Array.from(back.counts)).toEqual(Array.from(bg.counts));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes only the chosen rows, leaves dense weights alone, and lowers the text loss', () => {
    const text = seq(20);
    const rowsBefore = allRows(model);
    const denseBefore = dense(model);
    const read = slotReadCounts(model, text.slice(0, -1));
    const r = teachText(model, text, bg, { t: 32, steps: 30, valueLr: 0.05 });
    expect(r.slots.length).toBe(32);
    for (const s of r.slots) expect(read[s]).toBeGreaterThan(0); // chosen among the slots the text reads
    const rowsAfter = allRows(model);
    const dv = model.pool!.dim * 4; // bytes per row
    const chosen = new Set(r.slots);
    let changed = 0;
    for (let row = 0; row < model.pool!.rows; row++) {
      const a = rowsBefore.subarray(row * dv, (row + 1) * dv);
      const b = rowsAfter.subarray(row * dv, (row + 1) * dv);
      const same = a.every((x, i) => x === b[i]);
      if (chosen.has(row)) {
        if (!same) changed++;
      } else expect(same, `row ${row} is not chosen but changed`).toBe(true);
    }
    expect(changed).toBe(32);
    for (const [name, before] of denseBefore)
      expect(Buffer.compare(Buffer.from(before), Buffer.from(dense(model).get(name)!)), name).toBe(0);
    expect(r.lossAfter).toBeLessThan(r.lossBefore - 0.25);
  });

  it('names the bad field', () => {
    const bad = (f: () => unknown, field: string) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).field).toBe(field);
        return;
      }
      throw new Error(`no error for ${field}`);
    };
    bad(() => teachText(model, [], bg), 'text');
    bad(() => teachText(model, [3], bg), 'text');
    bad(() => teachText(model, seq(40), bg), 'text');
    bad(() => teachText(model, [1, 2.5, 3], bg), 'text');
    bad(() => teachText(model, [1, V], bg), 'text');
    bad(() => teachText(model, [1, '2' as unknown as number], bg), 'text');
    bad(() => teachText(model, seq(5), bg, { t: 0 }), 't');
    bad(() => teachText(model, seq(5), bg, { t: -3 }), 't');
    bad(() => teachText(model, seq(5), bg, { steps: 1.5 }), 'steps');
    bad(() => teachText(model, seq(5), bg, { valueLr: Number.NaN }), 'valueLr');
  });

  it('a deferred pool applies the same restricted update at each step', () => {
    const pool = new MemoryPool({ rows: 256, dim: 32, deferred: true, optimizer: { kind: 'adam', lr: 1e-3 }, seed: 9 });
    const m = new LanguageModel(CONFIG, { pool });
    try {
      const ids = Int32Array.from({ length: 256 }, (_, i) => i);
      const before = pool.readRows(ids);
      const r = teachText(m, seq(12), bg, { t: 4, steps: 5, valueLr: 0.05 });
      const after = pool.readRows(ids);
      const changed = new Set<number>();
      for (let s = 0; s < 256; s++) if (before.subarray(s * 32, s * 32 + 32).some((x, i) => x !== after[s * 32 + i])) changed.add(s);
      expect([...changed].sort((a, b) => a - b)).toEqual(Array.from(r.slots));
      expect(r.lossAfter).toBeLessThan(r.lossBefore);
    } finally {
      m.dispose();
    }
  });
});
