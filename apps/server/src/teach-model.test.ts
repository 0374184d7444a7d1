/**
 * POST /v1/memory/teach over the real model (a tiny Memory+ checkpoint): only the reported value
 * rows change and no dense weight moves, the taught text's loss falls, teaching races completions
 * with 0 errors, and /v1/memory/save writes a checkpoint that loads with the taught values.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import { loadCheckpoint } from '@mnemo/model';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ModelEngine } from './model-engine';
import type { MnemoServer } from './server';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { post, startServer } from './testing/http';

let tmp: string;
let dir: string;
let engine: ModelEngine;
let server: MnemoServer;
let url: string;
const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});

beforeAll(async () => {
  await initBackend({ log: false });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-teach-model-'));
  dir = path.join(tmp, 'tiny');
  saveTinyCheckpoint(dir);
  engine = ModelEngine.load(dir);
  ({ server, url } = await startServer(engine));
});
afterAll(async () => {
  await server.shutdown();
  warn.mockRestore();
  rmSync(tmp, { recursive: true, force: true });
});

const allRows = (e: ModelEngine) => {
  const pool = e.model.pool!;
  return pool.readRows(Int32Array.from({ length: pool.rows }, (_, i) => i));
};
const denseBytes = (e: ModelEngine) =>
  Object.entries(e.model.namedVariables()).map(([n, v]) => [n, Buffer.from((v.dataSync() as Float32Array).buffer).toString('base64')]);

type Taught = { data: { slots: number[]; slots_written: number; loss_before: number; loss_after: number }[]; unsaved: number };

describe('teaching the real model over HTTP', () => {
  it('without a background file the engine warns, and is still teachable', () => {
    expect(engine.teacher).toBeDefined();
    expect(warn.mock.calls.flat().join(' ')).toMatch(/background-reads\.json is missing/);
  });

  it('writes only the reported rows, leaves every dense weight, lowers the text loss', async () => {
    const before = allRows(engine);
    const dense = denseBytes(engine);
    const r = await post(`${url}/v1/memory/teach`, { text: 'The capital of Zorbia is Quendle.', top_t: 12, steps: 10 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as Taught;
    const t = body.data[0]!;
    expect(t.slots_written).toBe(t.slots.length);
    expect(t.slots.length).toBeGreaterThan(0);
    expect(t.slots.length).toBeLessThanOrEqual(12);
    expect(t.loss_after).toBeLessThan(t.loss_before);
    const after = allRows(engine);
    const dv = engine.model.pool!.dim;
    const changed: number[] = [];
    for (let row = 0; row < engine.model.pool!.rows; row++) {
      for (let j = 0; j < dv; j++) {
        if (after[row * dv + j] !== before[row * dv + j]) {
          changed.push(row);
          break;
        }
      }
    }
    expect(changed.every((row) => t.slots.includes(row))).toBe(true);
    expect(changed.length).toBeGreaterThan(0);
    expect(denseBytes(engine)).toEqual(dense);
  });

  it('races completions with 0 errors', async () => {
    const jobs: Promise<number>[] = [];
    for (let i = 0; i < 6; i++) {
      jobs.push(post(`${url}/v1/completions`, { prompt: `A memory block ${i}`, max_tokens: 8 }).then((r) => r.status));
      if (i % 2 === 0)
        jobs.push(post(`${url}/v1/memory/teach`, { text: `Fact number ${i} is kept here.`, steps: 3 }).then((r) => r.status));
    }
    expect(new Set(await Promise.all(jobs))).toEqual(new Set([200]));
  });

  it('save writes a checkpoint that loads with the taught values', async () => {
    const r = await post(`${url}/v1/memory/save`, {});
    expect(r.status).toBe(200);
    const body = (await r.json()) as { saved: number; bytes: number };
    expect(body.saved).toBe(4);
    expect(body.bytes).toBeGreaterThan(0);
    const rows = allRows(engine);
    const ck = loadCheckpoint(dir);
    try {
      const pool = ck.model.pool!;
      expect(pool.readRows(Int32Array.from({ length: pool.rows }, (_, i) => i))).toEqual(rows);
      expect(ck.extra.taughtFacts).toBe(4);
    } finally {
      ck.model.dispose();
      for (const t of Object.values(ck.extraTensors)) t.dispose();
    }
    const again = ModelEngine.load(dir);
    expect(again.teacher).toBeDefined();
    again.dispose();
  });
});
