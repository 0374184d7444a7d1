/**
 * Causal multi-head self-attention with grouped KV heads (GQA, Ainslie et al. 2023) and RoPE.
 *
 *   q = x Wq, k = x Wk, v = x Wv           [B, H, T, dh], [B, Hkv, T, dh] ×2; RoPE on q and k
 *   (separate projections: on wasm, splitting one fused product costs more than it saves)
 *   (k, v) ← ctx.kv(k, v)                  [B, Hkv, S, dh]  KV cache / external memory hook
 *   query heads of a group share a KV head: q viewed as [B, Hkv, G·T, dh] (G = H / Hkv), so
 *   scores = q kᵀ / √dh + mask             [B, Hkv, G·T, S]  ONE batched matmul, no KV repeat
 *   o = softmax(scores) v → [B, T, H·dh] Wo → [B, T, D]
 */
import { maskedSoftmax } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { bmm } from './bmm';
import type { ParamStore } from './params';
import type { Rope } from './rope';

export interface AttnContext {
  cos: tf.Tensor4D; // [B or 1, 1, T, dh]
  sin: tf.Tensor4D;
  /** additive mask (0 or −1e9) [B or 1, 1, G·T, S]; row g·T + t is query t of group member g */
  mask: tf.Tensor4D;
  /**
   * Hook on this block's new keys/values (after RoPE) [B, Hkv, T, dh]; returns those to attend
   * to [B, Hkv, S, dh]. The KV cache appends here; Memory³ prepends retrieved K/V here and
   * returns the widened mask [B or 1, 1, G·T, S] that replaces `mask` for this block.
   */
  kv?: (block: number, k: tf.Tensor4D, v: tf.Tensor4D) => { k: tf.Tensor4D; v: tf.Tensor4D; mask?: tf.Tensor4D };
  /** capture (Memory³ writer): this block's q (after RoPE, pre-scaled by 1/√dh) [B, H, T, dh] and k, v [B, Hkv, T, dh] */
  onQKV?: (block: number, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => void;
}

export class Attention {
  readonly wq: tf.Variable; // [D, H·dh]
  readonly wk: tf.Variable; // [D, Hkv·dh]
  readonly wv: tf.Variable; // [D, Hkv·dh]
  readonly wo: tf.Variable; // [H·dh, D]
  readonly headDim: number;

  constructor(
    params: ParamStore,
    prefix: string,
    private readonly block: number,
    private readonly dim: number,
    private readonly heads: number,
    private readonly kvHeads: number,
    private readonly rope: Rope,
    outStd: number,
  ) {
    this.headDim = dim / heads;
    this.wq = params.normal(`${prefix}.wq`, [dim, heads * this.headDim], 0.02);
    this.wk = params.normal(`${prefix}.wk`, [dim, kvHeads * this.headDim], 0.02);
    this.wv = params.normal(`${prefix}.wv`, [dim, kvHeads * this.headDim], 0.02);
    this.wo = params.normal(`${prefix}.wo`, [heads * this.headDim, dim], outStd);
  }

  apply(x: tf.Tensor3D, ctx: AttnContext): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = x.shape;
      const { heads: H, kvHeads: Hk, headDim: dh } = this;
      const G = H / Hk;
      const x2 = tf.reshape(x, [B * T, this.dim]) as tf.Tensor2D; // [B·T, D]
      const q0 = tf.matMul(x2, this.wq as tf.Tensor2D); // [B·T, H·dh]
      const k0 = tf.matMul(x2, this.wk as tf.Tensor2D); // [B·T, Hk·dh]
      const v0 = tf.matMul(x2, this.wv as tf.Tensor2D);
      const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
      const q = this.rope.apply(heads(tf.mul(q0, 1 / Math.sqrt(dh)), H), ctx.cos, ctx.sin); // [B, H, T, dh], pre-scaled
      let k = this.rope.apply(heads(k0, Hk), ctx.cos, ctx.sin); // [B, Hk, T, dh]
      let v = heads(v0, Hk); // [B, Hk, T, dh]
      ctx.onQKV?.(this.block, q, k, v);
      let mask = ctx.mask;
      if (ctx.kv) {
        const r = ctx.kv(this.block, k, v); // [B, Hk, S, dh]
        ({ k, v } = r);
        if (r.mask) mask = r.mask;
      }
      const qg = tf.reshape(q, [B, Hk, G * T, dh]); // heads h = kv·G + g share KV head kv
      const scores = bmm(qg, k, false, true) as tf.Tensor4D; // [B, Hk, G·T, S]
      const o = bmm(maskedSoftmax(scores, mask), v); // softmax(scores + mask) [B, Hk, G·T, S] · v → [B, Hk, G·T, dh]
      const merged = tf.reshape(tf.transpose(tf.reshape(o, [B, H, T, dh]), [0, 2, 1, 3]), [B * T, H * dh]);
      return tf.reshape(tf.matMul(merged, this.wo as tf.Tensor2D), [B, T, this.dim]) as tf.Tensor3D;
    });
  }
}

/** Causal mask for a fresh sequence of length T: [1, 1, G·T, T], 0 where key j ≤ query t, else −1e9. */
export function causalMask(T: number, G: number): tf.Tensor4D {
  const m = new Float32Array(G * T * T);
  for (let g = 0; g < G; g++) {
    for (let t = 0; t < T; t++) for (let j = t + 1; j < T; j++) m[(g * T + t) * T + j] = -1e9;
  }
  return tf.tensor4d(m, [1, 1, G * T, T]);
}

/** Mask for rows with past lengths `past` [B], T new tokens each, S keys: [B, 1, G·T, S]. */
export function cachedMask(past: number[], T: number, G: number, S: number): tf.Tensor4D {
  const B = past.length;
  const m = new Float32Array(B * G * T * S);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < G; g++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * G + g) * T + t) * S;
        for (let j = past[b]! + t + 1; j < S; j++) m[row + j] = -1e9; // later tokens and padding
      }
    }
  }
  return tf.tensor4d(m, [B, 1, G * T, S]);
}
