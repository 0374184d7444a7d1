/**
 * ProductKeys: the trainable index of one memory layer — H heads of sub-keys, an optional
 * query/key normalisation, and the exact top-k search.
 *
 *   const pk = new ProductKeys({ heads: 4, numKeys: 512, keyDim: 256, topK: 32 });
 *   const { scores, ids } = pk.search(queries); // queries [B, 4, 256] → [B, 4, 32]
 */
import { checkInt } from '@mnemo/core';
import type { KernelImpl } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { type QueryNorm, checkQueryNorm, normalizeQueries, normalizeSubkeys } from './query-norm';
import { type SearchResult, productKeySearch } from './search';
import { type KeyInit, checkSubkeyShape, initSubkeys } from './subkeys';

export interface ProductKeysConfig {
  heads: number; // H
  numKeys: number; // n sub-keys per half; N = n² slots
  keyDim: number; // dk, even
  topK: number; // k ≤ n
  keyInit?: KeyInit; // default 'meta'
  queryNorm?: QueryNorm; // default 'none'
  seed?: number;
  /** variable name prefix (tfjs variables must have unique names) */
  name?: string;
  impl?: KernelImpl;
}

let counter = 0;

export class ProductKeys {
  readonly heads: number;
  readonly numKeys: number;
  readonly keyDim: number;
  readonly topK: number;
  readonly queryNorm: QueryNorm;
  /** [H, 2, n, dk/2], trainable */
  readonly subkeys: tf.Variable<tf.Rank.R4>;
  private readonly impl?: KernelImpl;

  constructor(cfg: ProductKeysConfig) {
    checkSubkeyShape(cfg);
    checkInt('topK', cfg.topK, 1, cfg.numKeys);
    this.heads = cfg.heads;
    this.numKeys = cfg.numKeys;
    this.keyDim = cfg.keyDim;
    this.topK = cfg.topK;
    this.queryNorm = checkQueryNorm(cfg.queryNorm ?? 'none');
    this.impl = cfg.impl;
    const init = initSubkeys(cfg, cfg.keyInit ?? 'meta', cfg.seed ?? 0);
    this.subkeys = tf.variable(init, true, `${cfg.name ?? 'product_keys'}_${counter++}/subkeys`);
    init.dispose();
  }

  /** N = n² memory slots addressed by this index. */
  get slots(): number {
    return this.numKeys * this.numKeys;
  }

  /** queries [B, H, dk] → top-k scores and slot ids [B, H, k]; differentiable in queries and sub-keys. */
  search(queries: tf.Tensor3D): SearchResult {
    const q = normalizeQueries(queries, this.queryNorm);
    const keys = normalizeSubkeys(this.subkeys, this.queryNorm);
    const r = productKeySearch(q, keys, this.topK, { impl: this.impl });
    if (q !== queries) q.dispose();
    if (keys !== this.subkeys) keys.dispose();
    return r;
  }

  dispose(): void {
    this.subkeys.dispose();
  }
}
