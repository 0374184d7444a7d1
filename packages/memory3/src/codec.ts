/**
 * The K/V codec (docs/design.md §4.3): how one memory's kv [L_mem, 2, H_kv, T, d_h] becomes bytes.
 *
 *   f32   4 bytes per value (lossless)
 *   f16   2 bytes (IEEE half; range ±65504)
 *   bf16  2 bytes (f32's range, 8 mantissa bits): the paper's storage type
 *   pq    a product quantiser per d_h vector, keys and values with their own codebooks:
 *         L_mem · H_kv · T · (m_K + m_V) bytes; at the paper's shape, m = 14 → 11.4× under bf16
 *
 * Encoded layout: half/f32 codecs keep the kv order; pq writes all key codes [L_mem, H_kv, T, m_K]
 * then all value codes [L_mem, H_kv, T, m_V].
 */
import { endianness } from 'node:os';
import { BackendError, ConfigError, ShapeError, ValueError } from '@mnemo/core';
import { decodeHalf, encodeHalf } from './codec-half';
import { type PqTrainOptions, type ProductQuantizer, checkQuantizerDim, relativeError, trainProductQuantizer } from './pq';
import type { ExplicitMemory, MemoryShape } from './types';

export type CodecKind = 'f32' | 'f16' | 'bf16' | 'pq';

/** keys and values quantised apart: their statistics differ (keys carry RoPE) */
export interface KvQuantizer {
  keys: ProductQuantizer;
  values: ProductQuantizer;
}

/** what `openMemoryBank` takes: a kind, or a pq codec with its trained quantiser */
export type CodecSpec = 'f32' | 'f16' | 'bf16' | 'pq' | { kind: 'pq'; quantizer: KvQuantizer };

export const CODEC_IDS: Record<CodecKind, number> = { f32: 0, f16: 1, bf16: 2, pq: 3 };

export interface KvCodec {
  readonly kind: CodecKind;
  readonly quantizer: KvQuantizer | null;
  /** encoded bytes of one memory's kv */
  bytes(shape: MemoryShape): number;
  /** kv [L_mem, 2, H_kv, T, d_h] → bytes */
  encode(kv: Float32Array, shape: MemoryShape): Uint8Array;
  decode(bytes: Uint8Array, shape: MemoryShape): Float32Array;
}

/** vectors of d_h in one memory: L_mem · H_kv · T per half (K or V) */
export function rowsPerHalf(s: MemoryShape): number {
  return s.layers * s.kvHeads * s.tokens;
}

export function makeCodec(kind: CodecKind, quantizer: KvQuantizer | null = null): KvCodec {
  // records hold typed arrays in host order; files are little-endian everywhere Node runs today
  if (endianness() !== 'LE') throw new BackendError('memory3 codecs need a little-endian host (records are little-endian)');
  if (kind === 'pq') {
    if (!quantizer) throw new ConfigError('codec.quantizer', "codec 'pq' needs a trained quantiser: trainKvQuantizer(memories, opts)");
    return pqCodec(quantizer);
  }
  const width = kind === 'f32' ? 4 : 2;
  return {
    kind,
    quantizer: null,
    bytes: (s) => rowsPerHalf(s) * 2 * s.headDim * width,
    encode(kv) {
      const out = kind === 'f32' ? Float32Array.from(kv) : encodeHalf(kv, kind);
      return new Uint8Array(out.buffer);
    },
    decode(bytes, s) {
      const n = rowsPerHalf(s) * 2 * s.headDim;
      if (bytes.length !== n * width) throw new ShapeError('kv', `encoded kv is ${bytes.length} bytes, expected ${n * width}`);
      const copy = new Uint8Array(bytes); // an aligned copy (Buffer.slice would be a view)
      return kind === 'f32' ? new Float32Array(copy.buffer) : decodeHalf(new Uint16Array(copy.buffer), kind);
    },
  };
}

function pqCodec(q: KvQuantizer): KvCodec {
  const mk = q.keys.subspaces;
  const mv = q.values.subspaces;
  return {
    kind: 'pq',
    quantizer: q,
    bytes: (s) => rowsPerHalf(s) * (mk + mv),
    encode(kv, s) {
      checkQuantizerDim(q.keys, s.headDim, 'codec.quantizer.keys');
      checkQuantizerDim(q.values, s.headDim, 'codec.quantizer.values');
      const { keys, values } = splitKv(kv, s);
      const out = new Uint8Array(rowsPerHalf(s) * (mk + mv));
      out.set(q.keys.encode(keys), 0);
      out.set(q.values.encode(values), rowsPerHalf(s) * mk);
      return out;
    },
    decode(bytes, s) {
      const rows = rowsPerHalf(s);
      if (bytes.length !== rows * (mk + mv))
        throw new ShapeError('kv', `encoded kv is ${bytes.length} bytes, expected ${rows * (mk + mv)}`);
      return joinKv(q.keys.decode(bytes.subarray(0, rows * mk)), q.values.decode(bytes.subarray(rows * mk)), s);
    },
  };
}

/** kv [L, 2, H, T, dh] → keys, values [L·H·T, dh] */
export function splitKv(kv: Float32Array, s: MemoryShape): { keys: Float32Array; values: Float32Array } {
  const block = s.kvHeads * s.tokens * s.headDim; // one [H, T, dh] half
  if (kv.length !== s.layers * 2 * block) throw new ShapeError('kv', `has ${kv.length} values, expected ${s.layers * 2 * block}`);
  const keys = new Float32Array(s.layers * block);
  const values = new Float32Array(s.layers * block);
  for (let l = 0; l < s.layers; l++) {
    keys.set(kv.subarray(2 * l * block, (2 * l + 1) * block), l * block);
    values.set(kv.subarray((2 * l + 1) * block, (2 * l + 2) * block), l * block);
  }
  return { keys, values };
}

export function joinKv(keys: Float32Array, values: Float32Array, s: MemoryShape): Float32Array {
  const block = s.kvHeads * s.tokens * s.headDim;
  const kv = new Float32Array(s.layers * 2 * block);
  for (let l = 0; l < s.layers; l++) {
    kv.set(keys.subarray(l * block, (l + 1) * block), 2 * l * block);
    kv.set(values.subarray(l * block, (l + 1) * block), (2 * l + 1) * block);
  }
  return kv;
}

export interface KvQuantizerOptions extends PqTrainOptions {
  /** value subspaces when they differ from the keys' (default `subspaces`) */
  valueSubspaces?: number;
  /** train on at most this many d_h vectors per half, sampled evenly (default 16,384) */
  sample?: number;
}

/** Train key and value codebooks on vectors sampled from `memories`. */
export function trainKvQuantizer(memories: ExplicitMemory[], opts: KvQuantizerOptions): KvQuantizer {
  const first = memories[0];
  if (!first) throw new ValueError('memories', 'no memories to train the quantiser on');
  const s = first.shape;
  const dh = s.headDim;
  const rows = rowsPerHalf(s);
  const total = rows * memories.length;
  const take = Math.min(total, opts.sample ?? 16_384);
  const keys = new Float32Array(take * dh);
  const values = new Float32Array(take * dh);
  for (let i = 0; i < take; i++) {
    const g = Math.floor((i * total) / take); // evenly spaced over all rows
    const mem = memories[Math.floor(g / rows)]!;
    if (mem.shape.headDim !== dh || mem.kv.length !== first.kv.length)
      throw new ShapeError('memories', 'all memories must share one shape');
    const r = g % rows;
    const l = Math.floor(r / (s.kvHeads * s.tokens));
    const within = r % (s.kvHeads * s.tokens);
    const ko = (2 * l * s.kvHeads * s.tokens + within) * dh;
    const vo = ((2 * l + 1) * s.kvHeads * s.tokens + within) * dh;
    keys.set(mem.kv.subarray(ko, ko + dh), i * dh);
    values.set(mem.kv.subarray(vo, vo + dh), i * dh);
  }
  return {
    keys: trainProductQuantizer(keys, dh, opts),
    values: trainProductQuantizer(values, dh, { ...opts, subspaces: opts.valueSubspaces ?? opts.subspaces, seed: (opts.seed ?? 0) + 1 }),
  };
}

/** Σ‖kv − decode(encode(kv))‖² / Σ‖kv‖² over `memories` (0 for f32) */
export function codecError(codec: KvCodec, memories: ExplicitMemory[]): number {
  let err = 0;
  let norm = 0;
  for (const m of memories) {
    const back = codec.decode(codec.encode(m.kv, m.shape), m.shape);
    let n = 0;
    for (const x of m.kv) n += x * x;
    err += relativeError(m.kv, back) * n;
    norm += n;
  }
  return norm === 0 ? 0 : err / norm;
}
