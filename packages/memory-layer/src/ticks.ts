/**
 * Axis ticks for the SVG plots: "nice" values (1, 2 or 5 × 10^k steps) covering [lo, hi], and
 * decade ticks (1, 10, 100, …) for log axes. Pure arithmetic, no dependencies.
 */

/** a step of 1, 2 or 5 × 10^k close to span / count */
export function niceStep(span: number, count = 5): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * pow;
}

/** rounded to the step's decimals, so 0.1 + 0.2 prints 0.3 */
function clean(v: number, step: number): number {
  const d = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return Number(v.toFixed(Math.min(20, d)));
}

/** ticks at multiples of a nice step, from ≤ lo to ≥ hi (a degenerate range is widened around it) */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const out: number[] = [];
  for (let i = first; i <= last; i++) out.push(clean(i * step, step));
  return out;
}

/** decades 1, 10, 100, … up to the first ≥ max (max ≥ 1) */
export function logTicks(max: number): number[] {
  const out = [1];
  while (out[out.length - 1]! < max) out.push(out[out.length - 1]! * 10);
  return out;
}

/** a tick label without float noise: 0.30000000000000004 → "0.3", 1200 → "1200" */
export function tickLabel(v: number): string {
  return String(Number(v.toPrecision(12)));
}
