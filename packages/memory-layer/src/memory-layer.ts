/**
 * MemoryLayer: PKM and Memory+, a product-key memory in place of a transformer FFN (Lample et
 * al. 2019; Berges et al. 2024, "Memory Layers at Scale"; docs/design.md §2). A composition of
 * the memory core's parts (memory.ts), built from one validated config:
 *
 *   addressor  ProductKeyAddressor: q = x Wq + bq → exact top-k over N = n² product keys → w
 *   pool       the value table V [N, dv], shared by several layers (Memory+) and updated sparsely
 *   readout    gating silu (Memory+): y = W2 (m ⊙ silu(W1 x + b1)) + b2
 *              gating none (PKM):     y = m   (or m Wo when dv ≠ D)
 *
 * Seeds: sub-keys `seed + 1`, Wq `seed + 2`, W1 `seed + 3`, W2 `seed + 4`, Wo `seed + 5`; a pool
 * the layer creates itself: `seed`.
 */
import { ConfigError } from '@mnemo/core';
import type * as tf from '@tensorflow/tfjs-core';
import { type MemoryLayerConfig, type MemoryLayerConfigInput, parseMemoryLayerConfig } from './config';
import { Memory } from './memory';
import { MemoryPool, type MemoryPoolOptions, type ValuePool } from './pool';
import { ProductKeyAddressor } from './product-key-addressor';
import { IdentityReadout, ProjectionReadout, type Readout, SiluGateReadout } from './readout';

export interface MemoryLayerOptions {
  /** a pool shared with other layers; default: a new pool of N × valueDim */
  pool?: ValuePool;
  /** options of the pool created when none is given */
  poolOptions?: Partial<MemoryPoolOptions>;
  /** prefix of the tfjs variable names */
  name?: string;
}

let counter = 0;

export class MemoryLayer extends Memory {
  declare readonly config: MemoryLayerConfig;
  declare readonly addressor: ProductKeyAddressor;

  constructor(config: MemoryLayerConfigInput | MemoryLayerConfig, opts: MemoryLayerOptions = {}) {
    const c = parseMemoryLayerConfig(config);
    const N = c.numKeys * c.numKeys;
    const name = `${opts.name ?? 'memory'}_${counter++}`;
    if (opts.pool) {
      if (opts.pool.rows !== N) {
        throw new ConfigError('pool', `has ${opts.pool.rows} rows but numKeys² = ${N}; layers sharing a pool need the same numKeys`);
      }
      if (opts.pool.dim !== c.valueDim) throw new ConfigError('pool', `has width ${opts.pool.dim} but valueDim = ${c.valueDim}`);
    }
    const pool = opts.pool ?? new MemoryPool({ rows: N, dim: c.valueDim, seed: c.seed, ...opts.poolOptions });
    const addressor = new ProductKeyAddressor({ ...c, seeds: { subkeys: c.seed + 1, wq: c.seed + 2 }, name });
    super({
      config: c,
      addressor,
      pool,
      readout: readoutFor(c, name),
      inputDim: c.inputDim,
      inputDropout: c.inputDropout,
      valueDropout: c.valueDropout,
      ownsPool: !opts.pool,
    });
  }

  get keys() {
    return this.addressor.keys;
  }
  get wq(): tf.Variable<tf.Rank.R2> {
    return this.addressor.wq; // [D, H·dk]
  }
  get bq(): tf.Variable<tf.Rank.R1> {
    return this.addressor.bq; // [H·dk]
  }
  get w1(): tf.Variable<tf.Rank.R2> | undefined {
    return this.readout instanceof SiluGateReadout ? this.readout.w1 : undefined; // [D, dv]
  }
  get b1(): tf.Variable<tf.Rank.R1> | undefined {
    return this.readout instanceof SiluGateReadout ? this.readout.b1 : undefined; // [dv]
  }
  get w2(): tf.Variable<tf.Rank.R2> | undefined {
    return this.readout instanceof SiluGateReadout ? this.readout.w2 : undefined; // [dv, D]
  }
  get b2(): tf.Variable<tf.Rank.R1> | undefined {
    return this.readout instanceof SiluGateReadout ? this.readout.b2 : undefined; // [D]
  }
  get wo(): tf.Variable<tf.Rank.R2> | undefined {
    return this.readout instanceof ProjectionReadout ? this.readout.wo : undefined; // [dv, D]
  }
}

function readoutFor(c: MemoryLayerConfig, name: string): Readout {
  if (c.gating === 'silu') return new SiluGateReadout(c.valueDim, c.inputDim, { seeds: { w1: c.seed + 3, w2: c.seed + 4 }, name });
  if (c.valueDim !== c.inputDim) return new ProjectionReadout(c.valueDim, c.inputDim, { seed: c.seed + 5, name });
  return new IdentityReadout(c.valueDim);
}
