/** Dense FFN slot: SwiGLU, y = (silu(x W1) ⊙ x W3) W2, hidden width `ffnHidden`. */
import type * as tf from '@tensorflow/tfjs-core';
import type { FfnSlot } from './ffn';
import { swiglu } from './ops';
import type { ParamStore } from './params';

export class DenseFfn implements FfnSlot {
  readonly kind = 'dense';
  readonly w1: tf.Variable; // [D, F]  gate
  readonly w3: tf.Variable; // [D, F]  up
  readonly w2: tf.Variable; // [F, D]

  constructor(params: ParamStore, prefix: string, dim: number, hidden: number, outStd: number) {
    this.w1 = params.normal(`${prefix}.w1`, [dim, hidden], 0.02);
    this.w3 = params.normal(`${prefix}.w3`, [dim, hidden], 0.02);
    this.w2 = params.normal(`${prefix}.w2`, [hidden, dim], outStd);
  }

  apply(x: tf.Tensor2D): { y: tf.Tensor2D } {
    return { y: swiglu(x, this.w1 as tf.Tensor2D, this.w3 as tf.Tensor2D, this.w2 as tf.Tensor2D) };
  }

  variables(): Record<string, tf.Variable> {
    return { w1: this.w1, w3: this.w3, w2: this.w2 };
  }

  dispose(): void {} // the model's ParamStore owns the variables
}
