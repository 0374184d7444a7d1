/**
 * Bytes each rank sends per memory-layer call (forward + backward) under each sharding scheme,
 * and the choice (docs/design.md §5.3). B tokens per rank, H heads × k rows per token (K = H·k
 * entries), dv columns, P ranks; int32 ids, fp32 weights and activations.
 *
 *   dim (§5.1): 12·B·K·(P−1) + 8·B·dv·(P−1)/P
 *       all-gather ids+w 8·B·K·(P−1); all-to-all out and gOut 4·B·dv·(P−1)/P each; reduce-scatter gw 4·B·K·(P−1)
 *   row (§5.2, as built): 16·B·K·(P−1)/P + 8·B·dv·ρ,   ρ = (P−1)·(1 − (1 − 1/P)^K)
 *       entries out 12 bytes (position, local row, weight; §5.2 counts 8: the built version also
 *       sends the position), gw back 4; partial bags and gOut 4·dv per (token, remote owner)
 * Both hold N·dv/P values (+ optimizer state) per rank. Small per-call headers (counts) are not
 * counted. Step time = bytes / link bandwidth + collectives · latency (`stepTime`).
 */
import { ConfigError } from '@mnemo/core';

export interface CostInput {
  B: number;
  H: number;
  k: number;
  dv: number;
  P: number;
}

export interface SchemeCost {
  /** bytes this rank sends per forward + backward */
  bytes: number;
  forwardBytes: number;
  backwardBytes: number;
  /** collectives per forward + backward (latency terms) */
  collectives: number;
}

export interface CostReport {
  dim: SchemeCost;
  row: SchemeCost;
  /** expected remote owners per token under row sharding */
  rho: number;
  choice: 'dim' | 'row';
  reason: string;
}

function check(field: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(field, `must be an integer ≥ ${min}, got ${v}`);
  return v;
}

export function costModel(input: CostInput): CostReport {
  const B = check('B', input.B, 1);
  const K = check('H', input.H, 1) * check('k', input.k, 1);
  const dv = check('dv', input.dv, 1);
  const P = check('P', input.P, 1);
  const rho = (P - 1) * (1 - (1 - 1 / P) ** K);
  const dim: SchemeCost = {
    forwardBytes: 8 * B * K * (P - 1) + (4 * B * dv * (P - 1)) / P,
    backwardBytes: (4 * B * dv * (P - 1)) / P + 4 * B * K * (P - 1),
    bytes: 0,
    collectives: 5, // all-gather ids, all-gather w, all-to-all out | all-to-all gOut, reduce-scatter gw
  };
  dim.bytes = dim.forwardBytes + dim.backwardBytes;
  const row: SchemeCost = {
    forwardBytes: (12 * B * K * (P - 1)) / P + 4 * B * dv * rho,
    backwardBytes: 4 * B * dv * rho + (4 * B * K * (P - 1)) / P,
    bytes: 0,
    collectives: 6, // dims, pairs, weights, partial bags | gOut, gw
  };
  row.bytes = row.forwardBytes + row.backwardBytes;
  if (P === 1) return { dim, row, rho, choice: 'dim', reason: 'P = 1: nothing moves; dim is the default' };
  const dimWins = dim.bytes <= row.bytes;
  const ratio = dimWins ? row.bytes / Math.max(dim.bytes, 1) : dim.bytes / row.bytes;
  const why = `H·k = ${K}, dv = ${dv}, P = ${P}: dim moves ${fmt(dim.bytes)}, row ${fmt(row.bytes)} per rank per call (ρ = ${rho.toFixed(2)} remote owners per token)`;
  return {
    dim,
    row,
    rho,
    choice: dimWins ? 'dim' : 'row',
    reason: `${dimWins ? 'dim' : 'row'} moves ${ratio.toFixed(2)}× fewer bytes — ${why}${dimWins ? '' : '; row also keeps row clip and row-wise Adam'}`,
  };
}

export interface LinkFigures {
  /** bytes per second one rank can send */
  bandwidth: number;
  /** seconds per collective */
  latency: number;
}

/** Communication seconds per call of a scheme on a link (bytes / bandwidth + collectives · latency). */
export function stepTime(cost: SchemeCost, link: LinkFigures): number {
  return cost.bytes / link.bandwidth + cost.collectives * link.latency;
}

/** Bytes per rank of a sharded table: values (dtype bytes) + optimizer state floats per value. */
export function memoryPerRank(N: number, dv: number, P: number, opts: { valueBytes?: number; stateFloatsPerValue?: number } = {}): number {
  const vb = opts.valueBytes ?? 4;
  const sf = opts.stateFloatsPerValue ?? 2; // Adam: m, v
  return (N * dv * (vb + 4 * sf)) / P;
}

function fmt(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : b >= 1 << 10 ? `${(b / 1024).toFixed(1)} KiB` : `${b.toFixed(0)} B`;
}
