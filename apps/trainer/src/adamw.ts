/**
 * Adam(W) for the dense parameters, with global-norm clipping. Written out (instead of
 * tf.train.adam) so its state is plain per-variable tensors in a fixed order: a checkpoint stores
 * them by index and a resumed run continues bit for bit. The value table is not here: the
 * memory pool updates its touched rows itself, inside the backward pass.
 */
import { CheckpointError } from '@mnemo/core';
import { denseAdamW, sumOfSquares } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';

export class AdamW {
  step = 0;
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];

  constructor(
    readonly vars: tf.Variable[],
    readonly opts: { beta1?: number; beta2?: number; eps?: number; weightDecay?: number; clip?: number } = {},
  ) {
    // tidy frees the zeros; the variables keep their own copies
    this.m = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
    this.v = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
  }

  /**
   * One step: grads of `loss` for `vars`; returns the loss value and the pre-clip gradient norm.
   * `reduce` (data-parallel training) replaces the gradients before the norm and the update, e.g.
   * by their sum over ranks (@mnemo/parallel allReduceGradients); tensors it returns anew are freed here.
   */
  minimize(loss: () => tf.Scalar, lr: number, reduce?: (g: tf.NamedTensorMap) => tf.NamedTensorMap): { loss: number; gradNorm: number } {
    const { value, grads: own } = tf.variableGrads(loss, this.vars);
    let grads = own;
    if (reduce) {
      grads = reduce(own);
      if (grads !== own) for (const [k, g] of Object.entries(own)) if (grads[k] !== g) g.dispose();
    }
    const b1 = this.opts.beta1 ?? 0.9;
    const b2 = this.opts.beta2 ?? 0.95;
    const eps = this.opts.eps ?? 1e-8;
    const wd = this.opts.weightDecay ?? 0;
    const clip = this.opts.clip ?? 0;
    this.step++;
    const t = this.step;
    // a variable with no gradient this step (an MoE expert no token was routed to) gets zeros
    const gs = this.vars.map((x) => grads[x.name] ?? tf.zerosLike(x));
    const sq = sumOfSquares(gs);
    const gradNorm = Math.sqrt(sq);
    const scale = clip > 0 && gradNorm > clip ? clip / gradNorm : 1;
    // one fused pass per parameter on the native dense path (@mnemo/kernels), tfjs ops otherwise
    this.vars.forEach((x, i) => {
      const r = denseAdamW(x, this.m[i]!, this.v[i]!, gs[i]!, { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, t, scale });
      this.m[i]!.assign(r.m);
      this.v[i]!.assign(r.v);
      x.assign(r.x);
      r.m.dispose();
      r.v.dispose();
      r.x.dispose();
    });
    const l = value.dataSync()[0]!;
    value.dispose();
    for (const g of gs) g.dispose();
    return { loss: l, gradNorm };
  }

  /** State for a checkpoint: `adam.m.<i>`, `adam.v.<i>` (in variable order). */
  state(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    this.m.forEach((t, i) => {
      out[`adam.m.${i}`] = t;
    });
    this.v.forEach((t, i) => {
      out[`adam.v.${i}`] = t;
    });
    return out;
  }

  load(step: number, tensors: Record<string, tf.Tensor>): void {
    this.step = step;
    for (const [kind, list] of [
      ['m', this.m],
      ['v', this.v],
    ] as const) {
      list.forEach((t, i) => {
        const src = tensors[`adam.${kind}.${i}`];
        if (!src || src.shape.join() !== t.shape.join()) {
          throw new CheckpointError(
            'extra.safetensors',
            `optimizer state adam.${kind}.${i} is missing or has shape [${src?.shape}], expected [${t.shape}]`,
          );
        }
        t.assign(src);
      });
    }
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
