import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { preset } from './presets';
import { finishedRun, sameRun } from './reuse';

const root = mkdtempSync(path.join(os.tmpdir(), 'mnemo-reuse-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const counts = { denseParams: 10, memoryParams: 20, flopsPerToken: 30 };
/** a run directory as runTraining leaves it: checkpoint/config.json (extra.trainer) + metrics.jsonl */
function fakeRun(name: string, trainer: unknown, final: boolean): string {
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, 'checkpoint'), { recursive: true });
  writeFileSync(path.join(dir, 'checkpoint', 'config.json'), JSON.stringify({ extra: { trainer } }));
  const lines = [{ step: 10, loss: 2 }];
  if (final)
    lines.push({ step: 20, final: { valLoss: 1.5, factLoss: 0.9, recall: 0.25, questions: 8 }, tokensPerSec: 99, counts } as never);
  writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  return dir;
}

describe('finishedRun / sameRun', () => {
  it('reads back the final evaluation of a run trained with the same config, wherever it was written', () => {
    const cfg = preset('memoryPlus', { out: 'runs/a' });
    const dir = fakeRun('plus', { ...cfg, out: 'elsewhere/b' }, true);
    expect(finishedRun(cfg, dir)).toEqual({
      name: 'memoryPlus',
      ...counts,
      tokensPerSec: 99,
      valLoss: 1.5,
      factLoss: 0.9,
      recall: 0.25,
      questions: 8,
    });
  });

  it('refuses a run with any other setting that shapes the model, or without a final evaluation', () => {
    const cfg = preset('memoryPlus', { out: 'runs/a' });
    const otherLr = structuredClone(cfg);
    otherLr.train.lr = 0.02;
    expect(finishedRun(cfg, fakeRun('lr', otherLr, true))).toBeNull();
    const otherBlocks = preset('memoryPlus', { out: 'runs/a', memoryBlocks: [2] });
    expect(sameRun(cfg, otherBlocks)).toBe(false);
    const otherPool = structuredClone(cfg);
    (otherPool.model.memory as { numKeys: number }).numKeys = 128;
    expect(sameRun(cfg, otherPool)).toBe(false);
    expect(finishedRun(cfg, fakeRun('unfinished', cfg, false))).toBeNull();
    expect(finishedRun(cfg, path.join(root, 'missing'))).toBeNull();
  });

  it('ignores the memory and MoE sections of a model whose blocks use neither, and key order', () => {
    const dense = preset('dense');
    const withOtherMemory = structuredClone(dense);
    (withOtherMemory.model.memory as { valueLr: number }).valueLr = 0.5;
    (withOtherMemory.model.moe as { experts: number }).experts = 8;
    expect(sameRun(dense, withOtherMemory)).toBe(true);
    const reordered = Object.fromEntries(Object.entries(dense).reverse());
    expect(sameRun(dense, reordered)).toBe(true);
    // ...but not for the model kinds that use them
    const moe = preset('moe');
    const moe8 = structuredClone(moe);
    (moe8.model.moe as { experts: number }).experts = 8;
    expect(sameRun(moe, moe8)).toBe(false);
  });
});
