/**
 * KV cache of ONE sequence for incremental decoding: per block, the keys and values (after RoPE)
 * of every token fed so far, [Hkv, length, dh] each, kept outside tf.tidy until dispose().
 */
import * as tf from '@tensorflow/tfjs-core';

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
