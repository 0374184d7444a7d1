/**
 * Forward FLOPs per token and dense parameters of an UltraMem layer (multiply-add = 2 FLOPs).
 *   query 2·D·Hq·dk (TDQKR, Hq = ⌈H/2⌉) or 2·D·H·dk (+ bias, product keys)
 *   scoring: TDQKR 2·H·n'·r·dk (both halves, r ranks) + 4·H·n'·r (rank-1 projections);
 *            product keys 2·H·n'·dk + H·k² candidate adds
 *   rescoring (TDQKR): Σ_cores H·(2·M·r² + 2·M²·r), M candidates per side
 *   bag 2·H·m·dv, projection 2·E·dv·D (when not the identity)
 */
import { type UltraMemConfig, ultraMemShape } from './config';

export function ultraMemFlops(c: UltraMemConfig): number {
  const { inputDim: D, heads: H, keyDim: dk, topM: m, rank: r, valueDim: dv, expansion: E } = c;
  const { grid } = ultraMemShape(c);
  const out = hasProjection(c) ? 2 * E * dv * D : 0;
  const bag = 2 * H * m * dv;
  if (c.scoring === 'pk') return 2 * D * H * dk + 2 * H * grid * dk + H * m * m + bag + out;
  const Hq = Math.ceil(H / 2);
  const M = c.preselect === 'signed' ? Math.min(grid, 2 * m) : Math.min(grid, m);
  const rescoring = c.cores * H * (2 * M * r * r + 2 * M * M * r);
  return 2 * D * Hq * dk + 2 * H * grid * r * dk + 4 * H * grid * r + rescoring + bag + out;
}

export function ultraMemParams(c: UltraMemConfig): number {
  const { inputDim: D, heads: H, keyDim: dk, rank: r, valueDim: dv, expansion: E } = c;
  const { grid } = ultraMemShape(c);
  const out = hasProjection(c) ? E * dv * D : 0;
  if (c.scoring === 'pk') return D * H * dk + H * dk + H * grid * dk + out;
  return D * Math.ceil(H / 2) * dk + H * 2 * grid * r * (dk / 2) + c.cores * H * r * r + out;
}

/** The readout projects [E·dv → D] unless it is the identity (E = 1, dv = D). */
export function hasProjection(c: UltraMemConfig): boolean {
  return !(c.expansion === 1 && c.valueDim === c.inputDim);
}
