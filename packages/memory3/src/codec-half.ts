/**
 * 16-bit floats for the K/V codec (docs/design.md §4.3): IEEE half (f16: 1 sign, 5 exponent, 10
 * mantissa bits) and bfloat16 (bf16: the top 16 bits of an f32, 8 exponent bits). Both round to
 * nearest even; f16 overflows to ±Inf past 65504 and keeps subnormals, bf16 keeps f32's range.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 → bf16 bits, round to nearest even (NaN stays NaN). */
export function toBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBf16(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** f32 → f16 bits, round to nearest even; overflow → ±Inf, tiny → subnormal or ±0. */
export function toF16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    man |= 0x800000; // implicit one
    const shift = 14 - e; // 13 + (1 - e)
    const half = 1 << (shift - 1);
    const rest = man & ((1 << shift) - 1);
    let m = man >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // m may carry into the exponent field: that is the correct smallest normal
  }
  const rest = man & 0x1fff;
  let h = (e << 10) | (man >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // carry may reach Inf: correct
  return sign | h;
}

export function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Encode `x` as 16-bit floats [n] → Uint16Array [n]. */
export function encodeHalf(x: Float32Array, kind: 'f16' | 'bf16'): Uint16Array {
  const out = new Uint16Array(x.length);
  const to = kind === 'f16' ? toF16 : toBf16;
  for (let i = 0; i < x.length; i++) out[i] = to(x[i]!);
  return out;
}

export function decodeHalf(h: Uint16Array, kind: 'f16' | 'bf16'): Float32Array {
  const out = new Float32Array(h.length);
  if (kind === 'bf16') {
    // the bf16 bits are the high half of each f32: little-endian, that is every odd u16
    const halves = new Uint16Array(out.buffer);
    for (let i = 0; i < h.length; i++) halves[2 * i + 1] = h[i]!;
    return out;
  }
  for (let i = 0; i < h.length; i++) out[i] = fromF16(h[i]!);
  return out;
}
