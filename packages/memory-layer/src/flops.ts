/**
 * Forward FLOPs per token of a memory layer (multiply-add = 2 FLOPs), for matched-compute baselines.
 *   query projection 2·D·H·dk, sub-key scoring 2·H·n·dk (both halves), candidates ~H·k² adds,
 *   embedding bag 2·H·k·dv, gating 2·2·D·dv (W1, W2) or 2·dv·D (Wo) or 0.
 */
import type { MemoryLayerConfig } from './config';

export function memoryLayerFlops(c: MemoryLayerConfig): number {
  const { inputDim: D, heads: H, keyDim: dk, numKeys: n, topK: k, valueDim: dv } = c;
  const query = 2 * D * H * dk;
  const scoring = 2 * H * n * dk;
  const candidates = H * k * k;
  const bag = 2 * H * k * dv;
  const out = c.gating === 'silu' ? 4 * D * dv : dv !== D ? 2 * dv * D : 0;
  return query + scoring + candidates + bag + out;
}

/** Hidden width of a two-matrix MLP D → h → D with the same forward FLOPs (2·2·D·h). */
export function matchedMlpWidth(flops: number, D: number): number {
  return Math.max(1, Math.round(flops / (4 * D)));
}
