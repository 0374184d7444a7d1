import { describe, expect, it } from 'vitest';
import { decodeHalf, encodeHalf, fromBf16, fromF16, toBf16, toF16 } from './codec-half';

describe('f16', () => {
  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // Inf / NaN
      expect(toF16(fromF16(h))).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });
  it('rounds to nearest even, overflows to Inf, keeps subnormals', () => {
    expect(fromF16(toF16(1 + 2 ** -11))).toBe(1); // tie → even (1.0)
    expect(fromF16(toF16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // tie → even (odd mantissa rounds up)
    expect(fromF16(toF16(65504))).toBe(65504);
    expect(fromF16(toF16(70000))).toBe(Number.POSITIVE_INFINITY);
    expect(fromF16(toF16(2 ** -24))).toBe(2 ** -24);
    expect(fromF16(toF16(2 ** -26))).toBe(0);
    expect(Number.isNaN(fromF16(toF16(Number.NaN)))).toBe(true);
  });
  it('relative error ≤ 2^-11 on random normals', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 7.1) * 10 ** ((i % 7) - 3));
    const y = decodeHalf(encodeHalf(x, 'f16'), 'f16');
    for (let i = 0; i < x.length; i++) expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -11 + 1e-7);
  });
});

describe('bf16', () => {
  it('is the top half of f32, rounded to nearest even', () => {
    expect(fromBf16(toBf16(1))).toBe(1);
    expect(fromBf16(toBf16(1 + 2 ** -8))).toBe(1); // tie → even
    expect(fromBf16(toBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(fromBf16(toBf16(3e38))).toBeCloseTo(3e38, -36);
    expect(Number.isNaN(fromBf16(toBf16(Number.NaN)))).toBe(true);
  });
  it('relative error ≤ 2^-8 and decodeHalf agrees with fromBf16', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i * 3.3) * 10 ** ((i % 9) - 4));
    const h = encodeHalf(x, 'bf16');
    const y = decodeHalf(h, 'bf16');
    for (let i = 0; i < x.length; i++) {
      expect(y[i]).toBe(fromBf16(h[i]!));
      expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -8);
    }
  });
});
