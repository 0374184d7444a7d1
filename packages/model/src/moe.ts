/**
 * Mixture-of-experts FFN slot: top-2 of E SwiGLU experts (GShard, Lepikhin et al. 2020), the
 * baseline memory layers are compared against.
 *
 *   p = softmax(x Wr)                      [N, E]  router probabilities
 *   e0, e1 = top-2 of p per token          (host; ties → lower expert id)
 *   g0, g1 = p[e0], p[e1] / (p[e0] + p[e1])  gates renormalised over the two picks
 *   y = g0 · expert_e0(x) + g1 · expert_e1(x)
 *
 * Dispatch by gather, not dense: each expert runs only on its own tokens (rows gathered on the
 * host-scatter gradient op), so compute is the ACTIVE 2 experts per token. No capacity limit, no
 * token dropping. Load-balancing loss (Switch, Fedus et al. 2021, over the top-2 assignments):
 *   balance = E · Σ_e f_e · P_e,  f_e = share of the 2N assignments sent to e (no gradient),
 *   P_e = mean router probability of e; = 1 when routing is uniform. aux = balanceCoef · balance.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FfnSlot } from './ffn';
import { gatherRows } from '@mnemo/kernels';
import { oneHot, swiglu } from './ops';
import type { ParamStore } from './params';

export class MoeFfn implements FfnSlot {
  readonly kind = 'moe';
  readonly router: tf.Variable; // [D, E]
  readonly w1: tf.Variable[]; // E × [D, h]  gate
  readonly w3: tf.Variable[]; // E × [D, h]  up
  readonly w2: tf.Variable[]; // E × [h, D]
  /** the last forward's balance value E·Σ f_e·P_e (before balanceCoef), for logging */
  lastBalance = Number.NaN;

  constructor(
    params: ParamStore,
    prefix: string,
    dim: number,
    private readonly experts: number,
    hidden: number,
    private readonly balanceCoef: number,
    outStd: number,
  ) {
    this.router = params.normal(`${prefix}.router`, [dim, experts], 0.02);
    this.w1 = [];
    this.w3 = [];
    this.w2 = [];
    for (let e = 0; e < experts; e++) {
      this.w1.push(params.normal(`${prefix}.experts.${e}.w1`, [dim, hidden], 0.02));
      this.w3.push(params.normal(`${prefix}.experts.${e}.w3`, [dim, hidden], 0.02));
      this.w2.push(params.normal(`${prefix}.experts.${e}.w2`, [hidden, dim], outStd));
    }
  }

  apply(x: tf.Tensor2D): { y: tf.Tensor2D; aux: tf.Scalar } {
    const E = this.experts;
    const N = x.shape[0];
    return tf.tidy(() => {
      const probs = tf.softmax(tf.matMul(x, this.router as tf.Tensor2D), -1); // [N, E]
      const p = probs.dataSync() as Float32Array;
      const e0 = new Int32Array(N);
      const e1 = new Int32Array(N);
      const count = new Int32Array(E);
      for (let t = 0; t < N; t++) {
        let a = 0;
        let b = -1;
        for (let e = 1; e < E; e++) if (p[t * E + e]! > p[t * E + a]!) a = e;
        for (let e = 0; e < E; e++) if (e !== a && (b < 0 || p[t * E + e]! > p[t * E + b]!)) b = e;
        e0[t] = a;
        e1[t] = b;
        count[a]!++;
        count[b]!++;
      }
      // dispatch: expert e's rows in one concatenated output Y [2N, D]; pos0/pos1 locate each token's two rows
      const start = new Int32Array(E);
      for (let e = 1; e < E; e++) start[e] = start[e - 1]! + count[e - 1]!;
      const fill = Int32Array.from(start);
      const rows = new Int32Array(2 * N); // token of each row of Y
      const pos0 = new Int32Array(N);
      const pos1 = new Int32Array(N);
      for (let t = 0; t < N; t++) {
        pos0[t] = fill[e0[t]!]!++;
        rows[pos0[t]!] = t;
        pos1[t] = fill[e1[t]!]!++;
        rows[pos1[t]!] = t;
      }
      const outs: tf.Tensor2D[] = [];
      for (let e = 0; e < E; e++) {
        if (count[e] === 0) continue;
        const xe = gatherRows(x, rows.subarray(start[e]!, start[e]! + count[e]!)); // [n_e, D]
        outs.push(swiglu(xe, this.w1[e] as tf.Tensor2D, this.w3[e] as tf.Tensor2D, this.w2[e] as tf.Tensor2D)); // [n_e, D]
      }
      const Y = outs.length === 1 ? outs[0]! : tf.concat(outs, 0); // [2N, D]
      const m0 = oneHot(e0, E); // [N, E]
      const m1 = oneHot(e1, E);
      const p0 = tf.sum(tf.mul(probs, m0), -1, true); // [N, 1]
      const p1 = tf.sum(tf.mul(probs, m1), -1, true);
      const z = tf.add(p0, p1);
      const y = tf.add(tf.mul(tf.div(p0, z), gatherRows(Y, pos0)), tf.mul(tf.div(p1, z), gatherRows(Y, pos1))); // [N, D]
      const f = Float32Array.from(count, (c) => c / (2 * N)); // [E] share of assignments (constant)
      const P = tf.mean(probs, 0); // [E] mean router probability (differentiable)
      let host = 0; // the same value on the host, for logging
      for (let e = 0; e < E; e++) {
        let s = 0;
        for (let t = 0; t < N; t++) s += p[t * E + e]!;
        host += f[e]! * (s / N);
      }
      this.lastBalance = E * host;
      const balance = tf.mul(tf.sum(tf.mul(tf.tensor1d(f), P)), E);
      return { y: y as tf.Tensor2D, aux: tf.mul(balance, this.balanceCoef) as tf.Scalar };
    });
  }

  variables(): Record<string, tf.Variable> {
    const v: Record<string, tf.Variable> = { router: this.router };
    for (let e = 0; e < this.experts; e++) {
      v[`experts.${e}.w1`] = this.w1[e]!;
      v[`experts.${e}.w3`] = this.w3[e]!;
      v[`experts.${e}.w2`] = this.w2[e]!;
    }
    return v;
  }

  dispose(): void {} // the model's ParamStore owns the variables
}
