import { describe, expect, it } from 'vitest';
import { episodeBatch } from './episodes';
import { statementOf } from './facts';

const filler = ['Call me Ishmael, some years ago.', 'The sea was calm that morning.', 'Queequeg sharpened his harpoon.'];
// a toy "tokenizer": one id per character
const encode = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const decode = (ids: ArrayLike<number>) => String.fromCharCode(...Array.from(ids));

describe('reading episodes', () => {
  it('rows state fresh facts in template 0, then filler; references state them in another template', () => {
    const o = { rows: 4, width: 200, factsPerRow: 3, filler, seed: 3 };
    const e = episodeBatch(o, encode);
    expect(e.ids).toHaveLength(4 * 200);
    expect(e.references).toHaveLength(12);
    for (let b = 0; b < 4; b++) {
      const row = decode(e.ids.subarray(b * 200, (b + 1) * 200));
      const fs = e.facts[b]!;
      expect(fs).toHaveLength(3);
      expect(row.startsWith(` ${statementOf(fs[0]!, 0)} ${statementOf(fs[1]!, 0)}`)).toBe(true);
      expect(filler.some((s) => row.includes(s.slice(0, 10)))).toBe(true);
      fs.forEach((f, i) => {
        const ref = e.references[b * 3 + i]!;
        expect(ref).toBe(` ${statementOf(f, 1)}`);
        expect(ref).toContain(f.object);
        expect(row).not.toContain(ref.trim()); // another phrasing than the row's
      });
    }
    expect(episodeBatch(o, encode)).toEqual(e);
    expect(episodeBatch({ ...o, seed: 4 }, encode).references).not.toEqual(e.references);
  });

  it('inContext 1: every reference is also in its row, before the statements, in a shuffled order', () => {
    const o = { rows: 6, width: 400, factsPerRow: 3, filler, seed: 5 };
    const plain = episodeBatch(o, encode);
    expect(episodeBatch({ ...o, inContext: 0 }, encode)).toEqual(plain); // 0 draws nothing extra: old batches unchanged
    const e = episodeBatch({ ...o, inContext: 1 }, encode);
    let reordered = 0;
    for (let b = 0; b < 6; b++) {
      const row = decode(e.ids.subarray(b * 400, (b + 1) * 400));
      const fs = e.facts[b]!;
      const refAt = fs.map((_, i) => row.indexOf(e.references[b * 3 + i]!.trim()));
      const stAt = fs.map((f) => row.indexOf(statementOf(f, 0)));
      for (const a of refAt) expect(a).toBeGreaterThanOrEqual(0);
      expect(Math.max(...refAt)).toBeLessThan(Math.min(...stAt)); // references first
      const rank = (xs: number[]) => xs.map((x) => xs.filter((y) => y < x).length).join();
      if (rank(refAt) !== rank(stAt)) reordered++;
    }
    expect(reordered).toBeGreaterThan(0); // a statement's reference is not at a fixed ordinal
    for (const bad of [-0.1, 1.5, Number.NaN]) expect(() => episodeBatch({ ...o, inContext: bad }, encode)).toThrow(/inContext/);
  });

  it('never uses an excluded entity; every fact of a batch is new', () => {
    const first = episodeBatch({ rows: 8, width: 120, factsPerRow: 2, filler, seed: 1 }, encode);
    const exclude = new Set(first.facts.flat().map((f) => f.entity));
    const e = episodeBatch({ rows: 8, width: 120, factsPerRow: 2, filler, seed: 1, exclude }, encode);
    for (const f of e.facts.flat()) expect(exclude.has(f.entity)).toBe(false);
    expect(new Set(e.facts.flat().map((f) => f.entity)).size).toBe(16);
  });

  it('refuses rows it cannot fill', () => {
    expect(() => episodeBatch({ rows: 1, width: 500, factsPerRow: 1, filler: [], seed: 1 }, encode)).toThrow(/filler/);
  });
});
