/**
 * Readout: the last of a memory's three parts (addressor → value table → readout). It turns the
 * pooled values into the layer's output, given the token's input:
 *
 *   (m [B, G·dv], x [B, D])  →  y [B, D]
 *
 *   IdentityReadout    y = m                               (PKM with dv = D)
 *   ProjectionReadout  y = m Wo                            (PKM with dv ≠ D; UltraMem's half-width values)
 *   SiluGateReadout    y = W2 (m ⊙ silu(W1 x + b1)) + b2    (Memory+, docs/design.md §2.5)
 * UltraMem's per-block IVE projections and multi-core concatenation are readouts too.
 */
import { ConfigError } from '@mnemo/core';
import { siluMul } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';

export interface Readout {
  /** width of the m it reads: G·dv */
  readonly valueDim: number;
  /** D: width of x and of y */
  readonly outputDim: number;
  apply(m: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D;
  variables(): Record<string, tf.Variable>;
  dispose(): void;
}

// the initial value is a temporary: tidy frees it, the variable keeps its own copy
const variable = <R extends tf.Rank>(init: () => tf.Tensor<R>, name: string) => tf.tidy(() => tf.variable(init(), true, name));

export class IdentityReadout implements Readout {
  readonly outputDim: number;
  constructor(readonly valueDim: number) {
    this.outputDim = valueDim;
  }
  apply(m: tf.Tensor2D): tf.Tensor2D {
    return m;
  }
  variables(): Record<string, tf.Variable> {
    return {};
  }
  dispose(): void {}
}

export class ProjectionReadout implements Readout {
  readonly wo: tf.Variable<tf.Rank.R2>; // [dv, D]
  constructor(
    readonly valueDim: number,
    readonly outputDim: number,
    opts: { seed: number; name: string },
  ) {
    this.wo = variable(() => tf.randomNormal([valueDim, outputDim], 0, valueDim ** -0.5, 'float32', opts.seed), `${opts.name}/wo`);
  }
  apply(m: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(m, this.wo);
  }
  variables(): Record<string, tf.Variable> {
    return { wo: this.wo };
  }
  dispose(): void {
    this.wo.dispose();
  }
}

export class SiluGateReadout implements Readout {
  readonly w1: tf.Variable<tf.Rank.R2>; // [D, dv]
  readonly b1: tf.Variable<tf.Rank.R1>; // [dv]
  readonly w2: tf.Variable<tf.Rank.R2>; // [dv, D]
  readonly b2: tf.Variable<tf.Rank.R1>; // [D]

  constructor(
    readonly valueDim: number,
    readonly outputDim: number,
    opts: { seeds: { w1: number; w2: number }; name: string },
  ) {
    const [D, dv] = [outputDim, valueDim];
    const std = D ** -0.5; // N(0, D^-1/2) for W1, W2 (Berges et al. 2024)
    this.w1 = variable(() => tf.randomNormal([D, dv], 0, std, 'float32', opts.seeds.w1), `${opts.name}/w1`);
    this.b1 = variable(() => tf.zeros([dv]), `${opts.name}/b1`);
    this.w2 = variable(() => tf.randomNormal([dv, D], 0, std, 'float32', opts.seeds.w2), `${opts.name}/w2`);
    this.b2 = variable(() => tf.zeros([D]), `${opts.name}/b2`);
  }

  apply(m: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D {
    const gate = tf.add(tf.matMul(x, this.w1), this.b1); // [B, dv]
    return tf.add(tf.matMul(siluMul(gate, m), this.w2), this.b2) as tf.Tensor2D; // m ⊙ silu(gate) [B, dv] W2 → [B, D]
  }

  variables(): Record<string, tf.Variable> {
    return { w1: this.w1, b1: this.b1, w2: this.w2, b2: this.b2 };
  }

  dispose(): void {
    for (const v of Object.values(this.variables())) v.dispose();
  }
}

/** Throw unless a readout reads what the value table and addressor produce. */
export function checkReadout(readout: Readout, valueDim: number, inputDim: number): void {
  if (readout.valueDim !== valueDim)
    throw new ConfigError('readout', `reads m of width ${readout.valueDim}, the pool and addressor give ${valueDim}`);
  if (readout.outputDim !== inputDim)
    throw new ConfigError('readout', `writes width ${readout.outputDim}, the layer's input is ${inputDim}`);
}
