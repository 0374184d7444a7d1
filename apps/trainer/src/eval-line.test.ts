import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import { describe, expect, it, vi } from 'vitest';
import { parseTrainerConfig } from './config';
import { evalLine } from './eval-line';
import { runTraining } from './train';

describe('periodic evaluation lines', () => {
  it('formats step, val loss and recall when measured', () => {
    expect(evalLine('r', 20, 60, { valLoss: 5.4321 })).toBe('[r] eval @ step 20/60: val loss 5.432');
    expect(evalLine('r', 20, 60, { valLoss: 5.4321, factLoss: 4, recall: 0.25, questions: 8 })).toBe(
      '[r] eval @ step 20/60: val loss 5.432 · fact loss 4.000 · recall 25.0% of 8',
    );
  });

  it('a run prints one line per periodic evaluation on stderr', async () => {
    await initBackend();
    const out = mkdtempSync(path.join(os.tmpdir(), 'wt-obs-evalline-'));
    const cfg = parseTrainerConfig({
      name: 'evl',
      model: { dim: 16, layers: 1, heads: 2, kvHeads: 1, ffn: ['dense'], seed: 3 },
      tokenizer: { vocabSize: 300 },
      data: { maxChars: 8_000, facts: 10, factsSeed: 5 },
      train: { steps: 7, batch: 2, seqLen: 8, lr: 1e-2, warmup: 1, checkpointEvery: 100, evalEvery: 2, logEvery: 100, seed: 9 },
      eval: { maxQuestions: 2, periodicQuestions: 2, valWindows: 2, answerTokens: 2 },
      out,
    });
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      lines.push(String(s));
      return true;
    });
    try {
      await runTraining(cfg, { skipFinalEval: true });
    } finally {
      spy.mockRestore();
    }
    const evals = lines
      .join('')
      .split('\n')
      .filter((l) => l.includes('eval @ step'));
    expect(evals.map((l) => /step (\d+)\/7/.exec(l)![1])).toEqual(['2', '4', '6']);
    for (const l of evals) expect(l).toMatch(/val loss \d+\.\d{3} · fact loss \d+\.\d{3} · recall \d+\.\d% of 2/);
  }, 120_000);
});
