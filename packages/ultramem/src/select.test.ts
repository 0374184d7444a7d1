/**
 * The host top-k selections against a full sort, ties included (values drawn from a few levels).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectTop, selectTopOf } from './select';

const sorted = (v: number[], k: number, sign: 1 | -1) =>
  v
    .map((x, p) => [sign * x, p] as const)
    .sort((a, b) => b[0] - a[0] || (sign === 1 ? a[1] - b[1] : b[1] - a[1]))
    .slice(0, k)
    .map(([, p]) => p);

describe('selectTopOf', () => {
  it('equals a full sort: k largest ties → lower index; k smallest ties → higher index', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 20 }), (v, k) => {
        const off = 3;
        const data = Float32Array.from([9, 9, 9, ...v]);
        for (const sign of [1, -1] as const) {
          const out = new Int32Array(k);
          const got = selectTopOf(data, off, v.length, k, out, sign);
          expect([...out.subarray(0, got)]).toEqual(sorted(v, k, sign));
        }
      }),
    );
  });

  it('agrees with the callback version selectTop', () => {
    const v = Float32Array.from({ length: 200 }, (_, i) => Math.sin(i * 1.7) * 3);
    const a = new Int32Array(16);
    const b = new Int32Array(16);
    selectTopOf(v, 0, 200, 16, a);
    selectTop(
      200,
      16,
      (p) => v[p]!,
      (p) => p,
      b,
    );
    expect([...a]).toEqual([...b]);
  });
});
