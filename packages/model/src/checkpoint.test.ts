import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CheckpointError, SafetensorsReader } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpointWith, saveCheckpoint } from './checkpoint';
import { generate } from './generate';
import { loadCheckpoint } from './load';
import { BpeTokenizer } from './tokenizer';
import { type ModelConfigInput, parseModelConfig } from './config';
import { LanguageModel } from './model';
import { mulberry32 } from '@mnemo/core';

/** A stand-in tokenizer with the checkpoint's interface. */
class TestTokenizer {
  constructor(readonly merges: number[]) {}
  toJSON() {
    return { kind: 'test', merges: this.merges };
  }
  static fromJSON(j: unknown): TestTokenizer {
    const o = j as { kind?: string; merges?: number[] };
    if (o?.kind !== 'test' || !Array.isArray(o.merges)) throw new Error('not a test tokenizer');
    return new TestTokenizer(o.merges);
  }
}

const cfgInput: ModelConfigInput = {
  vocabSize: 50,
  dim: 32,
  layers: 3,
  heads: 4,
  kvHeads: 2,
  maxSeqLen: 16,
  ffnHidden: 40,
  ffn: ['moe', 'memoryPlus', 'memory'],
  memory: { numKeys: 8, heads: 2, topK: 4, keyDim: 16, valueLr: 0.05 },
  moe: { experts: 3, hidden: 16 },
  seed: 4,
};

let root: string;
const load = (dir: string) => loadCheckpointWith(dir, TestTokenizer.fromJSON);
const ids = () => {
  const r = mulberry32(3);
  return tf.tensor2d(
    Array.from({ length: 3 * 12 }, () => Math.floor(r() * 50)),
    [3, 12],
    'int32',
  );
};
const logitsOf = (m: LanguageModel) => tf.tidy(() => m.forward(ids()).logits.dataSync() as Float32Array);
const train = (m: LanguageModel, steps: number) => {
  const opt = tf.train.sgd(0.05); // stateless, so only the pool's optimizer state matters for resuming
  const x = ids();
  for (let i = 0; i < steps; i++) opt.minimize(() => m.loss(x, { training: true }), false, m.trainableVariables());
  x.dispose();
  opt.dispose();
};
const allRows = (m: LanguageModel) => m.pool!.readRows(Int32Array.from({ length: m.pool!.rows }, (_, i) => i));

/** A trained model saved to a fresh directory. */
function saved(name: string, over: Partial<ModelConfigInput> = {}) {
  const model = new LanguageModel(parseModelConfig({ ...cfgInput, ...over }));
  train(model, 2);
  const dir = path.join(root, name);
  saveCheckpoint(dir, {
    model,
    tokenizer: new TestTokenizer([1, 2, 3]),
    extra: { step: 2, note: 'ok' },
    extraTensors: { 'adam.m': tf.tensor1d([1, 2, 3]), counts: tf.tensor2d([[4, 5]], [1, 2], 'int32') },
  });
  return { model, dir };
}

beforeAll(async () => {
  await initBackend({ log: false });
  root = mkdtempSync(path.join(tmpdir(), 'mnemo-ckpt-'));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('checkpoints', () => {
  it('round trip: same logits, pool values and optimizer state (resume is exact), extras back', () => {
    const { model, dir } = saved('round');
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['config.json', 'extra.safetensors', 'memory', 'model.safetensors', 'tokenizer.json']);
    const back = load(dir);
    expect(back.model.config).toEqual(model.config);
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(model)));
    expect(Array.from(allRows(back.model))).toEqual(Array.from(allRows(model)));
    expect(back.tokenizer.merges).toEqual([1, 2, 3]);
    expect(back.extra).toEqual({ step: 2, note: 'ok' });
    expect(Array.from(back.extraTensors['adam.m']!.dataSync())).toEqual([1, 2, 3]);
    expect(back.extraTensors.counts!.dtype).toBe('int32');
    expect(back.extraTensors.counts!.shape).toEqual([1, 2]);
    // one more identical step on both: equal only if the pool's Adam moments were restored
    train(model, 1);
    train(back.model, 1);
    expect(Array.from(allRows(back.model))).toEqual(Array.from(allRows(model)));
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(model)));
    model.dispose();
    back.model.dispose();
  });

  it('skip-layer memories round-trip with the blocks; a tampered skip is refused', () => {
    const skips = [
      { read: 0, write: 2, kind: 'memoryPlus' as const },
      { read: 1, write: 2, kind: 'memory' as const },
    ];
    const { model, dir } = saved('skips', { ffn: ['dense', 'moe', 'memory'], skips });
    const meta = JSON.parse(readFileSync(path.join(dir, 'memory', 'memory.json'), 'utf8'));
    expect(meta.layers).toHaveLength(3); // block 2's memory, then the two skips
    const back = load(dir);
    expect(back.model.config.skips).toEqual(skips);
    expect(back.model.memorySites().map((s) => s.site)).toEqual(['blocks.2.ffn', 'skips.0', 'skips.1']);
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(model)));
    train(model, 1);
    train(back.model, 1);
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(model)));
    back.model.dispose();
    // a skip the checkpoint does not hold, and one whose kind differs from the saved layer
    const file = path.join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...cfg, model: { ...cfg.model, skips: [...skips, { read: 0, write: 1, kind: 'memory' }] } }));
    expect(() => load(dir)).toThrow(/memory: does not match the model config: 3 memory layers saved, 4 expected/);
    writeFileSync(file, JSON.stringify({ ...cfg, model: { ...cfg.model, skips: [skips[0], { ...skips[1], kind: 'memoryPlus' }] } }));
    expect(() => load(dir)).toThrow(/memory: does not match the model config: layer 2 was saved as/);
    model.dispose();
  });

  it('UltraMem memories (block and skip) round-trip: same logits, and training resumes identically', () => {
    const { model, dir } = saved('ultramem', {
      ffn: ['dense', 'moe', 'ultramem'],
      skips: [{ read: 0, write: 1, kind: 'ultramem' }],
      ultramem: { heads: 2, topM: 2, keyDim: 8, expansion: 4, cores: 2 },
    });
    const back = load(dir);
    expect(back.model.memorySites().map((s) => s.site)).toEqual(['blocks.2.ffn', 'skips.0']);
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(model)));
    train(model, 1);
    train(back.model, 1);
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(model)));
    const tensors = new SafetensorsReader(path.join(dir, 'memory', 'layers.safetensors'));
    expect([...tensors.tensors.keys()]).toContain('layers.1.tuckerCore');
    tensors.close();
    model.dispose();
    back.model.dispose();
  });

  it('loading then disposing the model and the extras frees every tensor the load made', () => {
    const { model, dir } = saved('free');
    model.dispose();
    const before = tf.memory().numTensors;
    const back = load(dir);
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    back.model.dispose();
    for (const t of Object.values(back.extraTensors)) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loadCheckpoint restores the BpeTokenizer; generation after loading is the same', () => {
    const text = 'memory layers store facts in tables; tables of facts are read sparsely. '.repeat(8);
    const tokenizer = BpeTokenizer.train([text], { vocabSize: 280 });
    const model = new LanguageModel(parseModelConfig({ ...cfgInput, vocabSize: tokenizer.vocabSize }));
    const dir = path.join(root, 'bpe');
    saveCheckpoint(dir, { model, tokenizer });
    const back = loadCheckpoint(dir);
    expect(back.tokenizer).toBeInstanceOf(BpeTokenizer);
    expect(back.tokenizer.encode(text)).toEqual(tokenizer.encode(text));
    const opts = { maxTokens: 10, temperature: 0.9, seed: 4 };
    expect(generate(back.model, back.tokenizer, 'memory', opts).tokens).toEqual(generate(model, tokenizer, 'memory', opts).tokens);
    model.dispose();
    back.model.dispose();
  });

  it('a dense model has no memory directory; replacing a checkpoint leaves no temp or old dirs', () => {
    const a = saved('replace', { ffn: ['dense', 'moe', 'dense'] });
    expect(existsSync(path.join(a.dir, 'memory'))).toBe(false);
    const b = new LanguageModel(parseModelConfig({ ...cfgInput, ffn: ['dense', 'moe', 'dense'], seed: 99 }));
    saveCheckpoint(a.dir, { model: b, tokenizer: new TestTokenizer([]) });
    expect(readdirSync(root).filter((f) => f.startsWith('replace'))).toEqual(['replace']);
    const back = load(a.dir);
    expect(Array.from(logitsOf(back.model))).toEqual(Array.from(logitsOf(b)));
    expect(back.extra).toEqual({});
    expect(back.extraTensors).toEqual({});
    for (const m of [a.model, b, back.model]) m.dispose();
  });

  it('refuses a truncated model.safetensors', () => {
    const { model, dir } = saved('trunc');
    const file = path.join(dir, 'model.safetensors');
    truncateSync(file, statSync(file).size - 10);
    expect(() => load(dir)).toThrow(CheckpointError);
    expect(() => load(dir)).toThrow(/model\.safetensors: truncated/);
    model.dispose();
  });

  it.each(['model.safetensors', 'memory/values.safetensors', 'tokenizer.json'])('refuses a flipped byte in %s', (rel) => {
    const { model, dir } = saved(`flip-${rel.replace('/', '-')}`);
    const file = path.join(dir, rel);
    const at = statSync(file).size - 3;
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0x10;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    expect(() => load(dir)).toThrow(new RegExp(`${rel.replace('.', '\\.')}: corrupt: sha256`));
    model.dispose();
  });

  it('refuses a config whose shapes differ from the file, naming the tensor', () => {
    const { model, dir } = saved('shape', { ffn: ['dense', 'moe', 'dense'] });
    const file = path.join(dir, 'config.json');
    const meta = JSON.parse(readFileSync(file, 'utf8'));
    meta.model.ffnHidden = 48;
    writeFileSync(file, JSON.stringify(meta));
    expect(() => load(dir)).toThrow(/model\.safetensors: tensor 'blocks\.0\.ffn\.w1' is F32 \[32,40\], the config needs F32 \[32,48\]/);
    meta.model.ffnHidden = 40;
    meta.model.ffn = ['dense', 'moe', 'memory'];
    writeFileSync(file, JSON.stringify(meta));
    expect(() => load(dir)).toThrow(CheckpointError); // memory/ is not listed and does not exist
    meta.model.ffn = ['dense', 'moe', 'dense'];
    meta.model.heads = 3;
    writeFileSync(file, JSON.stringify(meta));
    expect(() => load(dir)).toThrow(/config\.json: model config: dim: must be divisible by heads/);
    writeFileSync(file, '{"format": "mnemo-model"');
    expect(() => load(dir)).toThrow(/config\.json: not valid JSON/);
    rmSync(file);
    expect(() => load(dir)).toThrow(/config\.json: cannot read/);
    model.dispose();
  });

  it('refuses missing files and memory that does not match the config', () => {
    const { model, dir } = saved('missing');
    rmSync(path.join(dir, 'memory', 'layers.safetensors'));
    expect(() => load(dir)).toThrow(/layers\.safetensors: missing/);
    model.dispose();
    const other = saved('mismatch');
    const file = path.join(other.dir, 'config.json');
    const meta = JSON.parse(readFileSync(file, 'utf8'));
    meta.model.memory.topK = 3;
    writeFileSync(file, JSON.stringify(meta));
    expect(() => load(other.dir)).toThrow(/memory: does not match the model config/);
    other.model.dispose();
  });
});
