/**
 * UltraMemLayer: an UltraMem memory (Huang et al., ICLR 2025; docs/design.md §3) as a
 * composition of the memory core's parts:
 *
 *   addressor  ExpandedAddressor(TDQKR with h cores | product keys) over a virtual grid of
 *              (√E·n)² slots → E·h bags per token (IVE blocks × value column chunks)
 *   pool       the value table V [N = n², dv] viewed as [N·h, dv/h], shared with the model's
 *              other memories; sparse optimizer in backward, as every memory
 *   readout    projection [E·dv → D] (pool first, project after), or the identity when E = 1, dv = D
 *
 * Seeds: addressor `seed`, IVE permutation `seed + 7`, projection `seed + 5`; a pool the layer
 * creates itself: `seed`, init N(0, E/(2·m·H·L)) with L = 1.
 */
import { ConfigError } from '@mnemo/core';
import {
  type Addressor,
  IdentityReadout,
  Memory,
  type MemoryLayerOptions,
  MemoryPool,
  ProductKeyAddressor,
  ProjectionReadout,
  type Readout,
} from '@mnemo/memory-layer';
import { type UltraMemConfig, type UltraMemConfigInput, parseUltraMemConfig, ultraMemShape, ultraMemValueStd } from './config';
import { hasProjection } from './flops';
import { ExpandedAddressor, permutation } from './ive';
import { TdqkrAddressor } from './tdqkr';

/** The same options as a MemoryLayer's; a given pool must be ultraMemShape(config).poolRows × poolDim. */
export type UltraMemLayerOptions = MemoryLayerOptions;

let counter = 0;

export class UltraMemLayer extends Memory {
  declare readonly config: UltraMemConfig;
  declare readonly addressor: ExpandedAddressor;

  constructor(config: UltraMemConfigInput | UltraMemConfig, opts: UltraMemLayerOptions = {}) {
    const c = parseUltraMemConfig(config);
    const shape = ultraMemShape(c);
    const name = `${opts.name ?? 'ultramem'}_${counter++}`;
    if (opts.pool && (opts.pool.rows !== shape.poolRows || opts.pool.dim !== shape.poolDim)) {
      throw new ConfigError(
        'pool',
        `is ${opts.pool.rows}×${opts.pool.dim}; this UltraMem layer needs ${shape.poolRows}×${shape.poolDim} (numKeys² · chunks × valueDim / chunks)`,
      );
    }
    const pool =
      opts.pool ??
      new MemoryPool({ rows: shape.poolRows, dim: shape.poolDim, seed: c.seed, initStd: ultraMemValueStd(c, 1), ...opts.poolOptions });
    const inner: Addressor =
      c.scoring === 'tdqkr'
        ? new TdqkrAddressor({
            inputDim: c.inputDim,
            gridSize: shape.grid,
            heads: c.heads,
            topM: c.topM,
            keyDim: c.keyDim,
            rank: c.rank,
            cores: c.cores,
            preselect: c.preselect,
            layerNorm: c.layerNorm,
            aux: { alpha: c.auxAlpha, tau: c.auxTau },
            seed: c.seed,
            name,
          })
        : new ProductKeyAddressor({
            inputDim: c.inputDim,
            numKeys: shape.grid,
            heads: c.heads,
            topK: c.topM,
            keyDim: c.keyDim,
            queryNorm: c.layerNorm ? 'layernorm' : 'none',
            scoreFn: 'none',
            keyInit: 'meta',
            queryDropout: 0,
            seeds: { subkeys: c.seed + 1, wq: c.seed + 2 },
            name,
          });
    const addressor = new ExpandedAddressor(inner, {
      expansion: c.expansion,
      physicalRows: shape.N,
      chunks: shape.chunks,
      perm: permutation(c.expansion * shape.N, c.seed + 7, c.expansion > 1),
    });
    const readout: Readout = hasProjection(c)
      ? new ProjectionReadout(c.expansion * c.valueDim, c.inputDim, { seed: c.seed + 5, name })
      : new IdentityReadout(c.valueDim);
    super({ config: c, addressor, pool, readout, inputDim: c.inputDim, ownsPool: !opts.pool });
  }
}
