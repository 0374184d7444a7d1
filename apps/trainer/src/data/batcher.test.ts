import { describe, expect, it } from 'vitest';
import { Batcher, evalWindows } from './batcher';

const tokens = Int32Array.from({ length: 500 }, (_, i) => i); // token i at position i: windows are easy to check

describe('Batcher', () => {
  it('batch `step` depends only on (seed, step): a fresh batcher (a resumed run) reads the same batches', () => {
    const a = new Batcher(tokens, 4, 8, 11);
    const b = new Batcher(tokens, 4, 8, 11);
    const seq = [0, 1, 2, 3, 4].map((s) => a.at(s));
    // out of order, as after a resume at step 3
    expect(b.at(3)).toEqual(seq[3]);
    expect(b.at(0)).toEqual(seq[0]);
    expect(seq[1]).not.toEqual(seq[2]);
    expect(new Batcher(tokens, 4, 8, 12).at(1)).not.toEqual(seq[1]);
  });

  it('rows are contiguous windows of seqLen + 1 tokens inside the corpus (inputs + next-token targets)', () => {
    const bt = new Batcher(tokens, 6, 10, 3);
    const starts = new Set<number>();
    for (let s = 0; s < 50; s++) {
      const ids = bt.at(s);
      expect(ids.length).toBe(6 * 11);
      for (let r = 0; r < 6; r++) {
        const row = ids.subarray(r * 11, (r + 1) * 11);
        for (let j = 1; j < 11; j++) expect(row[j]).toBe(row[0]! + j);
        expect(row[0]).toBeGreaterThanOrEqual(0);
        expect(row[10]).toBeLessThan(tokens.length);
        starts.add(row[0]!);
      }
    }
    // the starts spread over the corpus (not a few fixed positions)
    expect(starts.size).toBeGreaterThan(150);
    expect(Math.max(...starts)).toBeGreaterThan(400);
  });

  it('refuses a corpus shorter than one window', () => {
    expect(() => new Batcher(tokens.subarray(0, 9), 2, 8, 1)).toThrow(/fewer than one window/);
  });
});

describe('evalWindows', () => {
  it('cuts fixed, non-overlapping windows from the start, at most `max`', () => {
    const w = evalWindows(tokens, 9, 3);
    expect(w.map((x) => x[0])).toEqual([0, 10, 20]);
    expect(w.every((x) => x.length === 10)).toBe(true);
    expect(evalWindows(tokens.subarray(0, 25), 9, 100)).toHaveLength(2);
    expect(evalWindows(tokens.subarray(0, 5), 9, 100)).toHaveLength(0);
  });
});
