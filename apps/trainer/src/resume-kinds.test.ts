import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainerConfigInput, parseTrainerConfig } from './config';
import { runTraining } from './train';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'trainer-kinds-'));

// MoE (experts a step may leave without gradient) + a PKM memory layer whose value rows use sparse
// Adagrad: the optimizer states that exact resume has to carry besides the dense AdamW moments.
const cfg = (out: string): TrainerConfigInput => ({
  name: 'kinds',
  model: {
    dim: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    ffn: ['moe', 'memory'],
    moe: { experts: 4, hidden: 32 },
    memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16, valueLr: 5e-2, valueOptimizer: 'adagrad' },
    seed: 5,
  },
  tokenizer: { vocabSize: 300 },
  data: { maxChars: 15_000, facts: 20, factsSeed: 2 },
  train: { steps: 6, batch: 4, seqLen: 16, lr: 1e-2, warmup: 1, checkpointEvery: 2, evalEvery: 100, logEvery: 1, seed: 4 },
  eval: { maxQuestions: 3, periodicQuestions: 3, valWindows: 2, answerTokens: 2 },
  out,
});

describe('exact resume with MoE and a PKM memory layer (sparse Adagrad values)', () => {
  it('resuming from the step-4 checkpoint reproduces steps 5..6 of the uninterrupted run', async () => {
    const full = await runTraining(parseTrainerConfig(cfg(tmp())), { quiet: true, skipFinalEval: true });
    const dir = tmp();
    const c = parseTrainerConfig(cfg(dir));
    await runTraining(c, { quiet: true, stopAfter: 4 });
    const rest = await runTraining(c, { quiet: true, resume: path.join(dir, 'checkpoint'), skipFinalEval: true });
    expect(Object.keys(rest.losses).map(Number)).toEqual([5, 6]);
    for (const s of [5, 6]) expect(Math.abs(rest.losses[s]! - full.losses[s]!)).toBeLessThan(1e-6);
    // the losses move (a resume that reloaded nothing would not be caught by a constant loss)
    expect(new Set(Object.values(full.losses)).size).toBe(6);
  }, 120_000);
});
