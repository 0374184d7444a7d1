/**
 * MemoryLayer: a product-key memory in place of a transformer FFN (Lample et al. 2019;
 * Berges et al. 2024, "Memory Layers at Scale"; algorithms.md §2).
 *
 *   x            [B, D]      the block's normalised input
 *   q = x Wq + bq            [B, H, dk]   (optional query dropout; QK-norm / LayerNorm in ProductKeys)
 *   (s, I) = productKeys(q)  [B, H, k]    exact top-k over N = n² slots per head
 *   w = softmax(s) per head  [B, H, k]    (or raw scores, or relu)
 *   m = Σ_{h,j} w[h,j] V[I[h,j]]  [B, dv]  ONE bag of H·k rows; V in the shared pool
 *   gating silu (Memory+):  y = W2 (m ⊙ silu(W1 x + b1)) + b2     [B, D]
 *   gating none (PKM):      y = m            (or m Wo when dv ≠ D)
 *
 * Dense parameters (Wq, bq, sub-keys, W1, b1, W2, b2) are tfjs variables trained by the model's
 * optimizer; the values V are updated sparsely by the pool's own optimizer during backward.
 */
import { ConfigError, ShapeError } from '@mnemo/core';
import { ProductKeys } from '@mnemo/product-keys';
import * as tf from '@tensorflow/tfjs-core';
import { type MemoryLayerConfig, type MemoryLayerConfigInput, parseMemoryLayerConfig } from './config';
import { MemoryPool, type MemoryPoolOptions, type ValuePool } from './pool';
import { UsageTracker } from './usage';

export interface MemoryLayerOptions {
  /** a pool shared with other layers; default: a new pool of N × valueDim */
  pool?: ValuePool;
  /** options of the pool created when none is given */
  poolOptions?: Partial<MemoryPoolOptions>;
  /** prefix of the tfjs variable names */
  name?: string;
}

/** Which slots each token read, with which weights (introspection). */
export interface LookupTrace {
  batch: number; // B tokens
  heads: number; // H
  k: number;
  ids: Int32Array; // [B, H, k] slot ids
  weights: Float32Array; // [B, H, k] pooling weights (after the score function)
  scores: Float32Array; // [B, H, k] raw product-key scores
}

let counter = 0;

export class MemoryLayer {
  readonly config: MemoryLayerConfig;
  readonly pool: ValuePool;
  readonly keys: ProductKeys;
  readonly wq: tf.Variable<tf.Rank.R2>; // [D, H·dk]
  readonly bq: tf.Variable<tf.Rank.R1>; // [H·dk]
  readonly w1?: tf.Variable<tf.Rank.R2>; // [D, dv]
  readonly b1?: tf.Variable<tf.Rank.R1>; // [dv]
  readonly w2?: tf.Variable<tf.Rank.R2>; // [dv, D]
  readonly b2?: tf.Variable<tf.Rank.R1>; // [D]
  readonly wo?: tf.Variable<tf.Rank.R2>; // [dv, D] (gating none, dv ≠ D)
  private readonly ownsPool: boolean;
  private tracker?: UsageTracker;
  private traceNext = false;
  private trace?: LookupTrace;

  constructor(config: MemoryLayerConfigInput | MemoryLayerConfig, opts: MemoryLayerOptions = {}) {
    const c = parseMemoryLayerConfig(config);
    this.config = c;
    const D = c.inputDim;
    const dv = c.valueDim;
    const N = c.numKeys * c.numKeys;
    const name = `${opts.name ?? 'memory'}_${counter++}`;
    if (opts.pool) {
      if (opts.pool.rows !== N) {
        throw new ConfigError('pool', `has ${opts.pool.rows} rows but numKeys² = ${N}; layers sharing a pool need the same numKeys`);
      }
      if (opts.pool.dim !== dv) throw new ConfigError('pool', `has width ${opts.pool.dim} but valueDim = ${dv}`);
      this.pool = opts.pool;
      this.ownsPool = false;
    } else {
      this.pool = new MemoryPool({ rows: N, dim: dv, seed: c.seed, ...opts.poolOptions });
      this.ownsPool = true;
    }
    this.keys = new ProductKeys({
      heads: c.heads,
      numKeys: c.numKeys,
      keyDim: c.keyDim,
      topK: c.topK,
      keyInit: c.keyInit,
      queryNorm: c.queryNorm,
      seed: c.seed + 1,
      name,
    });
    // the initial value is a temporary: tidy frees it, the variable keeps its own copy
    const variable = <R extends tf.Rank>(init: () => tf.Tensor<R>, n: string) => tf.tidy(() => tf.variable(init(), true, n));
    const hq = c.heads * c.keyDim;
    const glorot = Math.sqrt(6 / (D + hq)); // Xavier uniform for the query projection
    this.wq = variable(() => tf.randomUniform([D, hq], -glorot, glorot, 'float32', c.seed + 2), `${name}/wq`);
    this.bq = variable(() => tf.zeros([hq]), `${name}/bq`);
    if (c.gating === 'silu') {
      const std = D ** -0.5; // N(0, D^-1/2) for W1, W2 (Berges et al. 2024)
      this.w1 = variable(() => tf.randomNormal([D, dv], 0, std, 'float32', c.seed + 3), `${name}/w1`);
      this.b1 = variable(() => tf.zeros([dv]), `${name}/b1`);
      this.w2 = variable(() => tf.randomNormal([dv, D], 0, std, 'float32', c.seed + 4), `${name}/w2`);
      this.b2 = variable(() => tf.zeros([D]), `${name}/b2`);
    } else if (dv !== D) {
      this.wo = variable(() => tf.randomNormal([dv, D], 0, dv ** -0.5, 'float32', c.seed + 5), `${name}/wo`);
    }
  }

  /** N = n² slots. */
  get slots(): number {
    return this.config.numKeys * this.config.numKeys;
  }

  /** The dense parameters, by name (for the model's optimizer and for checkpoints). */
  variables(): Record<string, tf.Variable> {
    const v: Record<string, tf.Variable | undefined> = {
      wq: this.wq,
      bq: this.bq,
      subkeys: this.keys.subkeys,
      w1: this.w1,
      b1: this.b1,
      w2: this.w2,
      b2: this.b2,
      wo: this.wo,
    };
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)) as Record<string, tf.Variable>;
  }

  trainableVariables(): tf.Variable[] {
    return Object.values(this.variables());
  }

  /** Query → product-key search → pooling weights. Returns ids [B, H·k], weights [B, H·k]. */
  private address(x: tf.Tensor2D, training: boolean) {
    const c = this.config;
    const B = x.shape[0];
    let q = tf.add(tf.matMul(x, this.wq), this.bq) as tf.Tensor2D; // [B, H·dk]
    if (training && c.queryDropout > 0) q = tf.dropout(q, c.queryDropout) as tf.Tensor2D;
    const { scores, ids } = this.keys.search(tf.reshape(q, [B, c.heads, c.keyDim]) as tf.Tensor3D); // [B, H, k]
    const w =
      c.scoreFn === 'softmax' ? tf.softmax(scores, -1) : c.scoreFn === 'relu' ? tf.relu(scores) : scores; // [B, H, k]
    if (this.tracker || this.traceNext) {
      const idv = ids.dataSync() as Int32Array;
      const wv = w.dataSync() as Float32Array;
      this.tracker?.add(idv, wv);
      if (this.traceNext) {
        this.trace = {
          batch: B,
          heads: c.heads,
          k: c.topK,
          ids: Int32Array.from(idv),
          weights: Float32Array.from(wv),
          scores: Float32Array.from(scores.dataSync() as Float32Array),
        };
        this.traceNext = false;
      }
    }
    const hk = c.heads * c.topK;
    return {
      ids: tf.reshape(ids, [B, hk]) as tf.Tensor2D, // heads summed into one bag of H·k rows
      weights: tf.reshape(w, [B, hk]) as tf.Tensor2D,
    };
  }

  /**
   * y = memory(x). `x`: [B, D] or [B, T, D] (flattened to tokens). `training` enables dropout.
   * Call inside the model's loss function: the values are updated during its backward pass.
   */
  apply(x: tf.Tensor, opts: { training?: boolean } = {}): tf.Tensor {
    const c = this.config;
    const D = c.inputDim;
    if ((x.rank !== 2 && x.rank !== 3) || x.shape[x.rank - 1] !== D) {
      throw new ShapeError('x', `must be [B, ${D}] or [B, T, ${D}], got [${x.shape}]`);
    }
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let x2 = tf.reshape(x, [-1, D]) as tf.Tensor2D; // [B, D]
      if (training && c.inputDropout > 0) x2 = tf.dropout(x2, c.inputDropout) as tf.Tensor2D;
      const { ids, weights } = this.address(x2, training);
      let m = this.pool.lookup(ids, weights); // [B, dv]
      if (training && c.valueDropout > 0) m = tf.dropout(m, c.valueDropout) as tf.Tensor2D;
      let y: tf.Tensor2D;
      if (this.w1 && this.b1 && this.w2 && this.b2) {
        const gate = tf.add(tf.matMul(x2, this.w1), this.b1); // [B, dv]
        const silu = tf.mul(gate, tf.sigmoid(gate));
        y = tf.add(tf.matMul(tf.mul(m, silu), this.w2), this.b2) as tf.Tensor2D; // [B, D]
      } else if (this.wo) {
        y = tf.matMul(m, this.wo);
      } else {
        y = m;
      }
      return tf.reshape(y, x.shape);
    });
  }

  /** Which slots each token of `x` reads, with which weights (no gradient, no update). */
  inspect(x: tf.Tensor): LookupTrace {
    const D = this.config.inputDim;
    if (x.shape[x.rank - 1] !== D) throw new ShapeError('x', `last dimension must be ${D}, got [${x.shape}]`);
    tf.tidy(() => {
      this.traceNext = true;
      this.address(tf.reshape(x, [-1, D]) as tf.Tensor2D, false);
    });
    const t = this.trace!;
    this.trace = undefined;
    return t;
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
    for (const v of this.trainableVariables()) if (v !== this.keys.subkeys) v.dispose();
    this.keys.dispose();
    if (this.ownsPool && this.pool instanceof MemoryPool) this.pool.dispose();
  }
}
