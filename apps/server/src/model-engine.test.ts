import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { modelCounts } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelEngine } from './model-engine';
import { saveTinyCheckpoint } from './testing/checkpoint';

let tmp: string;

beforeAll(async () => {
  await initBackend();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-engine-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ModelEngine', () => {
  it("reads the checkpoint's chat template (extra.chat_template), falls back to the default, refuses a bad one naming the file", () => {
    const template = {
      prefix: '',
      roles: { system: '# {content}\n', user: 'Q: {content}\n', assistant: 'A: {content}\n' },
      generation: 'A:',
      stop: ['\nQ:'],
    };
    saveTinyCheckpoint(path.join(tmp, 'chat'), { chat_template: template });
    const e = ModelEngine.load(path.join(tmp, 'chat'));
    expect(e.chatTemplateSource).toBe('checkpoint');
    expect(e.chatTemplate).toEqual(template);
    e.dispose();
    saveTinyCheckpoint(path.join(tmp, 'old'));
    const old = ModelEngine.load(path.join(tmp, 'old'));
    expect(old.chatTemplateSource).toBe('default');
    expect(old.chatTemplate.roles.user).toBe('User: {content}\n');
    old.dispose();
    saveTinyCheckpoint(path.join(tmp, 'bad'), { chat_template: { ...template, roles: { ...template.roles, user: 'Q:' } } });
    expect(() => ModelEngine.load(path.join(tmp, 'bad'))).toThrow(
      /config\.json: extra\.chat_template\.roles\.user: must contain \{content\}/,
    );
  });

  it('loads a checkpoint: info from the model, id from the folder, decoding leaves no tensors', () => {
    const dir = path.join(tmp, 'my-model');
    saveTinyCheckpoint(dir);
    const e = ModelEngine.load(dir);
    expect(e.info.id).toBe('my-model');
    const named = ModelEngine.load(dir, { id: 'named' });
    expect(named.info.id).toBe('named');
    named.dispose();
    const counts = modelCounts(e.model.config);
    expect(e.info).toMatchObject({
      vocabSize: e.model.config.vocabSize,
      maxSeqLen: e.model.config.maxSeqLen,
      memoryBlocks: e.model.memoryBlocks(),
      denseParams: counts.denseParams,
      memoryParams: counts.memoryParams,
    });
    expect(e.info.memoryBlocks.length).toBeGreaterThan(0);
    // lookups: one entry per memory block, laid out [T, H, k]
    const ids = e.encode('memory layers');
    const reads = e.lookup(ids);
    expect(reads.map((r) => r.block)).toEqual(e.info.memoryBlocks);
    for (const r of reads) expect(r.ids.length).toBe(ids.length * r.heads * r.topK);
    // prefill + decode and dispose leave the tensor count where loading left it
    const afterLoad = tf.memory().numTensors;
    const c = e.newCache();
    e.prefill(ids, c);
    e.decodeBatch([1], [c]);
    c.dispose();
    expect(tf.memory().numTensors).toBe(afterLoad);
    e.dispose();
    expect(tf.memory().numTensors).toBeLessThan(afterLoad);
  });

  it('refuses a missing or corrupt checkpoint with a CheckpointError naming the file', () => {
    expect(() => ModelEngine.load(path.join(tmp, 'absent'))).toThrow(CheckpointError);
    const dir = path.join(tmp, 'corrupt');
    saveTinyCheckpoint(dir);
    writeFileSync(path.join(dir, 'config.json'), '{"format": ');
    expect(() => ModelEngine.load(dir)).toThrow(/config\.json/);
  });
});
