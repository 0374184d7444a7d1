/**
 * The registry of FFN kinds: one entry per kind a block's FFN slot can hold, and the only place
 * that knows what each kind is. Model, checkpoints, counts and the trainer ask it; nothing
 * matches kind names elsewhere.
 *
 *   dense       SwiGLU MLP, hidden ffnHidden              (swiglu.ts)
 *   moe         top-2 of E SwiGLU experts                  (moe.ts)
 *   memory      PKM: product keys + identity readout       (memory-ffn.ts, @mnemo/memory-layer)
 *   memoryPlus  Memory+: product keys + SiLU-gate readout   (memory-ffn.ts)
 *   ultramem    UltraMem: TDQKR + MCS + IVE, projection     (@mnemo/ultramem)
 *   none        no FFN (y = 0): a block whose FFN a skip-layer memory replaces
 *
 * A kind with `memory` reads the model's ONE shared value pool; such kinds can also sit on a
 * skip-layer site (config.skips: read block i's FFN input, add after block j). Adding a kind:
 * docs/architecture.md, "Adding a memory kind".
 */
import type { Memory, MemoryLayerConfig, ValuePool } from '@mnemo/memory-layer';
import { memoryLayerFlops } from '@mnemo/memory-layer';
import { UltraMemLayer, ultraMemFlops, ultraMemParams, ultraMemShape, ultraMemValueStd } from '@mnemo/ultramem';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@mnemo/core';
import type { ModelConfig } from './config';
import type { FfnSlot } from './ffn';
import { MemoryFfn, newMemoryLayer, productKeyLayerConfig, ultraMemLayerConfig } from './memory-ffn';
import { MoeFfn } from './moe';
import type { ParamStore } from './params';
import { DenseFfn } from './swiglu';

/** Where an FFN slot is built: block `block` of a model, its parameters under `prefix`. */
export interface FfnSite {
  config: ModelConfig;
  block: number;
  prefix: string; // `blocks.<i>.ffn`
  params: ParamStore;
  /** residual projections' init std (GPT-2 scaling) */
  outStd: number;
  /** the model's shared value pool (present when any site reads memory) */
  pool?: ValuePool;
}

/** A memory kind: how to build the memory of one site (an FFN slot or a skip) on the shared pool. */
export interface MemoryKindSpec {
  /** the layer config of the memory at `site` (`blocks.<i>.ffn` or `skips.<i>`): what memory.json stores */
  layerConfig(c: ModelConfig, site: string): unknown;
  /** the memory at `site`, reading `pool` */
  create(c: ModelConfig, site: string, pool: ValuePool): Memory;
  /** the memory's own tensors (never the pool) and its forward FLOPs per token */
  counts(c: ModelConfig, site: string): { params: number; flops: number };
  /** the shared pool this kind reads: rows × dim, and the values' init std */
  pool(c: ModelConfig): { rows: number; dim: number; initStd: number };
}

export interface FfnKindSpec {
  /** blocks `ffnPlan` gives this kind when no count or list is given; default every block */
  defaultBlocks?: number;
  create(site: FfnSite): FfnSlot;
  /**
   * Analytic counts of one block's FFN: `params` trained by the dense optimizer (the memory's own
   * tensors for memory kinds, never the pool), `activeParams` one token uses, forward FLOPs per token.
   */
  counts(c: ModelConfig, block: number): { params: number; activeParams: number; flops: number };
  /** present for kinds that read the shared value pool */
  memory?: MemoryKindSpec;
}

const swigluParams = (D: number, h: number) => 3 * D * h;

/** The tensors of a product-key memory layer (Wq, bq, sub-keys; W1, b1, W2, b2 or Wo). */
function memoryLayerParams(m: MemoryLayerConfig): number {
  const D = m.inputDim;
  const hq = m.heads * m.keyDim;
  let n = D * hq + hq + m.heads * m.numKeys * m.keyDim; // Wq, bq, sub-keys [H, 2, n, dk/2]
  if (m.gating === 'silu')
    n += 2 * D * m.valueDim + m.valueDim + D; // W1, b1, W2, b2
  else if (m.valueDim !== D) n += m.valueDim * D; // Wo
  return n;
}

/** A registry entry for a memory kind: its FFN slot wraps the memory built on the model's pool. */
function memoryFfnKind(kind: string, memory: MemoryKindSpec, defaultBlocks?: number): FfnKindSpec {
  return {
    defaultBlocks,
    memory,
    create: (s) => new MemoryFfn(memory.create(s.config, s.prefix, s.pool!), kind),
    counts: (c, block) => {
      const { params, flops } = memory.counts(c, `blocks.${block}.ffn`);
      return { params, activeParams: params, flops };
    },
  };
}

function productKeyKind(kind: string, gating: 'none' | 'silu', defaultBlocks: number): FfnKindSpec {
  const memory: MemoryKindSpec = {
    layerConfig: (c, site) => productKeyLayerConfig(c, site, gating),
    create: (c, site, pool) => newMemoryLayer(productKeyLayerConfig(c, site, gating), pool, site),
    counts: (c, site) => {
      const m = productKeyLayerConfig(c, site, gating);
      return { params: memoryLayerParams(m), flops: memoryLayerFlops(m) };
    },
    pool: (c) => {
      const dim = c.memory.valueDim ?? c.dim;
      return { rows: c.memory.numKeys ** 2, dim, initStd: dim ** -0.5 };
    },
  };
  return memoryFfnKind(kind, memory, defaultBlocks);
}

const ultramemKind: MemoryKindSpec = {
  layerConfig: (c, site) => ultraMemLayerConfig(c, site),
  create: (c, site, pool) => new UltraMemLayer(ultraMemLayerConfig(c, site), { pool, name: site }),
  counts: (c, site) => {
    const u = ultraMemLayerConfig(c, site);
    return { params: ultraMemParams(u), flops: ultraMemFlops(u) };
  },
  pool: (c) => {
    const u = ultraMemLayerConfig(c, 'pool');
    const { poolRows, poolDim } = ultraMemShape(u);
    return { rows: poolRows, dim: poolDim, initStd: ultraMemValueStd(u, c.layers) };
  },
};

/** No FFN: y = 0, no parameters (the block's FFN is replaced by a skip-layer memory elsewhere). */
const noFfn: FfnKindSpec = {
  create: () => ({
    kind: 'none',
    apply: (x) => ({ y: tf.zerosLike(x) }),
    variables: () => ({}),
    dispose: () => {},
  }),
  counts: () => ({ params: 0, activeParams: 0, flops: 0 }),
};

/** Every FFN kind (the registry below must have exactly these entries). */
export const FFN_KINDS = ['dense', 'moe', 'memory', 'memoryPlus', 'ultramem', 'none'] as const;
export type FfnKind = (typeof FFN_KINDS)[number];

export const FFN_REGISTRY: Record<FfnKind, FfnKindSpec> = {
  dense: {
    create: (s) => new DenseFfn(s.params, s.prefix, s.config.dim, s.config.ffnHidden, s.outStd),
    counts: (c) => {
      const p = swigluParams(c.dim, c.ffnHidden);
      return { params: p, activeParams: p, flops: 2 * p };
    },
  },
  moe: {
    create: (s) => {
      const { dim, moe } = s.config;
      return new MoeFfn(s.params, s.prefix, dim, moe.experts, moe.hidden, moe.balanceCoef, s.outStd);
    },
    counts: (c) => {
      const router = c.dim * c.moe.experts;
      const expert = swigluParams(c.dim, c.moe.hidden);
      return { params: router + c.moe.experts * expert, activeParams: router + 2 * expert, flops: 2 * router + 2 * 2 * expert };
    },
  },
  memory: productKeyKind('memory', 'none', 1),
  memoryPlus: productKeyKind('memoryPlus', 'silu', 3),
  ultramem: memoryFfnKind('ultramem', ultramemKind, 3),
  none: noFfn,
};

/** The kinds that read the shared value pool (allowed on skip-layer sites too). */
export const MEMORY_KINDS = FFN_KINDS.filter((k) => FFN_REGISTRY[k].memory !== undefined) as [FfnKind, ...FfnKind[]];

/** The registry entry of `kind`. */
export function ffnKind(kind: FfnKind): FfnKindSpec {
  return FFN_REGISTRY[kind];
}

/** Whether `kind` is a memory kind (reads the shared value pool). Unknown names are not. */
export function isMemoryKind(kind: string): boolean {
  return (MEMORY_KINDS as string[]).includes(kind);
}

/** The memory spec of a memory kind; a ConfigError naming `field` for any other kind. */
export function memoryKind(kind: FfnKind, field: string): MemoryKindSpec {
  const spec = FFN_REGISTRY[kind].memory;
  if (!spec) throw new ConfigError(field, `is '${kind}', not a memory kind (${MEMORY_KINDS.join(', ')})`);
  return spec;
}

/** The layer config of block `block`'s FFN (a memory kind) of a model (a MemoryLayerConfig for PKM / Memory+). */
export function memoryLayerConfigFor(c: ModelConfig, block: number): unknown {
  const kind = c.ffn[block];
  if (kind === undefined) throw new ConfigError('block', `${block} is not in [0, ${c.layers})`);
  return memoryKind(kind, `ffn.${block}`).layerConfig(c, `blocks.${block}.ffn`);
}

/** Whether a (possibly unvalidated) model config reads the shared value pool: a memory block or a skip memory. */
export function usesMemoryPool(c: { ffn?: readonly string[]; skips?: readonly { kind: string }[] }): boolean {
  return (c.ffn ?? []).some(isMemoryKind) || (c.skips ?? []).length > 0;
}

/**
 * The shape of the one pool a model's memories share (rows × dim, init std), from the kinds it
 * uses; undefined when no memory reads one. Kinds that need different shapes cannot share it.
 */
export function poolShapeOf(c: ModelConfig): { rows: number; dim: number; initStd: number } | undefined {
  const kinds = [...new Set([...c.ffn.filter(isMemoryKind), ...(c.skips ?? []).map((s) => s.kind)])];
  let shape: { rows: number; dim: number; initStd: number } | undefined;
  for (const k of kinds) {
    const p = memoryKind(k, 'ffn').pool(c);
    if (shape && (shape.rows !== p.rows || shape.dim !== p.dim)) {
      throw new ConfigError(
        'ffn',
        `memory kinds ${kinds.join(', ')} need pools of different shapes (${shape.rows}×${shape.dim} vs ${p.rows}×${p.dim}); one model has one pool`,
      );
    }
    shape ??= p;
  }
  return shape;
}
