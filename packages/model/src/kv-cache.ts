/**
 * KV cache of ONE sequence for incremental decoding: per block, the keys and values (after RoPE)
 * of every token fed so far, [Hkv, length, dh] each, kept outside tf.tidy until dispose().
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttnContext } from './attention';
import type { ExternalKV } from './extensions';
import { cachedExternalMask, gatherExternal } from './external-kv';

export interface KVCache {
  /** tokens fed so far (the next token's position) */
  readonly length: number;
  dispose(): void;
}

export class ModelKVCache implements KVCache {
  length = 0;
  /** position of the first token (Memory³: the context starts after the memories' interval) */
  start = 0;
  readonly k: (tf.Tensor3D | undefined)[]; // per block [Hkv, length, dh]
  readonly v: (tf.Tensor3D | undefined)[];
  disposed = false;

  constructor(
    readonly owner: object,
    blocks: number,
  ) {
    this.k = new Array(blocks).fill(undefined);
    this.v = new Array(blocks).fill(undefined);
  }

  /** Append this block's new k, v [Hkv, T, dh]; returns the whole k, v [Hkv, length + T, dh] (kept). */
  append(block: number, k: tf.Tensor3D, v: tf.Tensor3D): { k: tf.Tensor3D; v: tf.Tensor3D } {
    const oldK = this.k[block];
    const oldV = this.v[block];
    const nk = oldK ? (tf.concat([oldK, k], 1) as tf.Tensor3D) : k;
    const nv = oldV ? (tf.concat([oldV, v], 1) as tf.Tensor3D) : v;
    this.k[block] = tf.keep(nk);
    this.v[block] = tf.keep(nv);
    oldK?.dispose();
    oldV?.dispose();
    return { k: nk, v: nv };
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t?.dispose();
    this.k.fill(undefined);
    this.v.fill(undefined);
    this.length = 0;
    this.start = 0;
    this.disposed = true;
  }
}

/**
 * The attention `kv` hook of cached decoding: row b's new k, v [Hk, T, dh] are appended to
 * caches[b] (past[b] tokens before), rows are padded to S keys; the current memories of
 * `external` are prepended (not cached: they are swapped between calls) with the widened mask.
 */
export function cachedKvHook(
  caches: ModelKVCache[],
  past: number[],
  T: number,
  S: number,
  G: number,
  external?: ExternalKV,
): NonNullable<AttnContext['kv']> {
  const B = caches.length;
  return (block, k, v) => {
    const [, Hk, , dh] = k.shape;
    const ks: tf.Tensor3D[] = [];
    const vs: tf.Tensor3D[] = [];
    for (let b = 0; b < B; b++) {
      const row = (t: tf.Tensor4D) => tf.reshape(tf.slice(t, [b, 0, 0, 0], [1, Hk, T, dh]), [Hk, T, dh]) as tf.Tensor3D;
      const full = caches[b]!.append(block, row(k), row(v)); // [Hk, past + T, dh]
      const pad = S - past[b]! - T;
      const padTo = (t: tf.Tensor3D) =>
        pad > 0
          ? tf.pad(t, [
              [0, 0],
              [0, pad],
              [0, 0],
            ])
          : t;
      ks.push(padTo(full.k));
      vs.push(padTo(full.v));
    }
    const own = { k: tf.stack(ks) as tf.Tensor4D, v: tf.stack(vs) as tf.Tensor4D }; // [B, Hk, S, dh]
    const ext = external && gatherExternal(external, block, B, 1, Hk, dh);
    if (!ext) return own;
    return {
      k: tf.concat([ext.k, own.k], 2) as tf.Tensor4D, // [B, Hk, E + S, dh]
      v: tf.concat([ext.v, own.v], 2) as tf.Tensor4D,
      mask: cachedExternalMask(ext.counts, ext.width, past, T, G, S),
    };
  };
}
