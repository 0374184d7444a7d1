import { ConfigError, ShapeError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { codecError, joinKv, makeCodec, splitKv, trainKvQuantizer } from './codec';
import { fullKvBytes, pqKvBytes, sparseKvBytes } from './codec-size';
import { memoryLength } from './in-memory-bank';
import { anisotropicGaussian } from './pq-synthetic';
import type { ExplicitMemory, MemoryShape } from './types';

const shape: MemoryShape = { layers: 2, kvHeads: 2, tokens: 8, headDim: 16 };
function memories(n: number, seed: number): ExplicitMemory[] {
  const all = anisotropicGaussian(n * (memoryLength(shape) / shape.headDim), shape.headDim, seed);
  return Array.from({ length: n }, (_, i) => ({
    shape,
    kv: all.slice(i * memoryLength(shape), (i + 1) * memoryLength(shape)),
    positions: new Int32Array(shape.layers * shape.kvHeads * shape.tokens).map((_, j) => j % 128),
  }));
}

describe('codec sizes', () => {
  it("match the paper's numbers (44 blocks, 40 heads, Hkv 8, dh 80, L_mem 22)", () => {
    const paper: MemoryShape = { layers: 22, kvHeads: 8, tokens: 8, headDim: 80 };
    expect(sparseKvBytes(paper)).toBe(450_560);
    expect(fullKvBytes({ blocks: 44, heads: 40, headDim: 80 }) / sparseKvBytes(paper)).toBe(160);
    expect(fullKvBytes({ blocks: 44, heads: 8, headDim: 80 }) / sparseKvBytes(paper)).toBe(32);
    expect(sparseKvBytes(paper) / pqKvBytes(paper, 14)).toBeCloseTo(11.43, 2);
  });
  it('equal what each codec writes', () => {
    const [m] = memories(1, 1);
    for (const kind of ['f32', 'f16', 'bf16'] as const) {
      const c = makeCodec(kind);
      expect(c.encode(m!.kv, shape).length).toBe(c.bytes(shape));
      expect(c.bytes(shape)).toBe(sparseKvBytes(shape, kind === 'f32' ? 4 : 2));
    }
  });
});

describe('codecs', () => {
  const mems = memories(40, 2);
  it('f32 is lossless, f16 and bf16 within their rounding', () => {
    expect(codecError(makeCodec('f32'), mems)).toBe(0);
    const e16 = codecError(makeCodec('f16'), mems);
    const eb16 = codecError(makeCodec('bf16'), mems);
    expect(e16).toBeGreaterThan(0);
    expect(e16).toBeLessThan(2 ** -22);
    expect(eb16).toBeGreaterThan(e16);
    expect(eb16).toBeLessThan(2 ** -16);
  });
  it('split / join keep the [L, 2, H, T, dh] layout', () => {
    const kv = Float32Array.from({ length: memoryLength(shape) }, (_, i) => i);
    const { keys, values } = splitKv(kv, shape);
    expect(keys[0]).toBe(0);
    expect(values[0]).toBe(2 * 8 * 16); // V of layer 0 starts after its K [H, T, dh]
    expect(joinKv(keys, values, shape)).toEqual(kv);
  });
  it('pq: m_K + m_V bytes per token, error well under the signal, separate codebooks', () => {
    const q = trainKvQuantizer(mems, { subspaces: 4, valueSubspaces: 2, bits: 8, iters: 6, seed: 1 });
    const c = makeCodec('pq', q);
    expect(c.bytes(shape)).toBe(pqKvBytes(shape, 4, 2));
    expect(c.encode(mems[0]!.kv, shape).length).toBe(2 * 2 * 8 * 6);
    const err = codecError(c, mems);
    expect(err).toBeGreaterThan(0);
    expect(err).toBeLessThan(0.2);
    expect([q.keys.subspaces, q.values.subspaces]).toEqual([4, 2]);
    expect(() => c.decode(new Uint8Array(5), shape)).toThrow(ShapeError);
  });
  it('pq without a quantiser and a quantiser of the wrong width are refused', () => {
    expect(() => makeCodec('pq')).toThrow(ConfigError);
    const q = trainKvQuantizer(mems, { subspaces: 2, bits: 8, iters: 2 });
    const wide: MemoryShape = { ...shape, headDim: 32 };
    expect(() => makeCodec('pq', q).encode(new Float32Array(memoryLength(wide)), wide)).toThrow(/codec.quantizer.keys/);
  });
});
