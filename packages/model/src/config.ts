/**
 * ModelConfig: a decoder-only LM whose per-block FFN slot is one of the registry's kinds (dense,
 * MoE, memory (PKM), Memory+; ffn-kinds.ts), plus optional skip-layer memories (docs/design.md
 * §2, §3). Validated once, at the edge, with zod; errors name the field.
 */
import { ConfigError, zodToConfigError } from '@mnemo/core';
import { z } from 'zod';
import { FFN_KINDS, FFN_REGISTRY, type FfnKind, MEMORY_KINDS } from './ffn-kinds';

export { FFN_KINDS, type FfnKind };

const positiveInt = z.number().int().positive();

const moeSchema = z
  .object({
    /** E experts per MoE block */
    experts: positiveInt.min(2).default(4),
    /** experts per token (GShard top-2) */
    topK: z.literal(2).default(2),
    /** SwiGLU hidden width of one expert; default ffnHidden */
    hidden: positiveInt.optional(),
    /** weight of the load-balancing loss E·Σ f_e·P_e (Switch/GShard) */
    balanceCoef: z.number().min(0).default(0.01),
  })
  .strict();

/** A skip-layer memory: reads block `read`'s normalised FFN input, adds its output after block `write` > read. */
const skipSchema = z
  .object({
    read: z.number().int().min(0),
    write: z.number().int().min(0),
    /** a memory kind of the registry; it reads the model's shared pool */
    kind: z.enum(MEMORY_KINDS),
  })
  .strict();

const memorySchema = z
  .object({
    /** n sub-keys per half; N = n² slots in the shared value pool */
    numKeys: positiveInt.max(46340).default(32),
    /** H memory heads */
    heads: positiveInt.default(4),
    /** k slots read per head */
    topK: positiveInt.default(8),
    /** dk: query/key width per head (even) */
    keyDim: positiveInt.default(64),
    /** dv: value width; default dim */
    valueDim: positiveInt.optional(),
    queryNorm: z.enum(['none', 'layernorm', 'qknorm']).default('qknorm'),
    /** pooling weights of PKM / Memory+ layers: softmax (default) | none (raw scores, UltraMem) | relu */
    scoreFn: z.enum(['softmax', 'none', 'relu']).optional(),
    /** learning rate of the pool's sparse value optimizer (XLM: constant 1e-3) */
    valueLr: z.number().positive().default(1e-3),
    valueOptimizer: z.enum(['adam', 'sgd', 'adagrad']).default('adam'),
    /**
     * value-LR decay (UltraMem): the value LR starts at this multiple of valueLr and falls
     * linearly to 1× over training (the trainer applies it); absent = constant
     */
    valueLrDecay: z.number().min(1).optional(),
  })
  .strict();

/**
 * UltraMem memories (kind `ultramem`): what @mnemo/ultramem's config takes besides the model
 * width, the pool's numKeys and the seed. Absent = its defaults (TDQKR r 2, 2 cores, E 4, dv = D/2).
 */
const ultramemSchema = z
  .object({
    heads: positiveInt.optional(),
    topM: positiveInt.optional(),
    keyDim: positiveInt.optional(),
    valueDim: positiveInt.optional(),
    scoring: z.enum(['tdqkr', 'pk']).optional(),
    rank: positiveInt.optional(),
    cores: positiveInt.optional(),
    expansion: positiveInt.optional(),
    preselect: z.enum(['signed', 'top']).optional(),
    layerNorm: z.boolean().optional(),
    auxAlpha: z.number().min(0).optional(),
    auxTau: z.number().min(0).optional(),
  })
  .strict();

export const modelConfigSchema = z
  .object({
    vocabSize: positiveInt,
    /** D: model width */
    dim: positiveInt,
    /** L: transformer blocks */
    layers: positiveInt,
    /** query heads */
    heads: positiveInt,
    /** key/value heads (GQA); default heads (plain multi-head attention) */
    kvHeads: positiveInt.optional(),
    maxSeqLen: positiveInt.default(256),
    ropeTheta: z.number().positive().default(10000),
    normEps: z.number().positive().default(1e-5),
    /** SwiGLU hidden width of dense blocks; default 4·dim */
    ffnHidden: positiveInt.optional(),
    tieEmbeddings: z.boolean().default(true),
    /** one FFN kind per block; default all dense (see ffnPlan) */
    ffn: z.array(z.enum(FFN_KINDS)).optional(),
    /** skip-layer memories (UltraMem wiring), built after the blocks; none by default */
    skips: z.array(skipSchema).optional(),
    moe: moeSchema.default({ experts: 4, topK: 2, balanceCoef: 0.01 }),
    memory: memorySchema.default({
      numKeys: 32,
      heads: 4,
      topK: 8,
      keyDim: 64,
      queryNorm: 'qknorm',
      valueLr: 1e-3,
      valueOptimizer: 'adam',
    }),
    /** UltraMem memories' settings (kind `ultramem`); the value pool's are in `memory` */
    ultramem: ultramemSchema.optional(),
    /** seed of every initialiser (two models from one config are identical) */
    seed: z.number().int().default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const kvHeads = c.kvHeads ?? c.heads;
    if (c.dim % c.heads !== 0) issue(['dim'], `must be divisible by heads (${c.dim} % ${c.heads} != 0)`);
    else if ((c.dim / c.heads) % 2 !== 0) issue(['dim'], `dim / heads = ${c.dim / c.heads} must be even for RoPE (rotates pairs)`);
    if (c.heads % kvHeads !== 0) issue(['heads'], `must be divisible by kvHeads (${c.heads} % ${kvHeads} != 0)`);
    if (c.ffn && c.ffn.length !== c.layers) {
      issue(['ffn'], `length ${c.ffn.length} != layers ${c.layers}; give one kind per block (ffnPlan builds it)`);
    }
    (c.skips ?? []).forEach((s, i) => {
      if (!(s.read < s.write && s.write < c.layers)) {
        issue(['skips', i], `needs 0 ≤ read < write < layers (${c.layers}), got ${s.read} → ${s.write}`);
      }
    });
    const m = c.memory;
    if (m.keyDim % 2 !== 0) issue(['memory', 'keyDim'], `must be even (two halves), got ${m.keyDim}`);
    if (m.topK > m.numKeys) issue(['memory', 'topK'], `must be ≤ memory.numKeys (${m.numKeys}), got ${m.topK}`);
  });

export type ModelConfigInput = z.input<typeof modelConfigSchema>;
type Parsed = z.output<typeof modelConfigSchema>;

export interface ModelConfig extends Omit<Parsed, 'kvHeads' | 'ffnHidden' | 'ffn' | 'moe'> {
  kvHeads: number;
  ffnHidden: number;
  ffn: FfnKind[];
  moe: Parsed['moe'] & { hidden: number };
}

/** Validate a user config (JSON, CLI, checkpoint); throws ConfigError naming the bad field, e.g. `memory.topK`. */
export function parseModelConfig(input: unknown): ModelConfig {
  const r = modelConfigSchema.safeParse(input);
  if (!r.success) throw zodToConfigError(r.error);
  const c = r.data;
  const ffnHidden = c.ffnHidden ?? 4 * c.dim;
  return {
    ...c,
    kvHeads: c.kvHeads ?? c.heads,
    ffnHidden,
    ffn: c.ffn ?? Array.from({ length: c.layers }, () => 'dense' as const),
    moe: { ...c.moe, hidden: c.moe.hidden ?? ffnHidden },
  };
}

/**
 * One FFN kind per block. `blocks`: which blocks get `kind` (others stay dense) — an array of
 * block indices, or a count spread over the depth like Memory+ (3 of 24 → blocks 4, 12, 20).
 * Default: the kind's `defaultBlocks` in the registry (1 middle block for `memory`, 3 spread blocks
 * for `memoryPlus`), else every block.
 */
export function ffnPlan(kind: FfnKind, layers: number, blocks?: number | number[]): FfnKind[] {
  const plan: FfnKind[] = Array.from({ length: layers }, () => 'dense');
  let idx: number[];
  if (Array.isArray(blocks)) idx = blocks;
  else {
    const count = Math.min(layers, blocks ?? FFN_REGISTRY[kind].defaultBlocks ?? layers);
    idx = spread(count, layers);
  }
  for (const i of idx) {
    if (!Number.isInteger(i) || i < 0 || i >= layers) {
      throw new ConfigError('blocks', `block ${i} is not in [0, ${layers}); give block indices of the model`);
    }
    plan[i] = kind;
  }
  return plan;
}

/** `count` distinct blocks at the centres of `count` equal slices of the depth. */
function spread(count: number, layers: number): number[] {
  if (count >= layers) return Array.from({ length: layers }, (_, i) => i);
  const out = new Set<number>();
  for (let j = 0; j < count; j++) out.add(Math.min(layers - 1, Math.round(((2 * j + 1) * layers) / (2 * count))));
  let i = 0;
  while (out.size < count) out.add(i++); // collisions (tiny depths): fill from the bottom
  return [...out].sort((a, b) => a - b);
}
