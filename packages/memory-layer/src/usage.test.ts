import { describe, expect, it } from 'vitest';
import { readCountBins, usageHistogramSvg } from './plot';
import { UsageTracker, massStats } from './usage';

describe('usage metrics', () => {
  it('uniform usage: KL 0, Gini 0, every slot used, coverage proportional', () => {
    const t = new UsageTracker(100);
    const ids = Array.from({ length: 100 }, (_, i) => i);
    t.add(
      ids,
      ids.map(() => 0.5),
    );
    const r = t.report();
    expect(r.usedFraction).toBe(1);
    expect(r.klWeights).toBeCloseTo(0, 12);
    expect(r.klReads).toBeCloseTo(0, 12);
    expect(r.giniWeights).toBeCloseTo(0, 12);
    expect(r.slotsFor50).toBe(50);
    expect(r.slotsFor90).toBe(90);
    expect(r.slotsFor99).toBe(99);
    expect(r.lookups).toBe(100);
  });

  it('collapsed usage: KL = log N, Gini → 1, one slot holds everything', () => {
    const t = new UsageTracker(64);
    t.add([7, 7, 7, -1], [0.3, 0.3, 0.4, 9]); // -1 is padding, ignored
    const r = t.report();
    expect(r.usedFraction).toBeCloseTo(1 / 64, 12);
    expect(r.klWeights).toBeCloseTo(Math.log(64), 12);
    expect(r.giniWeights).toBeCloseTo(1 - 1 / 64, 12);
    expect([r.slotsFor50, r.slotsFor90, r.slotsFor99]).toEqual([1, 1, 1]);
    expect(r.lookups).toBe(3);
  });

  it('matches a direct computation on a skewed distribution', () => {
    const mass = [8, 4, 2, 1, 1, 0, 0, 0];
    const s = massStats(mass);
    const tot = 16;
    let kl = Math.log(8);
    for (const x of mass) if (x > 0) kl += (x / tot) * Math.log(x / tot);
    expect(s.kl).toBeCloseTo(kl, 12);
    // Gini by the mean-absolute-difference definition
    let mad = 0;
    for (const a of mass) for (const b of mass) mad += Math.abs(a - b);
    expect(s.gini).toBeCloseTo(mad / (2 * mass.length * tot), 12);
    expect(s.slotsFor(0.5)).toBe(1); // 8/16
    expect(s.slotsFor(0.9)).toBe(4); // cumulative 0.5, 0.75, 0.875, 0.9375
  });

  it('rejects bad input naming the field', () => {
    const t = new UsageTracker(4);
    expect(() => t.add([0, 1], [1])).toThrow(/weights: expected 2/);
    expect(() => t.add([4], [1])).toThrow(/ids: element 0 is 4/);
    expect(() => new UsageTracker(0)).toThrow(/slots/);
  });

  it('bins read counts in powers of two and renders an SVG', () => {
    const bins = readCountBins([0, 0, 1, 2, 3, 4, 9]);
    expect(bins.map((b) => [b.label, b.slots])).toEqual([
      ['0', 2],
      ['1', 1],
      ['2–3', 2],
      ['4–7', 1],
      ['8–15', 1],
    ]);
    const t = new UsageTracker(7);
    t.add([2, 3, 3, 4, 4, 4], [1, 1, 1, 1, 1, 1]);
    const svg = usageHistogramSvg(t.readCounts, { title: 'a <b>', report: t.report() });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('a &lt;b&gt;');
    expect(svg).toContain('42.9% of 7 slots used');
    expect((svg.match(/<rect /g) ?? []).length).toBe(1 + 3); // background + 3 bins (0, 1, 2–3)
  });
});
