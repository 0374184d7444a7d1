import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@mnemo/core';
import { describe, expect, it } from 'vitest';
import { modelConfigFor, parseTrainerConfig, readTrainerConfig } from './config';

const model = {
  dim: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: ['dense', 'memoryPlus'],
  memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16 },
};
const minimal = { model, train: { steps: 5 } };
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'trainer-config-'));

/** The ConfigError thrown by f, or fail. */
function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('trainer config', () => {
  it('fills defaults; the model config gets its vocabSize from the tokenizer and room for prompts + answers', () => {
    const c = parseTrainerConfig(minimal);
    expect(c.tokenizer.vocabSize).toBe(1024);
    expect(c.data).toMatchObject({ facts: 0, factsMode: 'seen' });
    expect(c.train).toMatchObject({ steps: 5, batch: 8, seqLen: 64, clip: 1 });
    const m = modelConfigFor(c, 777);
    expect(m.vocabSize).toBe(777);
    expect(m.maxSeqLen).toBeGreaterThanOrEqual(c.train.seqLen + c.eval.answerTokens);
    expect(m.ffn).toEqual(['dense', 'memoryPlus']);
  });

  it('errors name the field, model fields prefixed with `model.`', () => {
    const cases: Array<[unknown, string]> = [
      [{ ...minimal, train: { steps: 5, lr: 'fast' } }, 'train.lr'],
      [{ ...minimal, train: {} }, 'train.steps'],
      [{ model }, 'train'],
      [{ ...minimal, train: { steps: 5, clip: -1 } }, 'train.clip'],
      [{ ...minimal, tokenizer: { vocabSize: 100 } }, 'tokenizer.vocabSize'],
      [{ ...minimal, data: { factsMode: 'sometimes' } }, 'data.factsMode'],
      [{ ...minimal, eval: { maxQuestions: 0 } }, 'eval.maxQuestions'],
      [{ ...minimal, model: { ...model, memory: { ...model.memory, topK: 999 } } }, 'model.memory.topK'],
      [{ ...minimal, model: { ...model, ffn: ['dense'] } }, 'model.ffn'],
    ];
    for (const [input, field] of cases) {
      const e = configError(() => parseTrainerConfig(input));
      expect(e.field, JSON.stringify(input)).toBe(field);
      expect(e.message).toContain(field);
    }
    // unknown keys are refused (a typo must not silently fall back to a default)
    expect(configError(() => parseTrainerConfig({ ...minimal, train: { steps: 5, learningRate: 1 } })).message).toMatch(/learningRate/);
  });

  it('reads YAML and JSON files; unreadable or malformed files name --config', () => {
    const dir = tmp();
    const yaml = path.join(dir, 'run.yaml');
    writeFileSync(
      yaml,
      `# a run\nname: yrun\nmodel:\n  dim: 32\n  layers: 2\n  heads: 4\n  kvHeads: 2\n  ffn: [dense, dense]\ntrain: { steps: 9, lr: 0.01 }\n`,
    );
    const c = readTrainerConfig(yaml);
    expect([c.name, c.train.steps, c.train.lr]).toEqual(['yrun', 9, 0.01]);
    const json = path.join(dir, 'run.json');
    writeFileSync(json, JSON.stringify({ ...minimal, name: 'jrun' }));
    expect(readTrainerConfig(json).name).toBe('jrun');
    writeFileSync(json, '{"model": ');
    expect(configError(() => readTrainerConfig(json)).message).toMatch(/--config: .*run\.json is not valid JSON/);
    writeFileSync(yaml, 'train: [1, 2\n');
    expect(configError(() => readTrainerConfig(yaml)).message).toMatch(/is not valid YAML/);
    expect(configError(() => readTrainerConfig(path.join(dir, 'missing.yaml'))).field).toBe('--config');
    writeFileSync(yaml, 'model: {dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: [dense, dense]}\ntrain: {steps: ten}\n');
    expect(configError(() => readTrainerConfig(yaml)).field).toBe('train.steps');
  });
});
