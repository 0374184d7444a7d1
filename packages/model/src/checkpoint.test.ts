import {
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  readlinkSync,
  renameSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CheckpointError, SafetensorsReader } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_WRITE_STEPS, type CheckpointWriteStep, loadCheckpointWith, saveCheckpoint } from './checkpoint';
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

  it('a dense model has no memory directory; replacing a checkpoint leaves only the pointer and the new version', () => {
    const a = saved('replace', { ffn: ['dense', 'moe', 'dense'] });
    expect(existsSync(path.join(a.dir, 'memory'))).toBe(false);
    const b = new LanguageModel(parseModelConfig({ ...cfgInput, ffn: ['dense', 'moe', 'dense'], seed: 99 }));
    saveCheckpoint(a.dir, { model: b, tokenizer: new TestTokenizer([]) });
    // the pointer (a symlink) and the one version it names: no temp, old or earlier version dirs
    expect(
      readdirSync(root)
        .filter((f) => f.startsWith('replace'))
        .sort(),
    ).toEqual(['replace', 'replace.v-2']);
    expect(lstatSync(a.dir).isSymbolicLink()).toBe(true);
    expect(readlinkSync(a.dir)).toBe('replace.v-2');
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

/** Thrown by the crash hook: the save stops there, as if the process had been killed. */
class Crash extends Error {}

describe('checkpoint writes survive a crash at every step', () => {
  const tok = new TestTokenizer([1]);
  const denseCfg = { ...cfgInput, ffn: ['dense', 'memoryPlus', 'dense'] } as ModelConfigInput;
  const stepOf = (dir: string) => {
    const ck = load(dir);
    const step = ck.extra.step;
    ck.model.dispose();
    for (const t of Object.values(ck.extraTensors)) t.dispose();
    return step;
  };
  const crashAt = (step: CheckpointWriteStep) => (s: CheckpointWriteStep) => {
    if (s === step) throw new Crash(step);
  };
  /** saves of `dir`'s family left in its parent */
  const family = (dir: string) =>
    readdirSync(path.dirname(dir))
      .filter((f) => f === path.basename(dir) || f.startsWith(`${path.basename(dir)}.`))
      .sort();
  const swapIndex = CHECKPOINT_WRITE_STEPS.indexOf('swap');

  for (const legacy of [false, true]) {
    it(`${legacy ? 'over a pre-pointer (real) directory' : 'over a pointer'}: every step loads the newest complete checkpoint, the next save leaves nothing behind`, () => {
      const model = new LanguageModel(parseModelConfig(denseCfg));
      const seen = new Set<CheckpointWriteStep>();
      for (const step of CHECKPOINT_WRITE_STEPS) {
        const dir = path.join(root, `crash-${legacy ? 'legacy' : 'ptr'}-${step}`);
        saveCheckpoint(dir, { model, tokenizer: tok, extra: { step: 1 } });
        if (legacy) {
          // the layout today's saver leaves: <dir> is the checkpoint directory itself
          const real = path.join(path.dirname(dir), readlinkSync(dir));
          rmSync(dir);
          renameSync(real, dir);
          expect(family(dir)).toEqual([path.basename(dir)]);
        }
        // the save of step 2 stops before `step` (a step that does not happen in this layout: it completes)
        let crashed = false;
        try {
          saveCheckpoint(
            dir,
            { model, tokenizer: tok, extra: { step: 2 } },
            {
              beforeStep: (s) => {
                seen.add(s);
                crashAt(step)(s);
              },
            },
          );
        } catch (e) {
          if (!(e instanceof Crash)) throw e;
          crashed = true;
        }
        const applies = step !== 'legacy-aside' || legacy;
        expect(crashed).toBe(applies);
        // the newest complete checkpoint loads: step 2 once the pointer was swapped (over a real
        // directory: once that was moved aside, as <dir> is then missing and the complete
        // <dir>.v-N is the newest), step 1 before
        const i = CHECKPOINT_WRITE_STEPS.indexOf(step);
        const committed = !applies || i > swapIndex || (legacy && i === swapIndex);
        expect(stepOf(dir)).toBe(committed ? 2 : 1);
        // the next successful save cleans every leftover: the pointer and its one version remain
        saveCheckpoint(dir, { model, tokenizer: tok, extra: { step: 3 } });
        const left = family(dir);
        expect(left.length).toBe(2);
        expect(left[0]).toBe(path.basename(dir));
        expect(left[1]).toMatch(/\.v-\d+$/);
        expect(readlinkSync(dir)).toBe(left[1]);
        expect(stepOf(dir)).toBe(3);
      }
      // every step of the sequence was reached by some save (the hook saw them all)
      expect([...seen].sort()).toEqual(CHECKPOINT_WRITE_STEPS.filter((s) => legacy || s !== 'legacy-aside').sort());
      model.dispose();
    }, 60_000);
  }

  it("recovers from the leftovers of today's two-rename save killed between its renames, and cleans them", () => {
    const model = new LanguageModel(parseModelConfig(denseCfg));
    const dir = path.join(root, 'two-rename');
    // what the old saver leaves when killed between `rename(dir, dir.old-PID)` and `rename(dir.tmp-PID, dir)`:
    // no <dir>, the previous checkpoint in .old-PID, the new complete one in .tmp-PID, plus an
    // incomplete .tmp of another crashed process
    for (const [name, step] of [
      ['two-rename.old-111', 1],
      ['two-rename.tmp-111', 2],
      ['two-rename.tmp-222', 3],
    ] as const) {
      saveCheckpoint(path.join(root, `src-${name}`), { model, tokenizer: tok, extra: { step } });
      cpSync(path.join(root, `src-${name}`), path.join(root, name), { recursive: true, dereference: true });
    }
    rmSync(path.join(root, 'two-rename.tmp-222', 'config.json')); // killed before config.json: incomplete
    expect(existsSync(dir)).toBe(false);
    expect(stepOf(dir)).toBe(2);
    rmSync(path.join(root, 'two-rename.tmp-111', 'model.safetensors')); // a broken newest leftover is skipped
    expect(stepOf(dir)).toBe(1);
    saveCheckpoint(dir, { model, tokenizer: tok, extra: { step: 4 } });
    expect(family(dir)).toEqual(['two-rename', 'two-rename.v-1']);
    expect(stepOf(dir)).toBe(4);
    // nothing complete: the error names the directory and the leftovers it refused
    rmSync(dir);
    rmSync(path.join(root, 'two-rename.v-1', 'config.json'));
    expect(() => load(dir)).toThrow(/two-rename\/config\.json: cannot read: no checkpoint at .*incomplete leftovers: two-rename\.v-1/);
    model.dispose();
  });
});

describe('checkpoint writes survive a real kill -9', () => {
  it('a child SIGKILLed before config.json, before the swap and before the cleanup: the newest complete checkpoint loads, the next save cleans up', async () => {
    const { spawn } = await import('node:child_process');
    const child = path.join(import.meta.dirname, 'testing', 'save-and-kill.ts');
    const run = (dir: string, step: string, n: number) =>
      new Promise<{ signal: string | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, ['--conditions=mnemo-source', '--import', 'tsx', child, dir, step, String(n)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        p.stdout.on('data', (d) => {
          out += d;
        });
        p.on('exit', (_code, signal) => resolve({ signal, out }));
      });
    const stepOf = (dir: string) => {
      const ck = load(dir);
      ck.model.dispose();
      for (const t of Object.values(ck.extraTensors)) t.dispose();
      return ck.extra.step;
    };
    for (const [step, expected] of [
      ['config', 1],
      ['swap', 1],
      ['cleanup', 2],
    ] as const) {
      const dir = path.join(root, `kill-${step}`);
      expect((await run(dir, 'none', 1)).out).toBe('saved\n');
      const killed = await run(dir, step, 2);
      expect([step, killed.signal, killed.out]).toEqual([step, 'SIGKILL', '']);
      expect([step, stepOf(dir)]).toEqual([step, expected]);
      expect((await run(dir, 'none', 3)).out).toBe('saved\n');
      const left = readdirSync(root).filter((f) => f === `kill-${step}` || f.startsWith(`kill-${step}.`));
      expect([step, left.length]).toEqual([step, 2]);
      expect(stepOf(dir)).toBe(3);
    }
  }, 120_000);
});
