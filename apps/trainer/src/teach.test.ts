/**
 * mnemo-train teach on a tiny Memory+ checkpoint, as a child process: one line per fact with the
 * slots written, a new checkpoint at --out with the background reads beside it, the source
 * checkpoint untouched, only the printed number of value rows changed, bad flags refused.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '@mnemo/kernels';
import {
  BACKGROUND_READS_FILE,
  BpeTokenizer,
  LanguageModel,
  ffnPlan,
  loadCheckpoint,
  resolveCheckpointDir,
  saveCheckpoint,
} from '@mnemo/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './testing/run-cli';

const cli = (...args: string[]) => runCli(args, 120_000);

let dir: string;
const rowsOf = (ckpt: string) => {
  const ck = loadCheckpoint(ckpt);
  const pool = ck.model.pool!;
  const rows = pool.readRows(Int32Array.from({ length: pool.rows }, (_, i) => i));
  const dense = Object.fromEntries(Object.entries(ck.model.namedVariables()).map(([k, v]) => [k, Array.from(v.dataSync())]));
  const dv = pool.dim;
  ck.model.dispose();
  return { rows, dense, dv };
};

beforeAll(async () => {
  await initBackend({ log: false });
  dir = mkdtempSync(path.join(os.tmpdir(), 'wt-teach-cli-'));
  const corpus = 'The whale swam in the sea. The ship sailed to the north. Ahab watched the waves. '.repeat(20);
  const tok = BpeTokenizer.train([corpus], { vocabSize: 300 });
  const model = new LanguageModel({
    vocabSize: tok.vocabSize,
    dim: 32,
    layers: 2,
    heads: 2,
    kvHeads: 2,
    maxSeqLen: 48,
    ffnHidden: 64,
    ffn: ffnPlan('memoryPlus', 2, 1),
    memory: { numKeys: 16, heads: 2, topK: 4, keyDim: 16 },
    seed: 3,
  });
  saveCheckpoint(path.join(dir, 'src'), { model, tokenizer: tok, extra: { step: 0 } });
  model.dispose();
  writeFileSync(path.join(dir, 'corpus.txt'), corpus);
  writeFileSync(
    path.join(dir, 'facts.jsonl'),
    `${JSON.stringify({ text: 'Zork lives in Paris.' })}\n${JSON.stringify({ text: 'Quib likes green tea.' })}\n`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mnemo-train teach', () => {
  it('teaches each fact, writes a new checkpoint and its background reads, leaves the source alone', async () => {
    const src = path.join(dir, 'src');
    const out = path.join(dir, 'taught');
    const before = rowsOf(src);
    const srcBytes = readFileSync(path.join(resolveCheckpointDir(src), 'config.json'));
    const r = await cli(
      'teach',
      '--checkpoint',
      src,
      '--facts',
      path.join(dir, 'facts.jsonl'),
      '--out',
      out,
      '--t',
      '5',
      '--data',
      path.join(dir, 'corpus.txt'),
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^fact 1: 5 slots written, loss [\d.]+ → [\d.]+, \d+ ms$/);
    expect(lines[1]).toMatch(/^fact 2: 5 slots written/);
    expect(JSON.parse(lines[2]!)).toMatchObject({ facts: 2, slotsWritten: 10 });
    expect(readFileSync(path.join(resolveCheckpointDir(src), 'config.json'))).toEqual(srcBytes);
    expect(JSON.parse(readFileSync(path.join(resolveCheckpointDir(out), BACKGROUND_READS_FILE), 'utf8')).slots).toBe(256);
    const after = rowsOf(out);
    expect(after.dense).toEqual(before.dense);
    let changed = 0;
    for (let s = 0; s < before.rows.length / before.dv; s++) {
      const a = before.rows.subarray(s * before.dv, (s + 1) * before.dv);
      const b = after.rows.subarray(s * before.dv, (s + 1) * before.dv);
      if (a.some((x, i) => x !== b[i])) changed++;
    }
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(10); // two facts × t = 5 (they may share slots)
  }, 120_000);

  it('refuses an existing --out and a bad --t, naming the flag', async () => {
    const src = path.join(dir, 'src');
    const facts = path.join(dir, 'facts.jsonl');
    const exists = await cli('teach', '--checkpoint', src, '--facts', facts, '--out', src);
    expect(exists.code).toBe(2);
    expect(exists.err).toMatch(/--out/);
    const badT = await cli('teach', '--checkpoint', src, '--facts', facts, '--out', path.join(dir, 'x'), '--t', '0');
    expect(badT.code).toBe(2);
    expect(badT.err).toMatch(/--t/);
  }, 120_000);
});
