/**
 * Memory³ reading inside attention (docs/design.md §4.6): the external K/V an `ExternalKV` hands
 * a block are prepended to the block's own keys, and the mask widens to cover them.
 *
 *   keys of row b:  [ext(b, chunk 0) | ext(b, chunk 1) | … | pad | own context]    [Hk, E + S, dh]
 *   query t (chunk c = ⌊t / chunk⌋) sees ext(b, c) and the causal context; padding is masked
 *
 * A block whose memories are all absent returns its own K/V and the plain mask unchanged, so an
 * ExternalKV that returns nothing leaves the outputs bit-for-bit as without one.
 */
import { ShapeError, ValueError } from '@mnemo/core';
import * as tf from '@tensorflow/tfjs-core';
import type { AttnContext } from './attention';
import { EXTERNAL_POSITIONS, type ExternalKV } from './extensions';

export interface GatheredExternal {
  k: tf.Tensor4D; // [B, Hk, E, dh], rows padded with zeros to the longest
  v: tf.Tensor4D;
  /** counts[b][c]: external keys of row b, chunk c (their offsets follow in chunk order) */
  counts: number[][];
  /** E: external keys per row after padding */
  width: number;
}

/** The context's first position an ExternalKV asks for, checked. */
export function contextStartOf(ext: ExternalKV | undefined): number {
  const s = ext?.contextStart ?? 0;
  if (!Number.isInteger(s) || s < 0 || s > EXTERNAL_POSITIONS)
    throw new ValueError('external.contextStart', `must be an integer in [0, ${EXTERNAL_POSITIONS}], got ${s}`);
  return s;
}

/** The external K/V of `block` for B rows × `chunks` chunks, or undefined when there are none. */
export function gatherExternal(
  ext: ExternalKV,
  block: number,
  B: number,
  chunks: number,
  Hk: number,
  dh: number,
): GatheredExternal | undefined {
  if (!ext.blocks.includes(block)) return undefined;
  const counts: number[][] = [];
  const rowsK: tf.Tensor3D[][] = [];
  const rowsV: tf.Tensor3D[][] = [];
  let any = false;
  for (let b = 0; b < B; b++) {
    counts.push([]);
    rowsK.push([]);
    rowsV.push([]);
    for (let c = 0; c < chunks; c++) {
      const m = ext.get(block, b, c);
      const M = m ? m.k.shape[1] : 0;
      if (m) {
        for (const [name, t] of [
          ['k', m.k],
          ['v', m.v],
        ] as const) {
          if (t.rank !== 3 || t.shape[0] !== Hk || t.shape[1] !== M || t.shape[2] !== dh)
            throw new ShapeError(`external.get(${block}, ${b}, ${c}).${name}`, `is [${t.shape}], expected [Hkv ${Hk}, M ${M}, dh ${dh}]`);
        }
      }
      counts[b]!.push(M);
      if (m && M > 0) {
        any = true;
        rowsK[b]!.push(m.k);
        rowsV[b]!.push(m.v);
      }
    }
  }
  if (!any) return undefined;
  const width = Math.max(...counts.map((r) => r.reduce((a, n) => a + n, 0)));
  const row = (parts: tf.Tensor3D[], used: number): tf.Tensor3D => {
    const pad = width - used;
    const padT = pad > 0 ? [tf.zeros([Hk, pad, dh]) as tf.Tensor3D] : [];
    const all = [...parts, ...padT];
    return all.length === 1 ? all[0]! : (tf.concat(all, 1) as tf.Tensor3D);
  };
  const used = counts.map((r) => r.reduce((a, n) => a + n, 0));
  const k = tf.stack(rowsK.map((p, b) => row(p, used[b]!))) as tf.Tensor4D;
  const v = tf.stack(rowsV.map((p, b) => row(p, used[b]!))) as tf.Tensor4D;
  return { k, v, counts, width };
}

/**
 * Mask of a fresh sequence reading chunked memories: [B, 1, G·T, E + T]. Query t sees the
 * external keys of its chunk ⌊t / chunk⌋ and own keys j ≤ t.
 */
export function chunkedMask(counts: number[][], width: number, T: number, chunk: number, G: number): tf.Tensor4D {
  const B = counts.length;
  const S = width + T;
  const m = new Float32Array(B * G * T * S).fill(-1e9);
  for (let b = 0; b < B; b++) {
    const offsets = [0];
    for (const n of counts[b]!) offsets.push(offsets[offsets.length - 1]! + n);
    for (let g = 0; g < G; g++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * G + g) * T + t) * S;
        const c = Math.floor(t / chunk);
        m.fill(0, row + offsets[c]!, row + offsets[c + 1]!);
        m.fill(0, row + width, row + width + t + 1);
      }
    }
  }
  return tf.tensor4d(m, [B, 1, G * T, S]);
}

/**
 * Mask of cached decoding reading the current memories: [B, 1, G·T, E + S]. Row b's new query t
 * sees its counts[b][0] external keys and cached/new context keys j ≤ past[b] + t.
 */
export function cachedExternalMask(counts: number[][], width: number, past: number[], T: number, G: number, S: number): tf.Tensor4D {
  const B = past.length;
  const W = width + S;
  const m = new Float32Array(B * G * T * W).fill(-1e9);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < G; g++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * G + g) * T + t) * W;
        m.fill(0, row, row + counts[b]![0]!);
        m.fill(0, row + width, row + width + past[b]! + t + 1);
      }
    }
  }
  return tf.tensor4d(m, [B, 1, G * T, W]);
}

/** The attention `kv` hook of a fresh sequence reading chunked memories (forward / loss). */
export function chunkedKvHook(external: ExternalKV, B: number, T: number, chunk: number, G: number): NonNullable<AttnContext['kv']> {
  const chunks = Math.ceil(T / chunk);
  return (block, k, v) => {
    const [, Hk, , dh] = k.shape;
    const ext = gatherExternal(external, block, B, chunks, Hk, dh);
    if (!ext) return { k, v };
    return {
      k: tf.concat([ext.k, k], 2) as tf.Tensor4D, // [B, Hk, E + T, dh]
      v: tf.concat([ext.v, v], 2) as tf.Tensor4D,
      mask: chunkedMask(ext.counts, ext.width, T, chunk, G),
    };
  };
}
