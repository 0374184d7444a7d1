/**
 * Presets: four models of about equal forward FLOPs per token (modelCounts prints them), small
 * enough to train in minutes on 2 CPU cores, on synthetic facts with Moby Dick filler.
 *   dense       4 blocks, SwiGLU hidden 4·D
 *   moe         4 blocks, 4 experts of hidden 2·D, top-2 (active FLOPs = one 4·D FFN)
 *   memory      block 2's FFN → a PKM memory layer (N = 128² = 16,384 slots)
 *   memoryPlus  block 2's FFN → a Memory+ layer (SiLU gating) over the same pool size
 */
import { ConfigError } from '@mnemo/kernels';
import type { FfnKind } from '@mnemo/model';
import { type TrainerConfig, parseTrainerConfig } from './config';

export const PRESETS = ['dense', 'moe', 'memory', 'memoryPlus'] as const;
export type PresetName = (typeof PRESETS)[number];

export function preset(name: string, overrides: { steps?: number; out?: string; facts?: number; fillerRatio?: number } = {}): TrainerConfig {
  if (!(PRESETS as readonly string[]).includes(name)) {
    throw new ConfigError('--preset', `unknown preset '${name}'; choose one of ${PRESETS.join(', ')}`);
  }
  const D = 128;
  const layers = 4;
  const ffn: FfnKind[] = ['dense', 'dense', 'dense', 'dense'];
  if (name === 'moe') ffn.fill('moe');
  if (name === 'memory') ffn[2] = 'memory';
  if (name === 'memoryPlus') ffn[2] = 'memoryPlus';
  return parseTrainerConfig({
    name,
    model: {
      dim: D,
      layers,
      heads: 4,
      kvHeads: 2,
      ffnHidden: 4 * D,
      ffn,
      moe: { experts: 4, hidden: 2 * D },
      // value LR: Memory+ 2e-3 (best of the sweep in docs/benchmarks/trainer-sweep-memory-plus-value-lr.md), PKM 2e-2
      memory: { numKeys: 128, heads: 4, topK: 16, keyDim: 64, queryNorm: 'qknorm', valueLr: name === 'memoryPlus' ? 2e-3 : 2e-2, valueOptimizer: 'adam' },
      seed: 7,
    },
    tokenizer: { vocabSize: 1024 },
    data: { facts: overrides.facts ?? 500, factsSeed: 3, fillerRatio: overrides.fillerRatio ?? 0, maxChars: 300_000 },
    train: { steps: overrides.steps ?? 400, batch: 16, seqLen: 64, lr: 3e-3, warmup: 20, evalEvery: 200, checkpointEvery: 200, seed: 11 },
    eval: { maxQuestions: 300, periodicQuestions: 40 },
    out: overrides.out ?? `runs/${name}`,
  });
}
