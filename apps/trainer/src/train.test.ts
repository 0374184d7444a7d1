import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError, ConfigError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { loadBackgroundReads } from '@mnemo/memory-layer';
import { BACKGROUND_READS_FILE, DEFAULT_CHAT_TEMPLATE, LanguageModel, parseModelConfig, resolveCheckpointDir } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type TrainerConfigInput, parseTrainerConfig } from './config';
import { readJsonlTexts } from './data/corpus';
import { generateFacts } from './data/facts';
import { readQaFile } from './data/qa';
import { runTraining, sequencesLoss } from './train';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'trainer-'));

const tiny = (out: string): TrainerConfigInput => ({
  name: 'tiny',
  model: {
    dim: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    ffn: ['dense', 'memoryPlus'],
    memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16, valueLr: 1e-2 },
    seed: 3,
  },
  tokenizer: { vocabSize: 320 },
  data: { maxChars: 20_000, facts: 40, factsSeed: 5 },
  train: { steps: 6, batch: 4, seqLen: 16, lr: 1e-2, warmup: 2, checkpointEvery: 3, evalEvery: 100, logEvery: 1, seed: 9 },
  eval: { maxQuestions: 5, periodicQuestions: 5, valWindows: 4, answerTokens: 3 },
  out,
});

describe('trainer', () => {
  it('a run stopped after its step-3 checkpoint and resumed matches the uninterrupted run step for step', async () => {
    const full = await runTraining(parseTrainerConfig(tiny(tmp())), { quiet: true, skipFinalEval: true });
    const dir = tmp();
    const cfg = parseTrainerConfig(tiny(dir));
    const first = await runTraining(cfg, { quiet: true, stopAfter: 3 });
    expect(first.stoppedAt).toBe(3);
    const rest = await runTraining(cfg, { quiet: true, resume: path.join(dir, 'checkpoint'), skipFinalEval: true });
    expect(Object.keys(rest.losses).map(Number)).toEqual([4, 5, 6]);
    for (const s of [1, 2, 3]) expect(first.losses[s]).toBe(full.losses[s]);
    for (const s of [4, 5, 6]) expect(Math.abs(rest.losses[s]! - full.losses[s]!)).toBeLessThan(1e-6);
    // training did something: the loss moved
    expect(full.losses[6]).not.toBe(full.losses[1]);
  }, 120_000);

  it('refuses a truncated checkpoint', async () => {
    const dir = tmp();
    const cfg = parseTrainerConfig({ ...tiny(dir), train: { ...tiny(dir).train, steps: 3 } });
    await runTraining(cfg, { quiet: true, skipFinalEval: true });
    // the checkpoint carries the chat template mnemo-serve renders /v1/chat/completions with
    const meta = JSON.parse(readFileSync(path.join(dir, 'checkpoint', 'config.json'), 'utf8'));
    expect(meta.extra.chat_template).toEqual(DEFAULT_CHAT_TEMPLATE);
    // ... and the background reads mnemo-train teach and /v1/memory/teach rank slots against
    const bg = loadBackgroundReads(path.join(resolveCheckpointDir(path.join(dir, 'checkpoint')), BACKGROUND_READS_FILE));
    expect(bg.slots).toBe(256);
    expect(bg.tokens).toBeGreaterThan(0);
    expect(bg.reads).toBe(bg.tokens * 2 * 4); // every token reads heads × topK slots in the one memory block
    // a different model config than the checkpoint's is refused, naming the field
    const other = parseTrainerConfig({ ...tiny(dir), model: { ...tiny(dir).model, seed: 4 }, train: { ...tiny(dir).train, steps: 3 } });
    await expect(runTraining(other, { quiet: true, resume: path.join(dir, 'checkpoint') })).rejects.toThrow(
      /^model: differs from the checkpoint/,
    );
    const f = path.join(dir, 'checkpoint', 'model.safetensors');
    truncateSync(f, statSync(f).size - 10);
    await expect(runTraining(cfg, { quiet: true, resume: path.join(dir, 'checkpoint') })).rejects.toThrow(CheckpointError);
  }, 60_000);

  it('config errors name the field', () => {
    const base = tiny('x');
    expect(() => parseTrainerConfig({ ...base, train: { ...base.train, lr: 'fast' } })).toThrow(/train\.lr/);
    expect(() => parseTrainerConfig({ ...base, train: { ...base.train, steps: 0 } })).toThrow(/train\.steps/);
    expect(() => parseTrainerConfig({ ...base, model: { ...base.model, heads: 3 } })).toThrow(/model\.(heads|dim)/);
    expect(() => parseTrainerConfig({ ...base, model: { ...base.model, memory: { topK: 99, numKeys: 16 } } })).toThrow(
      /model\.memory\.topK/,
    );
    expect(() => parseTrainerConfig({ ...base, extra: 1 })).toThrow(ConfigError);
  });

  it('facts are deterministic per seed; JSONL errors name file, line and field', () => {
    const a = generateFacts({ count: 30, seed: 1 });
    const b = generateFacts({ count: 30, seed: 1 });
    const c = generateFacts({ count: 30, seed: 2 });
    expect(a).toEqual(b);
    expect(a.trainText).not.toEqual(c.trainText);
    expect(a.qa).toHaveLength(30);
    for (const q of a.qa.slice(0, 8)) expect(a.trainText).toContain(`${q.prompt} ${q.answer}`);
    const unseen = generateFacts({ count: 30, seed: 1, mode: 'unseen' });
    for (const q of unseen.qa) expect(unseen.trainText).not.toContain(`${q.prompt} ${q.answer}`);
    const dir = tmp();
    const qa = path.join(dir, 'qa.jsonl');
    writeFileSync(qa, '{"prompt":"The capital of X is","answer":"Y"}\n{"prompt":"Q","answer":3}\n');
    expect(() => readQaFile(qa)).toThrow(/qa\.jsonl:2: answer/);
    const texts = path.join(dir, 't.jsonl');
    writeFileSync(texts, '{"text":"a"}\n\n{"txt":"b"}\n');
    expect(() => readJsonlTexts(texts)).toThrow(/t\.jsonl:3: text/);
  });
});

describe('sequencesLoss (loss on fact text)', () => {
  it('scores each sequence on its own: the token-weighted mean of the single-sequence losses, whatever the batching', async () => {
    await initBackend({ log: false });
    const model = new LanguageModel(parseModelConfig({ vocabSize: 40, dim: 16, layers: 1, heads: 2, maxSeqLen: 16, seed: 3 }));
    const seqs = [[1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 11], [1], [12, 13, 14, 15, 16, 17, 18]].map((a) => Int32Array.from(a));
    const one = (s: Int32Array) => tf.tidy(() => model.loss(tf.tensor2d(s, [1, s.length], 'int32')).dataSync()[0]!);
    const scored = seqs.filter((s) => s.length >= 2); // a 1-token sequence predicts nothing
    const expected = scored.reduce((a, s) => a + one(s) * (s.length - 1), 0) / scored.reduce((a, s) => a + s.length - 1, 0);
    expect(sequencesLoss(model, seqs)).toBeCloseTo(expected, 5);
    // a context before a sequence would change its loss: scoring them joined differs
    const joined = Int32Array.from(scored.slice(0, 3).flatMap((s) => [...s])); // 11 tokens
    const expected3 = sequencesLoss(model, scored.slice(0, 3));
    expect(Math.abs(sequencesLoss(model, [joined]) - expected3)).toBeGreaterThan(1e-4);
    model.dispose();
  });
});
