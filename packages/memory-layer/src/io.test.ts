import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMemory, saveMemory } from './io';
import { MemoryLayer } from './memory-layer';
import { MemoryPool } from './pool';
import { CheckpointError } from '@mnemo/core';

describe('saveMemory / loadMemory', () => {
  beforeAll(async () => {
    await initBackend({ log: false });
  });

  function trained() {
    const pool = new MemoryPool({ rows: 256, dim: 8, optimizer: { kind: 'adam', lr: 0.01 }, seed: 4 });
    const cfg = { inputDim: 8, numKeys: 16, heads: 2, topK: 4, keyDim: 8 };
    const layers = [new MemoryLayer({ ...cfg, seed: 1 }, { pool }), new MemoryLayer({ ...cfg, gating: 'none', seed: 2 }, { pool })];
    const x = tf.randomNormal([16, 8], 0, 1, 'float32', 1);
    const opt = tf.train.adam(0.01);
    for (let s = 0; s < 3; s++) {
      opt.minimize(
        () => tf.mean(tf.square(tf.add(layers[0]!.apply(x), layers[1]!.apply(x)))) as tf.Scalar,
        false,
        layers.flatMap((l) => l.trainableVariables()),
      );
    }
    return { pool, layers, x };
  }

  it('round-trips the layers, the shared pool and its optimizer state', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mem-'));
    const { pool, layers, x } = trained();
    const before = layers.map((l) => Array.from(l.apply(x).dataSync()));
    saveMemory(dir, { pool, layers });
    const back = loadMemory(dir);
    expect(back.layers).toHaveLength(2);
    expect(back.layers[1]!.config.gating).toBe('none');
    expect(back.layers.every((l) => l.pool === back.pool)).toBe(true);
    back.layers.forEach((l, i) => expect(Array.from(l.apply(x).dataSync())).toEqual(before[i]));
    expect(back.pool.store.stats().steps).toBe(pool.store.stats().steps);
  });

  it('refuses truncated, corrupt or mismatched checkpoints', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mem-'));
    const { pool, layers } = trained();
    saveMemory(dir, { pool, layers });
    const lfile = path.join(dir, 'layers.safetensors');
    const good = readFileSync(lfile);
    truncateSync(lfile, good.length - 10);
    expect(() => loadMemory(dir)).toThrow(CheckpointError);
    expect(() => loadMemory(dir)).toThrow(/truncated/);
    writeFileSync(lfile, good);
    const jfile = path.join(dir, 'memory.json');
    const meta = JSON.parse(readFileSync(jfile, 'utf8'));
    writeFileSync(jfile, JSON.stringify({ ...meta, layers: [{ ...meta.layers[0], keyDim: 16 }, meta.layers[1]] }));
    expect(() => loadMemory(dir)).toThrow(/layers\.0\.wq' is F32 \[8,16\], expected F32 \[8,32\]/);
    writeFileSync(jfile, JSON.stringify({ ...meta, layers: [{ ...meta.layers[0], topK: 99 }] }));
    expect(() => loadMemory(dir)).toThrow(/^layers\.0\.topK:/);
    writeFileSync(jfile, JSON.stringify({ ...meta, layers: [meta.layers[0]] }));
    expect(() => loadMemory(dir)).toThrow(/unexpected tensors layers\.1\./);
    writeFileSync(jfile, '{"format": "other"}');
    expect(() => loadMemory(dir)).toThrow(/not a mnemo-memory v1 file/);
  });
});
