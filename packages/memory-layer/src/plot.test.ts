import { describe, expect, it } from 'vitest';
import { usageHistogramSvg } from './plot';
import { logTicks, niceStep, niceTicks } from './ticks';

/** bar heights by bin label, read off the <title> of each bar */
function bars(svg: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"[^>]*><title>(.+?) reads/g)) {
    out.set(m[2]!, Number(m[1]));
  }
  return out;
}

describe('nice ticks', () => {
  it('steps are 1, 2 or 5 × 10^k and ticks cover the range', () => {
    for (const [lo, hi] of [
      [0, 7.3],
      [2.137, 2.981],
      [0, 1234],
      [-0.04, 0.17],
      [5, 5],
    ] as const) {
      const t = niceTicks(lo, hi);
      const step = niceStep(t[1]! - t[0]!, 1);
      expect([1, 2, 5, 10]).toContain(Number((step / 10 ** Math.floor(Math.log10(step))).toFixed(6)));
      expect(t[0]!).toBeLessThanOrEqual(Math.min(lo, hi));
      expect(t[t.length - 1]!).toBeGreaterThanOrEqual(Math.max(lo, hi));
      const d = t[1]! - t[0]!;
      for (const v of t) expect(Math.abs(v / d - Math.round(v / d))).toBeLessThan(1e-6); // multiples of the step
      expect(t.length).toBeGreaterThanOrEqual(2);
      expect(t.length).toBeLessThanOrEqual(12);
    }
    expect(niceTicks(2.137, 2.981)).toEqual([2, 2.2, 2.4, 2.6, 2.8, 3]);
    expect(niceTicks(0, 7.3, 4)).toEqual([0, 2, 4, 6, 8]);
    expect(logTicks(4000)).toEqual([1, 10, 100, 1000, 10000]);
  });
});

describe('usage histogram axis', () => {
  it('counts spanning decades: log axis, so bins with 1–3 slots draw visible bars', () => {
    const reads = new Array<number>(4000).fill(0);
    reads[0] = 1;
    reads[1] = 9;
    reads[2] = 10;
    reads[3] = 12;
    const svg = usageHistogramSvg(reads);
    expect(svg).toContain('slots (log scale)');
    const h = bars(svg);
    expect(h.get('0')!).toBeGreaterThan(200);
    // on a linear axis 1 of 3996 slots would be 0.06 px of a 240 px plot; here ≥ 8% of the tallest
    expect(h.get('1')!).toBeGreaterThan(h.get('0')! * 0.08);
    expect(h.get('8–15')!).toBeGreaterThan(h.get('1')!);
    expect(h.get('2–3')).toBe(0); // empty bins stay empty
    for (const t of ['1', '10', '100', '1000', '10000']) expect(svg).toContain(`class="tick">${t}</text>`);
  });

  it('counts within one decade: a linear axis with 1-2-5 ticks', () => {
    const svg = usageHistogramSvg([0, 0, 0, 1, 1, 2, 3]);
    expect(svg).not.toContain('log scale');
    const ticks = [...svg.matchAll(/class="tick">([^<]+)</g)].map((m) => Number(m[1]));
    expect(ticks).toEqual([0, 1, 2, 3]);
    const h = bars(svg);
    expect(h.get('0')!).toBeCloseTo(h.get('1')! * 1.5, 5);
  });
});
