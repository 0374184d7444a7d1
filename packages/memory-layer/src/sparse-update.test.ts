/** Slot ranking (TF-IDF of reads) and the restricted value table of sparse-update.ts. */
import { ConfigError } from '@mnemo/core';
import { ValueStore, readStoreTensors } from '@mnemo/kernels';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backgroundReads, restrictUpdates, slotScores, topSlots } from './sparse-update';

describe('slot ranking', () => {
  // slot 0: read by everything; slot 1: rare in the background; slot 2: never in the background
  const bg = backgroundReads(4, [
    { counts: [10, 1, 0, 3], tokens: 5 },
    { counts: [10, 0, 0, 6], tokens: 5 },
  ]);

  it('sums background reads', () => {
    expect(bg.reads).toBe(30);
    expect(bg.tokens).toBe(10);
    expect(Array.from(bg.counts)).toEqual([20, 1, 0, 9]);
  });

  it('scores c_text · log((R + 1) / (c_bg + 1)) and prefers text-specific slots', () => {
    const text = [5, 2, 1, 0];
    const s = slotScores(text, bg);
    expect(s[0]).toBeCloseTo(5 * Math.log(31 / 21), 12);
    expect(s[1]).toBeCloseTo(2 * Math.log(31 / 2), 12);
    expect(s[2]).toBeCloseTo(Math.log(31), 12);
    expect(s[3]).toBe(0); // not read by the text
    expect(Array.from(topSlots(text, bg, 2))).toEqual([1, 2]);
    expect(Array.from(topSlots(text, bg, 10))).toEqual([0, 1, 2]); // only slots the text reads
  });

  it('refuses t < 1 and mismatched lengths, naming the field', () => {
    expect(() => topSlots([1, 0, 0, 0], bg, 0)).toThrow(ConfigError);
    expect(() => slotScores([1], bg)).toThrow(/textCounts/);
  });
});

describe('restrictUpdates', () => {
  it('updates only the allowed rows with the table’s own optimizer', () => {
    const table = ValueStore.create({ rows: 6, dim: 3, optimizer: { kind: 'sgd', lr: 0.5 }, init: { kind: 'normal', std: 1, seed: 1 } });
    try {
      const all = Int32Array.from([0, 1, 2, 3, 4, 5]);
      const before = table.readRows(all);
      const view = restrictUpdates(table, Int32Array.from([2]));
      const ids = Int32Array.from([1, 2, 4, 2]); // 2 bags of 2
      const w = Float32Array.from([1, 1, 1, 1]);
      const g = Float32Array.from([1, 1, 1, 1, 1, 1]);
      expect(Array.from(view.forward(ids, w, 2))).toEqual(Array.from(table.forward(ids, w, 2)));
      view.backward(ids, w, g, 2);
      const after = table.readRows(all);
      for (let r = 0; r < 6; r++) {
        const a = Array.from(before.subarray(r * 3, r * 3 + 3));
        const b = Array.from(after.subarray(r * 3, r * 3 + 3));
        if (r === 2) expect(b).not.toEqual(a);
        else expect(b).toEqual(a);
      }
      expect(() => restrictUpdates(table, Int32Array.from([6]))).toThrow(ConfigError);
    } finally {
      table.dispose();
    }
  });

  it('returns the full weight gradient, frozen reads included (queries upstream still learn)', () => {
    const mk = () => ValueStore.create({ rows: 6, dim: 3, optimizer: { kind: 'sgd', lr: 0.5 }, init: { kind: 'normal', std: 1, seed: 4 } });
    const [free, held] = [mk(), mk()];
    try {
      const ids = Int32Array.from([1, 2, 4, -1, 5, 2]); // 2 bags of 3, one padding
      const w = Float32Array.from([0.5, 1, -1, 1, 2, 0.25]);
      const g = Float32Array.from([1, -2, 0.5, 0.3, 1, -1]);
      const want = free.backward(ids, w, g, 3); // gw from the values before the update
      const got = restrictUpdates(held, Int32Array.from([2])).backward(ids, w, g, 3);
      expect(got[3]).toBe(0); // padding reads nothing
      for (let i = 0; i < ids.length; i++) expect(got[i]!).toBeCloseTo(want[i]!, 5);
      expect(Array.from(got).filter((x) => x !== 0).length).toBe(5);
    } finally {
      free.dispose();
      held.dispose();
    }
  });

  it('keeps every other row’s values and Adam state byte-identical', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wt-teach-state-'));
    const table = ValueStore.create({ rows: 8, dim: 4, optimizer: { kind: 'adam', lr: 0.1 }, init: { kind: 'normal', std: 1, seed: 2 } });
    try {
      const ids = Int32Array.from([0, 3, 5, 6]);
      const w = Float32Array.from([1, 1, 1, 1]);
      const g = Float32Array.from({ length: 16 }, (_, i) => i / 16 - 0.4);
      table.backward(ids, w, g, 1); // some Adam state everywhere the ids touched
      table.save(path.join(dir, 'a.store'));
      restrictUpdates(table, Int32Array.from([3, 6])).backward(ids, w, g, 1);
      table.save(path.join(dir, 'b.store'));
      const a = readStoreTensors(path.join(dir, 'a.store'));
      const b = readStoreTensors(path.join(dir, 'b.store'));
      let perRow = 0;
      for (const [name, ta] of Object.entries(a.tensors)) {
        if (ta.shape[0] !== 8) continue;
        perRow++;
        const n = ta.bytes.length / 8;
        const tb = b.tensors[name]!;
        for (let r = 0; r < 8; r++) {
          const same =
            Buffer.compare(Buffer.from(ta.bytes.subarray(r * n, (r + 1) * n)), Buffer.from(tb.bytes.subarray(r * n, (r + 1) * n))) === 0;
          expect(same, `${name} row ${r}`).toBe(r !== 3 && r !== 6);
        }
      }
      expect(perRow).toBeGreaterThanOrEqual(2); // values and at least one state tensor
    } finally {
      table.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
