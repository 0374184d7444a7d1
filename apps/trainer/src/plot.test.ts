import { describe, expect, it } from 'vitest';
import { barChartSvg, lossCurveSvg } from './plot';

describe('SVG plots', () => {
  it('bar chart: one bar per group × series, heights proportional to the value, a legend entry per series', () => {
    const svg = barChartSvg(
      [
        { name: 'B', values: [50, 0, 25] },
        { name: 'C', values: [100, 10, Number.NaN] },
      ],
      ['on', 'off', 'dense'],
      { title: 'recall', yMax: 100, height: 250 },
    );
    expect(svg.startsWith('<svg')).toBe(true);
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(bars).toHaveLength(9); // 6 bars, then the legend's three 10×10 squares
    // plot height 250 − 40 − 50 = 160: 50% → 80, 0 → 0, 25% → 40, 100% → 160, 10% → 16, NaN → 0
    expect(bars).toEqual([80, 0, 40, 160, 16, 0, 10, 10, 10]);
    for (const s of ['on', 'off', 'dense', 'B', 'C', 'recall']) expect(svg).toContain(`>${s}</text>`);
  });

  it('loss curves: one path per series', () => {
    const svg = lossCurveSvg([
      {
        name: 'a',
        points: [
          [1, 3],
          [2, 2],
        ],
      },
      {
        name: 'b',
        points: [
          [1, 4],
          [2, 1],
        ],
      },
    ]);
    expect(svg.match(/<path /g)).toHaveLength(2);
  });

  it('loss curves: a one-point series draws a visible marker inside the plot', () => {
    const svg = lossCurveSvg([{ name: 'only', points: [[1, 2.3456]] }], { width: 720, height: 400 });
    const c = /<circle cx="([\d.]+)" cy="([\d.]+)" r="(\d+)"/.exec(svg);
    expect(c).not.toBeNull();
    expect(Number(c![3])).toBeGreaterThan(0);
    const [cx, cy] = [Number(c![1]), Number(c![2])];
    expect(cx).toBeGreaterThan(60);
    expect(cx).toBeLessThan(720 - 150);
    expect(cy).toBeGreaterThan(40);
    expect(cy).toBeLessThan(400 - 50);
  });

  it('loss curves: ticks at 1, 2 or 5 × 10^k steps, covering the data', () => {
    const pts: [number, number][] = Array.from({ length: 37 }, (_, i) => [i + 1, 7.13 - i * 0.131]);
    const svg = lossCurveSvg([{ name: 'a', points: pts }]);
    for (const cls of ['ytick', 'xtick']) {
      const t = [...svg.matchAll(new RegExp(`class="${cls}">([^<]+)<`, 'g'))].map((m) => Number(m[1]));
      expect(t.length).toBeGreaterThanOrEqual(3);
      const step = t[1]! - t[0]!;
      const mant = Number((step / 10 ** Math.floor(Math.log10(step) + 1e-9)).toFixed(6));
      expect([1, 2, 5]).toContain(mant);
      for (let i = 1; i < t.length; i++) expect(t[i]! - t[i - 1]!).toBeCloseTo(step, 9);
      for (const v of t) expect(Math.abs(v / step - Math.round(v / step))).toBeLessThan(1e-6);
      const vals = cls === 'ytick' ? pts.map((p) => p[1]) : pts.map((p) => p[0]);
      expect(t[0]!).toBeLessThanOrEqual(Math.min(...vals));
      expect(t[t.length - 1]!).toBeGreaterThanOrEqual(Math.max(...vals));
    }
  });
});
