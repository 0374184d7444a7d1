/**
 * The Memory³ writer (docs/design.md §4.2): run a reference through the model without gradient
 * and keep, in every memory-reading block and KV head, the tokens that receive the most attention.
 *
 *   input  = [prefix ("Reference:"), r_1 … r_n]        n ≤ 127: positions [0, 128)
 *   w_j    = log Σ_{query heads h of g} Σ_i exp(q_i·k_j / √dh)     all i (no causal mask), j ≥ 1
 *   keep   = the `tokens` (8) j of largest w_j, in position order  [L_mem, Hkv, 8]
 *   memory = (K after RoPE, V)[keep]                                [L_mem, 2, Hkv, 8, dh]
 *
 * The log of the paper's cheap form Σ exp(·) (same order, no overflow). References shorter than
 * 8 tokens keep all n and zero-pad the rest (positions −1; the reader reads `min(tokens, 8)`).
 * The retrieval embedding comes from the same pass (embed.ts).
 */
import { ValueError } from '@mnemo/core';
import { meanPool } from './embed';
import { type Memory3Options, type MemoryHost, REFERENCE_POSITIONS, resolveOptions } from './host';
import type { ExplicitMemory, MemoryEntry } from './types';

/**
 * Importance of each key j of one KV head: log Σ_{h ∈ group} Σ_i exp(q_h,i · k_j), q pre-scaled.
 * q [H, T, dh] (heads h = g·G + r belong to KV head g), k [Hkv, T, dh] → [Hkv, T].
 */
export function tokenImportance(q: Float32Array, k: Float32Array, heads: number, kvHeads: number, T: number, dh: number): Float64Array {
  const G = heads / kvHeads;
  const w = new Float64Array(kvHeads * T);
  const s = new Float64Array(G * T);
  for (let g = 0; g < kvHeads; g++) {
    for (let j = 0; j < T; j++) {
      const kj = (g * T + j) * dh;
      let max = Number.NEGATIVE_INFINITY;
      for (let r = 0; r < G; r++) {
        for (let i = 0; i < T; i++) {
          const qi = ((g * G + r) * T + i) * dh;
          let dot = 0;
          for (let d = 0; d < dh; d++) dot += q[qi + d]! * k[kj + d]!;
          s[r * T + i] = dot;
          if (dot > max) max = dot;
        }
      }
      let sum = 0;
      for (let x = 0; x < G * T; x++) sum += Math.exp(s[x]! - max);
      w[g * T + j] = max + Math.log(sum);
    }
  }
  return w;
}

/** The `keep` positions j ≥ `from` of largest w (ties: the earlier position), in position order. */
export function topPositions(w: Float64Array, offset: number, T: number, from: number, keep: number): number[] {
  const js = Array.from({ length: T - from }, (_, i) => i + from);
  js.sort((a, b) => w[offset + b]! - w[offset + a]! || a - b);
  return js.slice(0, keep).sort((a, b) => a - b);
}

/** One reference's memory and embedding; `tokens` are its ids without the prefix. */
export function writeMemory(host: MemoryHost, tokens: number[], opts: Memory3Options): { memory: ExplicitMemory; embedding: Float32Array } {
  const o = resolveOptions(host, opts);
  const n = tokens.length;
  if (n === 0 || n + 1 > Math.min(REFERENCE_POSITIONS, host.config.maxSeqLen))
    throw new ValueError(
      'tokens',
      `a reference has ${n} tokens; give 1..${Math.min(REFERENCE_POSITIONS, host.config.maxSeqLen) - 1} (split longer texts)`,
    );
  const { heads, kvHeads, dim } = host.config;
  const dh = dim / heads;
  const T = n + 1;
  const cap = host.captureKV([o.prefixId, ...tokens], { blocks: o.blocks, hidden: o.embedLayer });
  const M = o.tokens;
  const L = o.blocks.length;
  const kv = new Float32Array(L * 2 * kvHeads * M * dh);
  const positions = new Int32Array(L * kvHeads * M).fill(-1);
  cap.blocks.forEach((b, l) => {
    const w = tokenImportance(b.q, b.k, heads, kvHeads, T, dh);
    for (let g = 0; g < kvHeads; g++) {
      topPositions(w, g * T, T, 1, M).forEach((j, s) => {
        positions[(l * kvHeads + g) * M + s] = j;
        const src = (g * T + j) * dh;
        kv.set(b.k.subarray(src, src + dh), (((l * 2 + 0) * kvHeads + g) * M + s) * dh);
        kv.set(b.v.subarray(src, src + dh), (((l * 2 + 1) * kvHeads + g) * M + s) * dh);
      });
    }
  });
  const embedding = meanPool(cap.hidden!, T, dim, 1);
  return { memory: { shape: { layers: L, kvHeads, tokens: M, headDim: dh }, kv, positions }, embedding };
}

/** A MemoryEntry for `text` (its tokens without the prefix, at most 127). */
export function writeEntry(host: MemoryHost, text: string, tokens: number[], opts: Memory3Options): MemoryEntry {
  return { text, tokens: tokens.length, ...writeMemory(host, tokens, opts) };
}
