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
});
