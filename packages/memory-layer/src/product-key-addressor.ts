/**
 * ProductKeyAddressor: the addressing of PKM and Memory+ (Lample et al. 2019; Berges et al. 2024;
 * docs/design.md §1, §2.1–2.3).
 *
 *   q = x Wq + bq             [B, H·dk]   (optional query dropout; QK-norm / LayerNorm in ProductKeys)
 *   (s, I) = productKeys(q)   [B, H, k]   exact top-k over N = n² slots per head
 *   w = softmax(s) per head   [B, H, k]   (or raw scores, or relu)
 *   → one bag of H·k rows per token: ids, weights [B, H·k]
 */
import { ProductKeys } from '@mnemo/product-keys';
import * as tf from '@tensorflow/tfjs-core';
import type { Address, Addressor } from './addressor';

export interface ProductKeyAddressorOptions {
  inputDim: number; // D
  numKeys: number; // n sub-keys per half; N = n²
  heads: number; // H
  topK: number; // k
  keyDim: number; // dk (even)
  queryNorm: 'none' | 'layernorm' | 'qknorm';
  scoreFn: 'softmax' | 'none' | 'relu';
  keyInit: 'meta' | 'xlm';
  queryDropout: number;
  /** seeds of the sub-keys and of Wq */
  seeds: { subkeys: number; wq: number };
  /** prefix of the tfjs variable names */
  name: string;
}

export class ProductKeyAddressor implements Addressor {
  readonly rows: number;
  readonly heads: number;
  readonly topK: number;
  readonly bags = 1;
  readonly keys: ProductKeys;
  readonly wq: tf.Variable<tf.Rank.R2>; // [D, H·dk]
  readonly bq: tf.Variable<tf.Rank.R1>; // [H·dk]

  constructor(private readonly o: ProductKeyAddressorOptions) {
    this.rows = o.numKeys * o.numKeys;
    this.heads = o.heads;
    this.topK = o.topK;
    this.keys = new ProductKeys({
      heads: o.heads,
      numKeys: o.numKeys,
      keyDim: o.keyDim,
      topK: o.topK,
      keyInit: o.keyInit,
      queryNorm: o.queryNorm,
      seed: o.seeds.subkeys,
      name: o.name,
    });
    const hq = o.heads * o.keyDim;
    const glorot = Math.sqrt(6 / (o.inputDim + hq)); // Xavier uniform for the query projection
    // the initial values are temporaries: tidy frees them, the variables keep their own copies
    this.wq = tf.tidy(() => tf.variable(tf.randomUniform([o.inputDim, hq], -glorot, glorot, 'float32', o.seeds.wq), true, `${o.name}/wq`));
    this.bq = tf.tidy(() => tf.variable(tf.zeros([hq]), true, `${o.name}/bq`));
  }

  address(x: tf.Tensor2D, opts: { training: boolean }): Address {
    const { heads: H, keyDim: dk, topK: k, scoreFn, queryDropout } = this.o;
    const B = x.shape[0];
    let q = tf.add(tf.matMul(x, this.wq), this.bq) as tf.Tensor2D; // [B, H·dk]
    if (opts.training && queryDropout > 0) q = tf.dropout(q, queryDropout) as tf.Tensor2D;
    const { scores, ids } = this.keys.search(tf.reshape(q, [B, H, dk]) as tf.Tensor3D); // [B, H, k]
    const w = scoreFn === 'softmax' ? tf.softmax(scores, -1) : scoreFn === 'relu' ? tf.relu(scores) : scores; // [B, H, k]
    const bag = <T extends tf.Tensor>(t: T) => tf.reshape(t, [B, H * k]) as tf.Tensor2D; // heads summed into one bag
    return { ids: bag(ids), weights: bag(w), scores: bag(scores) };
  }

  variables(): Record<string, tf.Variable> {
    return { wq: this.wq, bq: this.bq, subkeys: this.keys.subkeys };
  }

  dispose(): void {
    this.wq.dispose();
    this.bq.dispose();
    this.keys.dispose();
  }
}
