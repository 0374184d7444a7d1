/**
 * MemoryLayer configuration: validated once, at the edge, with zod; typed inside.
 * Defaults follow "Memory Layers at Scale" (Berges et al. 2024) and XLM's PKM.
 */
import { parseConfig } from '@mnemo/core';
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const probability = z.number().min(0).lt(1);

export const memoryLayerConfigSchema = z
  .object({
    /** model width D: the layer's input and output size */
    inputDim: positiveInt,
    /** n sub-keys per half; N = n² memory slots */
    numKeys: positiveInt.max(46340),
    /** H memory heads (each with its own sub-keys and query slice) */
    heads: positiveInt.default(4),
    /** k slots read per head */
    topK: positiveInt.default(32),
    /** dk: query/key width per head (even: two halves) */
    keyDim: positiveInt.default(256),
    /** dv: value width; default = inputDim */
    valueDim: positiveInt.optional(),
    /** none | layernorm (per query half, XLM) | qknorm (L2-normalise queries and keys, Meta) */
    queryNorm: z.enum(['none', 'layernorm', 'qknorm']).default('qknorm'),
    /** pooling weights from the top-k scores: softmax (PKM/Meta) | none (raw, UltraMem) | relu */
    scoreFn: z.enum(['softmax', 'none', 'relu']).default('softmax'),
    /** none: y = W_o m (PKM) | silu: y = W2 (m ⊙ silu(W1 x + b1)) + b2 (Memory+) */
    gating: z.enum(['none', 'silu']).default('silu'),
    /** sub-key init: meta U(±1/√dk) | xlm U(±1/√(dk/2)) */
    keyInit: z.enum(['meta', 'xlm']).default('meta'),
    inputDropout: probability.default(0),
    queryDropout: probability.default(0),
    valueDropout: probability.default(0),
    /** seed of every initialiser of this layer */
    seed: z.number().int().default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.keyDim % 2 !== 0) {
      ctx.addIssue({ code: 'custom', path: ['keyDim'], message: `must be even (two halves), got ${c.keyDim}` });
    }
    if (c.topK > c.numKeys) {
      ctx.addIssue({
        code: 'custom',
        path: ['topK'],
        message: `must be ≤ numKeys (${c.numKeys}): a head picks its k best among n sub-keys per half`,
      });
    }
  });

export type MemoryLayerConfigInput = z.input<typeof memoryLayerConfigSchema>;
export type MemoryLayerConfig = z.output<typeof memoryLayerConfigSchema> & { valueDim: number };

/** Validate a user config; throws ConfigError naming the bad field. */
export function parseMemoryLayerConfig(input: unknown, prefix = ''): MemoryLayerConfig {
  const c = parseConfig(memoryLayerConfigSchema, input, prefix);
  return { ...c, valueDim: c.valueDim ?? c.inputDim };
}
