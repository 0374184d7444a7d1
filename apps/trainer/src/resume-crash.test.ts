/**
 * Training that crashes while it writes a checkpoint, and resumes: at EVERY step of the write
 * sequence (CHECKPOINT_WRITE_STEPS, not a random kill) the newest complete checkpoint loads, the
 * resumed run reproduces the uninterrupted losses, and its next save leaves nothing behind. Plus
 * what a checkpoint's step may be, and metrics.jsonl after a resume.
 */
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError } from '@mnemo/core';
import { CHECKPOINT_WRITE_STEPS, type CheckpointWriteStep } from '@mnemo/model';
import { describe, expect, it } from 'vitest';
import { type TrainerConfigInput, parseTrainerConfig } from './config';
import { readLines, runTraining } from './train';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'trainer-crash-'));

const small = (out: string, steps = 4): TrainerConfigInput => ({
  name: 'crash',
  model: {
    dim: 16,
    layers: 2,
    heads: 2,
    kvHeads: 1,
    ffn: ['dense', 'memoryPlus'],
    memory: { numKeys: 8, heads: 1, topK: 2, keyDim: 8, valueLr: 1e-2 },
    seed: 3,
  },
  tokenizer: { vocabSize: 280 },
  data: { maxChars: 6_000, facts: 10, factsSeed: 5 },
  train: { steps, batch: 2, seqLen: 8, lr: 1e-2, warmup: 1, checkpointEvery: 2, evalEvery: 100, logEvery: 1, seed: 9 },
  eval: { maxQuestions: 2, periodicQuestions: 2, valWindows: 2, answerTokens: 2 },
  out,
});

class Crash extends Error {}

describe('a crash while writing a checkpoint, then resume', () => {
  it('at every step of the write sequence: the newest complete checkpoint resumes to the uninterrupted losses; nothing is left behind', async () => {
    const full = await runTraining(parseTrainerConfig(small(tmp())), { quiet: true, skipFinalEval: true });
    expect(new Set(Object.values(full.losses)).size).toBe(4);
    const swap = CHECKPOINT_WRITE_STEPS.indexOf('swap');
    // legacy-aside happens only over a directory written before the pointer (model tests cover it)
    for (const step of CHECKPOINT_WRITE_STEPS.filter((s) => s !== 'legacy-aside')) {
      const dir = tmp();
      const cfg = parseTrainerConfig(small(dir));
      let saves = 0;
      const crashAt = (s: CheckpointWriteStep) => {
        if (s === 'tmp-dir') saves++;
        if (saves === 2 && s === step) throw new Crash(step); // during the step-4 save
      };
      await expect(runTraining(cfg, { quiet: true, skipFinalEval: true, checkpoint: { beforeStep: crashAt } })).rejects.toThrow(Crash);
      const ckpt = path.join(dir, 'checkpoint');
      const from = CHECKPOINT_WRITE_STEPS.indexOf(step) > swap ? 4 : 2;
      const rest = await runTraining(cfg, { quiet: true, resume: ckpt, skipFinalEval: true });
      const resumed = Object.keys(rest.losses).map(Number);
      expect([step, resumed]).toEqual([step, from === 4 ? [] : [3, 4]]);
      for (const s of resumed) expect(Math.abs(rest.losses[s]! - full.losses[s]!)).toBeLessThan(1e-6);
      const left = readdirSync(dir)
        .filter((f) => f.startsWith('checkpoint'))
        .sort();
      if (from === 2) {
        // the resumed run saved step 4: only the pointer and its version remain
        expect([step, left.length]).toEqual([step, 2]);
        expect(readlinkSync(ckpt)).toBe(left[1]);
      }
      // metrics.jsonl: every step once, in order, whatever was logged before the crash
      const steps = readLines(path.join(dir, 'metrics.jsonl')).map((m) => m.step);
      expect([step, steps]).toEqual([step, [1, 2, 3, 4]]);
    }
  }, 300_000);

  it('a checkpoint step beyond the run, negative, or not a number is refused naming config.json (no stack trace, no silent exit 0)', async () => {
    const dir = tmp();
    const cfg = parseTrainerConfig(small(dir, 2));
    await runTraining(cfg, { quiet: true, skipFinalEval: true });
    const ckpt = path.join(dir, 'checkpoint');
    const file = path.join(ckpt, 'config.json');
    const original = readFileSync(file, 'utf8');
    for (const [step, msg] of [
      [1e12, /config\.json: extra\.step is 1000000000000, beyond this run's train\.steps 2: nothing would be trained/],
      [3, /extra\.step is 3, beyond this run's train\.steps 2/],
      [-5, /config\.json: extra\.step must be a whole number of steps ≥ 0, got -5/],
      [1.5, /extra\.step must be a whole number/],
      ['2', /extra\.step must be a whole number of steps ≥ 0, got "2"/],
      [null, /got null/],
    ] as const) {
      const meta = JSON.parse(original);
      meta.extra.step = step;
      writeFileSync(file, JSON.stringify(meta));
      const err = await runTraining(cfg, { quiet: true, resume: ckpt, skipFinalEval: true }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CheckpointError); // mnemo-train prints a MnemoError's message, not its stack
      expect((err as Error).message).toMatch(msg);
    }
    writeFileSync(file, original);
    // a finished run resumes to nothing (its step is train.steps), as before
    expect(Object.keys((await runTraining(cfg, { quiet: true, resume: ckpt, skipFinalEval: true })).losses)).toEqual([]);
  }, 120_000);

  it('metrics.jsonl is cut back to the resumed step: steps logged after the checkpoint are not repeated', async () => {
    const dir = tmp();
    const cfg = parseTrainerConfig({ ...small(dir, 6), train: { ...small(dir, 6).train, checkpointEvery: 3 } });
    // a run killed after step 5 whose last checkpoint is step 3
    await runTraining(cfg, { quiet: true, stopAfter: 5 });
    expect(readLines(path.join(dir, 'metrics.jsonl')).map((m) => m.step)).toEqual([1, 2, 3, 4, 5]);
    await runTraining(cfg, { quiet: true, resume: path.join(dir, 'checkpoint') });
    const lines = readLines(path.join(dir, 'metrics.jsonl'));
    expect(lines.filter((m) => typeof m.loss === 'number').map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lines.filter((m) => m.final).map((m) => m.step)).toEqual([6]);
  }, 120_000);
});
