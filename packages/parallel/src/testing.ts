/**
 * Shared by the sharded-pool tests and the bench: deterministic global batches at the shapes of
 * Memory+ (one bag of H·k rows per token) and UltraMem (E bags of topM rows per token).
 */
import { mulberry32 } from '@mnemo/core';
import type { OptimizerConfig } from '@mnemo/kernels';

export interface PoolCase {
  name: string;
  rows: number; // N
  dim: number; // dv
  /** bags per rank per call */
  bags: number;
  /** entries per bag (H·k, or UltraMem's topM) */
  K: number;
  optimizer: OptimizerConfig;
  scheme: 'dim' | 'row';
  deferred?: boolean;
  seed: number;
}

/** Memory+: B tokens × H = 4 heads × k = 8; UltraMem: 3 tokens × E = 4 bags of topM = 8. */
export const POOL_CASES: PoolCase[] = [
  { name: 'memoryPlus dim adam', rows: 256, dim: 16, bags: 6, K: 32, optimizer: { kind: 'adam', lr: 1e-2 }, scheme: 'dim', seed: 1 },
  {
    name: 'ultramem dim adagrad+wd',
    rows: 512,
    dim: 12,
    bags: 12,
    K: 8,
    optimizer: { kind: 'adagrad', lr: 5e-2, weightDecay: 0.1 },
    scheme: 'dim',
    seed: 2,
  },
  {
    name: 'memoryPlus dim sgd deferred',
    rows: 256,
    dim: 8,
    bags: 4,
    K: 32,
    optimizer: { kind: 'sgd', lr: 0.1 },
    scheme: 'dim',
    deferred: true,
    seed: 3,
  },
  { name: 'memoryPlus row adam', rows: 256, dim: 16, bags: 6, K: 32, optimizer: { kind: 'adam', lr: 1e-2 }, scheme: 'row', seed: 4 },
  {
    name: 'ultramem row rowwise-adam+row clip',
    rows: 510,
    dim: 12,
    bags: 12,
    K: 8,
    optimizer: { kind: 'adam', lr: 1e-2, secondMoment: 'row', clip: { mode: 'row', maxNorm: 0.05 } },
    scheme: 'row',
    seed: 5,
  },
];

/** The global batch of call `call` (all ranks' bags, rank-major): ids with padding and repeats. */
export function globalBatch(c: PoolCase, P: number, call: number): { ids: Int32Array; w: Float32Array; gOut: Float32Array } {
  const rand = mulberry32(c.seed * 1000 + call);
  const n = P * c.bags * c.K;
  const ids = new Int32Array(n);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rand();
    ids[i] = u < 0.05 ? -1 : u < 0.25 ? Math.floor(rand() * 8) : Math.floor(rand() * c.rows); // −1, hot rows, uniform
    w[i] = rand() * 2 - 1;
  }
  const gOut = Float32Array.from({ length: P * c.bags * c.dim }, () => rand() * 2 - 1);
  return { ids, w, gOut };
}

/** Rank r's part of a global batch. */
export function rankSlice(c: PoolCase, r: number, g: { ids: Int32Array; w: Float32Array; gOut: Float32Array }) {
  const e = c.bags * c.K;
  return {
    ids: g.ids.slice(r * e, (r + 1) * e),
    w: g.w.slice(r * e, (r + 1) * e),
    gOut: g.gOut.slice(r * c.bags * c.dim, (r + 1) * c.bags * c.dim),
  };
}
