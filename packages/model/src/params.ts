/**
 * The model's dense parameters, created with seeded initialisers and registered under stable
 * checkpoint names (`blocks.0.attn.wqkv`, …). tfjs variable names must be unique per process,
 * so each model prefixes its own; `named()` returns the stable names.
 */
import * as tf from '@tensorflow/tfjs-core';
import { subSeed } from '@mnemo/core';

let modelCounter = 0;

export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly owned: tf.Variable[] = [];
  private readonly prefix = `mnemo_model_${modelCounter++}`;

  constructor(private readonly seed: number) {}

  /** N(0, std²), seeded by the config seed and the parameter's name. */
  normal(name: string, shape: number[], std: number): tf.Variable {
    const init = tf.randomNormal(shape, 0, std, 'float32', subSeed(this.seed, name));
    return this.register(name, init);
  }

  ones(name: string, shape: number[]): tf.Variable {
    return this.register(name, tf.ones(shape));
  }

  /** Register a variable created elsewhere (a memory layer's) under a stable name. */
  adopt(name: string, v: tf.Variable): tf.Variable {
    if (this.vars.has(name)) throw new Error(`duplicate parameter name ${name}`);
    this.vars.set(name, v);
    return v;
  }

  named(): Record<string, tf.Variable> {
    return Object.fromEntries(this.vars);
  }

  list(): tf.Variable[] {
    return [...this.vars.values()];
  }

  /** Dispose the variables created here (adopted ones belong to their creator). */
  dispose(): void {
    for (const v of this.owned) v.dispose();
    this.owned.length = 0;
    this.vars.clear();
  }

  private register(name: string, init: tf.Tensor): tf.Variable {
    const v = tf.variable(init, true, `${this.prefix}/${name}`);
    init.dispose();
    this.owned.push(v);
    return this.adopt(name, v);
  }
}
