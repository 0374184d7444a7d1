/**
 * Memory: the one memory core every design is a composition of (docs/architecture.md):
 *
 *   x [B, D] ──addressor──▶ ids, weights [B·G, K] ──pool.lookup──▶ m [B, G·dv] ──readout(m, x)──▶ y [B, D]
 *
 * The addressor's and readout's tensors are tfjs variables trained by the model's optimizer; the
 * values live in the pool (a kernels value table outside tfjs), updated sparsely during backward.
 * Here, once for every design: input/value dropout, the lookup, usage counting and `inspect`.
 * PKM and Memory+ are `MemoryLayer`s (memory-layer.ts): product-key addressing + identity,
 * projection or SiLU-gate readout.
 */
import { ConfigError, ShapeError } from '@mnemo/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Address, Addressor } from './addressor';
import type { ValuePool } from './pool';
import { type Readout, checkReadout } from './readout';
import { UsageTracker } from './usage';

/** Which slots each token read, with which weights (introspection): layout [B, G, H, k]. */
export interface LookupTrace {
  batch: number; // B tokens
  heads: number; // H
  k: number;
  /** G bags per token (1 for product keys) */
  bags: number;
  ids: Int32Array; // [B, G, H, k] slot ids
  weights: Float32Array; // [B, G, H, k] pooling weights (after the score function)
  scores: Float32Array; // [B, G, H, k] raw scores
}

export interface MemoryParts {
  /** the memory's JSON-serialisable config (what checkpoints store and compare) */
  config: unknown;
  addressor: Addressor;
  pool: ValuePool;
  readout: Readout;
  /** D: width of x and y */
  inputDim: number;
  /** dropout on x before addressing, and on m before the readout (training only) */
  inputDropout?: number;
  valueDropout?: number;
  /** dispose the pool with this memory (a pool it created for itself) */
  ownsPool?: boolean;
}

export class Memory {
  readonly config: unknown;
  readonly addressor: Addressor;
  readonly pool: ValuePool;
  readonly readout: Readout;
  readonly inputDim: number;
  private readonly inputDropout: number;
  private readonly valueDropout: number;
  private readonly ownsPool: boolean;
  private tracker?: UsageTracker;

  constructor(parts: MemoryParts) {
    const { addressor, pool, readout } = parts;
    if (addressor.rows !== pool.rows) {
      throw new ConfigError('pool', `has ${pool.rows} rows but the addressor reads ids in [0, ${addressor.rows})`);
    }
    checkReadout(readout, addressor.bags * pool.dim, parts.inputDim);
    this.config = parts.config;
    this.addressor = addressor;
    this.pool = pool;
    this.readout = readout;
    this.inputDim = parts.inputDim;
    this.inputDropout = parts.inputDropout ?? 0;
    this.valueDropout = parts.valueDropout ?? 0;
    this.ownsPool = parts.ownsPool ?? false;
  }

  /** Rows of the value table (slots usage is counted over). */
  get slots(): number {
    return this.pool.rows;
  }

  /** The dense parameters, by name: the addressor's, then the readout's (checkpoint and optimizer order). */
  variables(): Record<string, tf.Variable> {
    return { ...this.addressor.variables(), ...this.readout.variables() };
  }

  trainableVariables(): tf.Variable[] {
    return Object.values(this.variables());
  }

  /**
   * y = memory(x). `x`: [B, D] or [B, T, D] (flattened to tokens). `training` enables dropout.
   * Call inside the model's loss function: the values are updated during its backward pass.
   */
  apply(x: tf.Tensor, opts: { training?: boolean } = {}): tf.Tensor {
    const D = this.inputDim;
    if ((x.rank !== 2 && x.rank !== 3) || x.shape[x.rank - 1] !== D) {
      throw new ShapeError('x', `must be [B, ${D}] or [B, T, ${D}], got [${x.shape}]`);
    }
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let x2 = tf.reshape(x, [-1, D]) as tf.Tensor2D; // [B, D]
      if (training && this.inputDropout > 0) x2 = tf.dropout(x2, this.inputDropout) as tf.Tensor2D;
      const a = this.addressor.address(x2, { training });
      if (this.tracker) this.tracker.add(a.ids.dataSync() as Int32Array, a.weights.dataSync() as Float32Array);
      let m = this.pool.lookup(a.ids, a.weights); // [B·G, dv]
      if (this.addressor.bags > 1) m = tf.reshape(m, [x2.shape[0], -1]) as tf.Tensor2D; // [B, G·dv]
      if (training && this.valueDropout > 0) m = tf.dropout(m, this.valueDropout) as tf.Tensor2D;
      return tf.reshape(this.readout.apply(m, x2), x.shape); // [B, D]
    });
  }

  /** The addressor's auxiliary loss (add it to the training loss), or undefined when it has none. */
  auxLoss(): tf.Scalar | undefined {
    return this.addressor.auxLoss?.();
  }

  /** Which slots each token of `x` reads, with which weights (no gradient, no update, not counted as usage). */
  inspect(x: tf.Tensor): LookupTrace {
    const D = this.inputDim;
    if (x.shape[x.rank - 1] !== D) throw new ShapeError('x', `last dimension must be ${D}, got [${x.shape}]`);
    let trace: LookupTrace | undefined;
    tf.tidy(() => {
      trace = traceOf(this.addressor.address(tf.reshape(x, [-1, D]) as tf.Tensor2D, { training: false }), this.addressor);
    });
    return trace!;
  }

  /** Start counting slot reads and weight mass (an evaluation pass); returns the tracker. */
  trackUsage(): UsageTracker {
    this.tracker = new UsageTracker(this.slots);
    return this.tracker;
  }

  stopUsage(): UsageTracker | undefined {
    const t = this.tracker;
    this.tracker = undefined;
    return t;
  }

  dispose(): void {
    this.addressor.dispose();
    this.readout.dispose();
    if (this.ownsPool) this.pool.dispose();
  }
}

function traceOf(a: Address, addressor: Addressor): LookupTrace {
  const { heads, topK: k, bags } = addressor;
  return {
    batch: a.ids.shape[0] / bags,
    heads,
    k,
    bags,
    ids: Int32Array.from(a.ids.dataSync() as Int32Array),
    weights: Float32Array.from(a.weights.dataSync() as Float32Array),
    scores: Float32Array.from(a.scores.dataSync() as Float32Array),
  };
}
