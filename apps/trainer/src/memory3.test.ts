import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import type { MemoryKV } from '@mnemo/memory3';
import { BpeTokenizer, LanguageModel, parseModelConfig } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type TrainerConfigInput, parseTrainerConfig } from './config';
import { ReferenceMemory, tokenOverlap } from './memory3';
import { readLines, runTraining } from './train';

describe('tokenOverlap', () => {
  it('is the fraction of the reference tokens found in the chunk, counting repeats', () => {
    expect(tokenOverlap([1, 2, 3, 4], [9, 4, 3, 2, 1])).toBe(1);
    expect(tokenOverlap([1, 1, 2, 5], [1, 2, 7])).toBe(0.5);
    expect(tokenOverlap([], [1])).toBe(0);
  });
});

describe('Memory³ stage 2', () => {
  it('a chunk reads retrieved statements, never one it contains (> 90% overlap)', async () => {
    await initBackend({ log: false });
    const texts = [' The capital of Zoukra is Kemat.', ' Bravol was founded by Tisen.', ' The flag of Quaimo is green.'];
    const tok = BpeTokenizer.train(texts, { vocabSize: 300 });
    const model = new LanguageModel(
      parseModelConfig({ vocabSize: tok.vocabSize, dim: 32, layers: 2, heads: 4, kvHeads: 2, maxSeqLen: 64 }),
    );
    const refs = new ReferenceMemory(model, tok, texts, {
      fromStep: 0,
      topK: 2,
      refreshEvery: 10,
      maxOverlap: 0.9,
      chunk: 64,
      embedLayer: 0,
    });
    await refs.refresh();
    // one chunk: a paraphrase of statement 0, then statement 1 verbatim
    const window = tok.encode(` In Zoukra, the seat of power is Kemat.${texts[1]}`);
    const ext = refs.external(Int32Array.from(window), 1, window.length);
    expect(ext.chunk).toBe(64);
    const read = refs.lastTable[0]![0]!.map((id) => refs.textOf(id));
    expect(read.length).toBe(2);
    expect(read).toContain(texts[0]);
    expect(read).not.toContain(texts[1]);
    expect(refs.lastFiltered).toBe(1);
    expect(ext.get(0, 0, 0)!.k.shape[1]).toBe(16);
    refs.dispose();
    model.dispose();
  });

  it('include: a row reads the named references first (overlap-filtered, topK in all); tokens sets the keep count', async () => {
    await initBackend({ log: false });
    const texts = [' The capital of Zoukra is Kemat.', ' Bravol was founded by Tisen.', ' The flag of Quaimo is green.'];
    const tok = BpeTokenizer.train(texts, { vocabSize: 300 });
    const model = new LanguageModel(
      parseModelConfig({ vocabSize: tok.vocabSize, dim: 32, layers: 2, heads: 4, kvHeads: 2, maxSeqLen: 64 }),
    );
    const opts = { fromStep: 0, topK: 2, refreshEvery: 1, maxOverlap: 0.9, chunk: 64, embedLayer: 0, tokens: 3 };
    const refs = new ReferenceMemory(model, tok, texts, opts);
    await refs.refresh();
    const window = Int32Array.from(tok.encode(' In Zoukra, the seat of power is Kemat. In Zoukra, the seat of power is Kemat.'));
    const W = window.length;
    const two = new Int32Array(2 * W);
    two.set(window, 0);
    two.set(window, W);
    const ext = refs.external(two, 2, W, [[texts[2]!], [texts[2]!, texts[1]!, texts[0]!]]);
    const row0 = refs.lastTable[0]![0]!.map((id) => refs.textOf(id));
    const row1 = refs.lastTable[1]![0]!.map((id) => refs.textOf(id));
    expect(row0[0]).toBe(texts[2]); // forced first, then retrieval fills up to topK
    expect(row0).toHaveLength(2);
    expect(row1).toEqual([texts[2], texts[1]]); // topK caps the forced list too
    expect(ext.get(0, 0, 0)!.k.shape[1]).toBe(2 * 3); // 2 memories × 3 kept tokens
    expect(() => refs.external(two, 2, W, [[' not a reference.'], []])).toThrow(/not a reference/);
    refs.dispose();
    model.dispose();
  });

  it('withGradient: the same memories as external(), written on the tape (same loss, gradient into reference-only tokens)', async () => {
    await initBackend({ log: false });
    const texts = [' The capital of Zoukra is Kemat.', ' Bravol was founded by Tisen.', ' The flag of Quaimo is green.'];
    const tok = BpeTokenizer.train(texts, { vocabSize: 300 });
    const model = new LanguageModel(
      parseModelConfig({ vocabSize: tok.vocabSize, dim: 32, layers: 2, heads: 4, kvHeads: 2, maxSeqLen: 64 }),
    );
    const refs = new ReferenceMemory(model, tok, texts, {
      fromStep: 0,
      topK: 2,
      refreshEvery: 1,
      maxOverlap: 0.9,
      chunk: 64,
      embedLayer: 0,
    });
    await refs.refresh();
    const window = Int32Array.from(tok.encode(' In Zoukra, the seat of power is Kemat. So it is.'));
    const W = window.length;
    const two = new Int32Array(2 * W);
    two.set(window, 0);
    two.set(window, W);
    const fixed = refs.external(two, 2, W, [[texts[2]!], [texts[1]!]]); // row 0 reads 2 then 0, row 1 reads 1 then 0
    const ids = tf.tensor2d(two, [2, W], 'int32');
    const emb = model.namedVariables()['tok_emb']!;
    const run = (external: () => MemoryKV | undefined) => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, { external: external() }), [emb]);
      const out = { loss: value.dataSync()[0]!, g: grads[emb.name]!.arraySync() as number[][] };
      tf.dispose([value, grads[emb.name]!]);
      return out;
    };
    let trainable: ReturnType<ReferenceMemory['withGradient']> | undefined;
    const a = run(() => fixed);
    const b = run(() => {
      trainable = refs.withGradient();
      return trainable.external;
    });
    trainable?.dispose();
    expect(b.loss).toBeCloseTo(a.loss, 4); // the table maps to the same memories in the same order
    // a token only the references hold ("green", "Quaimo", "flag"): its embedding learns only through the written memories
    const only = [...new Set(tok.encode(texts[2]!))].filter((t) => !window.includes(t) && !tok.encode(texts[1]!).includes(t));
    expect(only.length).toBeGreaterThan(0);
    const delta = Math.hypot(...only.flatMap((t) => a.g[t]!.map((x, j) => x - b.g[t]![j]!)));
    const base = Math.hypot(...only.flatMap((t) => a.g[t]!)); // their gradient through the tied head alone
    expect(delta).toBeGreaterThan(0.1 * base);
    ids.dispose();
    refs.dispose();
    model.dispose();
  });

  it('a run trains stage 1 without memory, then reads memories (metrics), and checks its config', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'trainer-m3-'));
    const cfg: TrainerConfigInput = {
      name: 'm3',
      model: { dim: 32, layers: 2, heads: 4, kvHeads: 2, seed: 3 },
      tokenizer: { vocabSize: 300 },
      data: { maxChars: 20_000, facts: 20, factsSeed: 5 },
      train: { steps: 4, batch: 2, seqLen: 32, lr: 1e-2, warmup: 1, checkpointEvery: 100, evalEvery: 100, logEvery: 1, seed: 9 },
      eval: { maxQuestions: 2, periodicQuestions: 2, valWindows: 2, answerTokens: 2 },
      memory3: { fromStep: 2, topK: 2, chunk: 16 },
      out,
    };
    const r = await runTraining(parseTrainerConfig(cfg), { quiet: true, skipFinalEval: true });
    expect(Object.keys(r.losses).length).toBe(4);
    const lines = readLines(path.join(out, 'metrics.jsonl'));
    expect(lines.filter((m) => (m.step as number) <= 2).every((m) => m.memoriesRead === undefined)).toBe(true);
    const stage2 = lines.filter((m) => (m.step as number) > 2);
    expect(stage2.length).toBe(2);
    for (const m of stage2) expect(m.memoriesRead as number).toBeGreaterThan(0);
    expect(() => parseTrainerConfig({ ...cfg, data: { facts: 0 } })).toThrow(ConfigError);
    expect(() => parseTrainerConfig({ ...cfg, memory3: { fromStep: 4 } })).toThrow(/fromStep/);
  }, 120_000);
});
