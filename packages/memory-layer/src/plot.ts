/**
 * A usage histogram as a standalone SVG (no dependencies): how many slots were read 0 times,
 * once, 2–3 times, 4–7 times, … (log₂ bins). A healthy memory has a short "0" bar and a
 * broad hump; a collapsed one has most slots in "0" and a few in the far right bins.
 */
import { logTicks, niceTicks, tickLabel } from './ticks';
import type { UsageReport } from './usage';

export interface HistogramBin {
  label: string; // e.g. "0", "1", "2–3"
  lo: number; // inclusive
  hi: number; // inclusive
  slots: number; // how many slots fall in the bin
}

/** log₂ bins of per-slot read counts: [0], [1], [2,3], [4,7], … */
export function readCountBins(readCounts: ArrayLike<number>): HistogramBin[] {
  let max = 0;
  for (let i = 0; i < readCounts.length; i++) max = Math.max(max, readCounts[i]!);
  const bins: HistogramBin[] = [{ label: '0', lo: 0, hi: 0, slots: 0 }];
  for (let lo = 1; lo <= Math.max(1, max); lo *= 2) {
    const hi = lo * 2 - 1;
    bins.push({ label: lo === hi ? `${lo}` : `${lo}–${hi}`, lo, hi, slots: 0 });
  }
  for (let i = 0; i < readCounts.length; i++) {
    const c = Math.round(readCounts[i]!);
    const b = c <= 0 ? 0 : 1 + Math.floor(Math.log2(c));
    bins[Math.min(b, bins.length - 1)]!.slots++;
  }
  return bins;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Render the histogram (and the headline metrics, when given) as an SVG document. */
export function usageHistogramSvg(
  readCounts: ArrayLike<number>,
  opts: { title?: string; report?: UsageReport; width?: number; height?: number } = {},
): string {
  const bins = readCountBins(readCounts);
  const W = opts.width ?? 720;
  const H = opts.height ?? 360;
  const m = { l: 70, r: 20, t: 50, b: 70 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const counts = bins.map((b) => b.slots).filter((c) => c > 0);
  // counts spanning decades (e.g. 4000 slots in "0", 3 in "8–15") get a log axis, on log10(1 + n)
  // so one slot still draws a bar; else a linear axis with 1-2-5 ticks
  const log = counts.length > 1 && Math.max(...counts) / Math.min(...counts) >= 10;
  const ticks = log ? logTicks(Math.max(...counts)) : niceTicks(0, Math.max(1, ...counts), 4);
  const top = ticks[ticks.length - 1]!;
  const frac = (v: number) => (log ? Math.log10(1 + v) / Math.log10(1 + top) : v / top);
  const bw = pw / bins.length;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title ?? 'Memory slot usage')}</text>`,
  ];
  if (opts.report) {
    const r = opts.report;
    const line =
      `${(100 * r.usedFraction).toFixed(1)}% of ${r.slots} slots used · KL(w) ${r.klWeights.toFixed(3)} · ` +
      `Gini(w) ${r.giniWeights.toFixed(3)} · 50/90/99% mass in ${r.slotsFor50}/${r.slotsFor90}/${r.slotsFor99} slots`;
    parts.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(line)}</text>`);
  }
  // y grid and ticks
  for (const v of log ? [0, ...ticks] : ticks) {
    const y = (m.t + ph - ph * frac(v)).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${Number(y) + 4}" text-anchor="end" class="tick">${tickLabel(v)}</text>`);
  }
  bins.forEach((b, i) => {
    const h = ph * frac(b.slots);
    const x = m.l + i * bw;
    parts.push(
      `<rect x="${(x + 2).toFixed(1)}" y="${(m.t + ph - h).toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${i === 0 ? '#d62728' : '#1f77b4'}"><title>${esc(b.label)} reads: ${b.slots} slots</title></rect>`,
    );
    parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle" font-size="10">${esc(b.label)}</text>`);
  });
  parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="black"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="black"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 30}" text-anchor="middle">reads per slot (log₂ bins)</text>`);
  parts.push(
    `<text x="18" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.t + ph / 2})">${log ? 'slots (log scale)' : 'slots'}</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
