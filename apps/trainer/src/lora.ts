/**
 * LoRA-style low-rank finetuning of a model's dense matrices (Hu et al. 2021), the third baseline
 * of the teach bench (issue 18): every targeted weight W [in, out] becomes
 *
 *   W = W0 + A · B        A [in, r] ~ N(0, 1/in), B [r, out] = 0 (so the start is the base model)
 *
 * and only A and B learn. The model reads its own variables, so each step takes the gradient of
 * the loss for the effective W (dL/dW, as full finetuning would) and carries it to the factors
 * by the chain rule, dL/dA = dL/dW · Bᵀ and dL/dB = Aᵀ · dL/dW; Adam steps A and B; W is then
 * set to W0 + A·B. Memory values are frozen while it steps (the pool's updates restricted to no
 * row), and no weight outside `loraTargets` changes. `restore()` puts every W0 back.
 */
import { MemoryPool } from '@mnemo/memory-layer';
import type { LanguageModel } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';

export interface LoraOptions {
  rank: number;
  lr: number;
  seed?: number;
}

interface Factor {
  w: tf.Variable; // the model's weight, W0 + A·B
  w0: tf.Tensor2D;
  a: tf.Variable; // [in, r]
  b: tf.Variable; // [r, out]
  m: [tf.Variable, tf.Variable]; // Adam first moments of A, B
  v: [tf.Variable, tf.Variable]; // second moments
}

/** The dense matrices a LoRA baseline adapts: every 2-D weight inside a block (attention, FFN, memory query/output projections). */
export function loraTargets(named: Record<string, tf.Variable>): tf.Variable[] {
  return Object.entries(named)
    .filter(([k, v]) => k.startsWith('blocks.') && v.shape.length === 2)
    .map(([, v]) => v);
}

export class LoraAdapter {
  private readonly factors: Factor[];
  private t = 0;

  constructor(
    private readonly model: LanguageModel,
    private readonly opts: LoraOptions,
  ) {
    const { rank } = opts;
    const targets = loraTargets(model.namedVariables());
    if (!Number.isInteger(rank) || rank < 1) throw new Error(`rank must be a whole number ≥ 1, got ${rank}`);
    this.factors = targets.map((w, i) => {
      const [rows, cols] = w.shape as [number, number];
      const seed = (opts.seed ?? 1) * 7919 + i;
      const a = tf.tidy(() => tf.variable(tf.randomNormal([rows, rank], 0, 1 / Math.sqrt(rows), 'float32', seed), true));
      const b = tf.tidy(() => tf.variable(tf.zeros([rank, cols]), true));
      const z = (x: tf.Variable) => tf.tidy(() => tf.variable(tf.zerosLike(x), false));
      return { w, w0: w.clone() as tf.Tensor2D, a, b, m: [z(a), z(b)], v: [z(a), z(b)] };
    });
  }

  /** Parameters that learn: Σ r·(in + out). */
  get params(): number {
    return this.factors.reduce((s, f) => s + f.a.size + f.b.size, 0);
  }

  /** One Adam step of A and B on `loss`; returns the loss before the step. */
  step(loss: () => tf.Scalar): number {
    const pool = this.model.pool instanceof MemoryPool ? this.model.pool : undefined;
    pool?.onlyUpdateRows(new Int32Array(0)); // the values' own backward update: none
    let value: tf.Scalar;
    let grads: tf.NamedTensorMap;
    try {
      ({ value, grads } = tf.variableGrads(
        loss,
        this.factors.map((f) => f.w),
      ));
    } finally {
      pool?.onlyUpdateRows(undefined);
    }
    const out = value.dataSync()[0]!;
    value.dispose();
    this.t++;
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const lrT = (this.opts.lr * Math.sqrt(1 - b2 ** this.t)) / (1 - b1 ** this.t);
    tf.tidy(() => {
      for (const f of this.factors) {
        const gW = grads[f.w.name];
        if (!gW) continue;
        const gs = [tf.matMul(gW, f.b, false, true), tf.matMul(f.a, gW, true, false)]; // dL/dA [in, r], dL/dB [r, out]
        for (const [j, p] of [f.a, f.b].entries()) {
          f.m[j]!.assign(tf.add(tf.mul(b1, f.m[j]!), tf.mul(1 - b1, gs[j]!)));
          f.v[j]!.assign(tf.add(tf.mul(b2, f.v[j]!), tf.mul(1 - b2, tf.square(gs[j]!))));
          p.assign(tf.sub(p, tf.mul(lrT, tf.div(f.m[j]!, tf.add(tf.sqrt(f.v[j]!), eps)))));
        }
        f.w.assign(tf.add(f.w0, tf.matMul(f.a, f.b)));
      }
    });
    for (const g of Object.values(grads)) g.dispose();
    return out;
  }

  /** Put every W0 back (the base model again). */
  restore(): void {
    for (const f of this.factors) f.w.assign(f.w0);
  }

  dispose(): void {
    for (const f of this.factors) {
      f.w0.dispose();
      for (const x of [f.a, f.b, ...f.m, ...f.v]) x.dispose();
    }
  }
}
