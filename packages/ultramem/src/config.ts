/**
 * UltraMemConfig: validated once, at the edge, with zod. Defaults follow UltraMem's Table 5
 * (r = 2, h = 2 cores, E = 4, α = 0.001, τ = 0.15) and its "half value width + projection".
 */
import { parseConfig } from '@mnemo/core';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const ultraMemConfigSchema = z
  .object({
    /** model width D */
    inputDim: positiveInt,
    /** n physical keys per side: N = n² physical value rows */
    numKeys: positiveInt.max(46340),
    /** H memory heads (queries shared by head pairs under TDQKR) */
    heads: positiveInt.default(2),
    /** m rows read per head */
    topM: positiveInt.default(16),
    /** dk: query/key width per head (even: two halves) */
    keyDim: positiveInt.default(64),
    /** dv: physical value width; default D/2 (half width, projected back to D) */
    valueDim: positiveInt.optional(),
    /** how slots are scored: TDQKR (Tucker core) or plain product keys (sum of half scores) */
    scoring: z.enum(['tdqkr', 'pk']).default('tdqkr'),
    /** r: Tucker rank (TDQKR) */
    rank: positiveInt.max(8).default(2),
    /** h: Tucker cores (MCS); value columns split in h chunks (TDQKR only) */
    cores: positiveInt.max(8).default(2),
    /** E: virtual value tables (IVE); a perfect square (the key grid grows by √E per side) */
    expansion: positiveInt.max(64).default(4),
    /** TDQKR pre-selection: 'signed' (m largest and m smallest per side: exact for a rank-1 core) | 'top' (paper) */
    preselect: z.enum(['signed', 'top']).default('signed'),
    /** LayerNorm on query halves and keys */
    layerNorm: z.boolean().default(true),
    /** auxiliary loss keeping the summed core near rank 1: α/(r−1) Σ_{i≥2} max(0, λ_i − τ)²; α = 0 turns it off */
    auxAlpha: z.number().min(0).default(0.001),
    auxTau: z.number().min(0).default(0.15),
    /** seed of every initialiser (and of the IVE permutation) */
    seed: z.number().int().default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (c.keyDim % 2 !== 0) issue('keyDim', `must be even (two halves), got ${c.keyDim}`);
    const side = Math.round(Math.sqrt(c.expansion));
    if (side * side !== c.expansion) issue('expansion', `must be a perfect square (1, 4, 9, …), got ${c.expansion}`);
    const dv = c.valueDim ?? Math.max(1, Math.floor(c.inputDim / 2));
    const chunks = c.scoring === 'tdqkr' ? c.cores : 1;
    if (dv % chunks !== 0) issue('valueDim', `${dv} must be divisible by cores (${chunks}): each core pools its own column chunk`);
    const grid = side * c.numKeys;
    if (c.topM > grid) issue('topM', `must be ≤ the grid side √E·numKeys (${grid})`);
    if (grid * grid > 2 ** 31 - 1) issue('numKeys', `E·numKeys² = ${grid * grid} virtual slots exceed int32`);
  });

export type UltraMemConfigInput = z.input<typeof ultraMemConfigSchema>;
export type UltraMemConfig = z.output<typeof ultraMemConfigSchema> & { valueDim: number };

export function parseUltraMemConfig(input: unknown, prefix = ''): UltraMemConfig {
  const c = parseConfig(ultraMemConfigSchema, input, prefix);
  return { ...c, valueDim: c.valueDim ?? Math.max(1, Math.floor(c.inputDim / 2)) };
}

/** Derived sizes: grid side n' = √E·n, physical rows N = n², value column chunks, the pool's shape. */
export function ultraMemShape(c: UltraMemConfig) {
  const grid = Math.round(Math.sqrt(c.expansion)) * c.numKeys;
  const N = c.numKeys * c.numKeys;
  const chunks = c.scoring === 'tdqkr' ? c.cores : 1;
  return { grid, N, chunks, poolRows: N * chunks, poolDim: c.valueDim / chunks };
}

/**
 * Value init std of UltraMem (paper, App. A): V ~ N(0, E/(2·m·H·L)), so that the layer's output
 * variance matches an MLP's 1/(2L) (L: the model's blocks).
 */
export function ultraMemValueStd(c: UltraMemConfig, layers: number): number {
  return Math.sqrt(c.expansion / (2 * c.topM * c.heads * layers));
}
