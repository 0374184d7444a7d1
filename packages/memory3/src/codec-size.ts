/**
 * Bytes per reference (docs/design.md §4.3), as functions of the model's shape: what the
 * compression table of the bench reports.
 *
 *   full KV    blocks · heads · 128 · 2 · d_h · bytes     every block, every head, every token
 *   sparse     L_mem · H_kv · 8 · 2 · d_h · bytes          Memory³'s memory (tokens = 8)
 *   pq         L_mem · H_kv · 8 · (m_K + m_V)              one byte per subspace
 *
 * "heads" is H_kv for a GQA cache; the paper's ≈160× counts all H attention heads (40 at its size:
 * 2 (half the blocks) × 5 (H / H_kv) × 16 (128 / 8 tokens)); with GQA the same rules give 32×.
 */
import type { MemoryShape } from './types';

export interface ModelKvShape {
  /** transformer blocks (all of them hold a KV cache) */
  blocks: number;
  /** heads counted in the full cache: H_kv (GQA) or H (the paper's count) */
  heads: number;
  headDim: number;
  /** tokens per reference (128) */
  tokens?: number;
}

/** a full KV cache of one reference */
export function fullKvBytes(m: ModelKvShape, bytesPerValue = 2): number {
  return m.blocks * m.heads * (m.tokens ?? 128) * 2 * m.headDim * bytesPerValue;
}

/** one sparse memory, uncompressed */
export function sparseKvBytes(s: MemoryShape, bytesPerValue = 2): number {
  return s.layers * s.kvHeads * s.tokens * 2 * s.headDim * bytesPerValue;
}

/** one sparse memory under a product quantiser of m_K / m_V bytes per key / value vector */
export function pqKvBytes(s: MemoryShape, keySubspaces: number, valueSubspaces = keySubspaces): number {
  return s.layers * s.kvHeads * s.tokens * (keySubspaces + valueSubspaces);
}
