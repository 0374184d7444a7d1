/** Loss curves as SVG, written atomically by the trainer; axis ticks at 1-2-5 × 10^k values. */
import { niceTicks, tickLabel } from '@mnemo/memory-layer';

export interface Series {
  name: string;
  points: [number, number][]; // (step, value)
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

/**
 * Lines of (x, y) points; x is the step unless `xLabel` says otherwise. `logX`: a log-scaled x axis
 * ticked at the points' own x values (e.g. fact counts 500, 1k, 2k, …).
 */
export function lossCurveSvg(
  series: Series[],
  opts: { title?: string; width?: number; height?: number; xLabel?: string; yLabel?: string; logX?: boolean } = {},
): string {
  const W = opts.width ?? 720;
  const H = opts.height ?? 400;
  const m = { l: 60, r: 150, t: 40, b: 50 };
  const all = series.flatMap((s) => s.points);
  const ys = all.map((p) => p[1]).filter(Number.isFinite);
  const yt = niceTicks(Math.min(...ys, Number.POSITIVE_INFINITY), Math.max(...ys, Number.NEGATIVE_INFINITY), 5);
  const xs = [...new Set(all.map((p) => p[0]))].filter((x) => x > 0).sort((a, b) => a - b);
  const logX = opts.logX === true && xs.length > 1;
  const xt = logX ? xs : niceTicks(0, Math.max(5, ...all.map((p) => p[0])), 5); // steps are whole: step ≥ 1
  const xmax = xt[xt.length - 1]!;
  const ymin = yt[0]!;
  const span = yt[yt.length - 1]! - ymin;
  const lx0 = Math.log(xs[0] ?? 1);
  const lxSpan = Math.log(xmax) - lx0 || 1;
  const X = logX
    ? (x: number) => m.l + 20 + ((Math.log(x) - lx0) / lxSpan) * (W - m.l - m.r - 40)
    : (x: number) => m.l + (x / xmax) * (W - m.l - m.r);
  const Y = (y: number) => m.t + (1 - (y - ymin) / span) * (H - m.t - m.b);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${opts.title ?? 'loss'}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${opts.xLabel ?? 'step'}</text>`,
  ];
  if (opts.yLabel) {
    parts.push(
      `<text x="14" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})">${opts.yLabel}</text>`,
    );
  }
  for (const y of yt) {
    parts.push(`<text x="${m.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end" class="ytick">${tickLabel(y)}</text>`);
  }
  for (const x of xt) {
    parts.push(`<text x="${X(x).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle" class="xtick">${tickLabel(x)}</text>`);
  }
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    // a path of one point draws nothing: mark lone points (and every point of a short series)
    if (pts.length <= 20) {
      for (const p of pts) parts.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    parts.push(`<text x="${W - m.r + 10}" y="${m.t + 16 * i + 10}" fill="${c}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Grouped bars (e.g. recall % per fact set and condition) as SVG; values in [0, yMax]. */
export function barChartSvg(
  groups: { name: string; values: number[] }[],
  series: string[],
  opts: { title?: string; yLabel?: string; yMax?: number; width?: number; height?: number } = {},
): string {
  const W = opts.width ?? 760;
  const H = opts.height ?? 380;
  const m = { l: 60, r: 210, t: 40, b: 50 };
  const yMax = opts.yMax ?? Math.max(1e-9, ...groups.flatMap((g) => g.values).filter(Number.isFinite));
  const gw = (W - m.l - m.r) / Math.max(1, groups.length);
  const bw = (gw * 0.8) / Math.max(1, series.length);
  const Y = (y: number) => m.t + (1 - Math.min(1, Math.max(0, y / yMax))) * (H - m.t - m.b);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${opts.title ?? ''}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="14" y="${(m.t + H - m.b) / 2}" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})" text-anchor="middle">${opts.yLabel ?? ''}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    parts.push(`<text x="${m.l - 6}" y="${Y(y) + 4}" text-anchor="end">${Number(y.toFixed(1))}</text>`);
  }
  groups.forEach((g, gi) => {
    const x0 = m.l + gi * gw + gw * 0.1;
    parts.push(`<text x="${x0 + gw * 0.4}" y="${H - m.b + 16}" text-anchor="middle">${g.name}</text>`);
    g.values.forEach((v, si) => {
      const y = Y(Number.isFinite(v) ? v : 0);
      const c = COLOURS[si % COLOURS.length];
      parts.push(
        `<rect x="${(x0 + si * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw * 0.9).toFixed(1)}" height="${(H - m.b - y).toFixed(1)}" fill="${c}"/>`,
      );
    });
  });
  series.forEach((s, si) => {
    const c = COLOURS[si % COLOURS.length];
    parts.push(`<rect x="${W - m.r + 10}" y="${m.t + 18 * si}" width="10" height="10" fill="${c}"/>`);
    parts.push(`<text x="${W - m.r + 26}" y="${m.t + 18 * si + 10}">${s}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
