/**
 * The Memory³ store on disk, end to end: `mnemo-memory build` (a child process on the sources)
 * writes a store from a JSON-lines file with a progress line, a second build skips what is
 * stored, a bad line is refused by number before anything is written; `mnemo-serve
 * --memory-store` serves it (completions report references; a write through the API survives a
 * restart); a store written by another checkpoint is refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { loadCheckpoint } from '@mnemo/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKnowledgeStore, readRefs } from './knowledge-store';
import { saveTinyCheckpoint } from './testing/checkpoint';
import { type SpawnedCli, spawnSource, waitReady } from './testing/spawn';
import { post } from './testing/http';

let tmp: string;
let ckpt: string;

beforeAll(async () => {
  await initBackend();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'mnemo-memory-cli-'));
  ckpt = path.join(tmp, 'tiny');
  saveTinyCheckpoint(ckpt);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = spawnSource;
const ready = (p: SpawnedCli) => waitReady(p, 60_000);

const refs = [
  'Memory layers store facts in a large table of values.',
  'Product keys split the query in two halves.',
  'A dense feed-forward block spends the same compute on every token.',
];

describe('mnemo-memory build and mnemo-serve --memory-store', () => {
  it('reads references from JSON lines, naming a bad line', () => {
    expect(readRefs('f.jsonl', `${JSON.stringify({ text: 'a' })}\n\n${JSON.stringify({ text: 'b', id: 7 })}\n`)).toEqual(['a', 'b']);
    expect(() => readRefs('f.jsonl', '{"text": "a"}\n{"txt": "b"}\n')).toThrow(/f\.jsonl:2: needs a non-empty string field "text"/);
    expect(() => readRefs('f.jsonl', '{"text": "a"}\nnot json\n')).toThrow(/f\.jsonl:2: not JSON/);
    expect(() => readRefs('f.jsonl', '\n')).toThrow(/holds no references/);
  });

  it('builds a store, skips what it holds on a rerun, serves it, keeps API writes across a restart', async () => {
    const file = path.join(tmp, 'refs.jsonl');
    writeFileSync(file, refs.map((text) => JSON.stringify({ text })).join('\n'));
    const store = path.join(tmp, 'store');
    const build = run('memory-cli.ts', ['build', '--checkpoint', ckpt, '--refs', file, '--store', store, '--batch', '2']);
    expect(await build.exit, build.err()).toBe(0);
    expect(build.err()).toMatch(/writing .*3\/3/);
    expect(build.err()).toMatch(/wrote 3 references from 3 texts/);
    const again = run('memory-cli.ts', ['build', '--checkpoint', ckpt, '--refs', file, '--store', store]);
    expect(await again.exit, again.err()).toBe(0);
    expect(again.err()).toMatch(/wrote 0 references .*skipped 3 already stored/);
    // a bad line: refused by number, nothing written
    writeFileSync(path.join(tmp, 'bad.jsonl'), `{"text": "fine"}\n{"text": ""}\n`);
    const bad = run('memory-cli.ts', ['build', '--checkpoint', ckpt, '--refs', path.join(tmp, 'bad.jsonl'), '--store', store]);
    expect(await bad.exit).toBe(1);
    expect(bad.err()).toMatch(/bad\.jsonl:2: needs a non-empty string field "text"/);

    for (let round = 0; round < 2; round++) {
      const serve = run('cli.ts', ['--checkpoint', ckpt, '--port', '0', '--memory-store', store]);
      const url = await ready(serve);
      expect(serve.err()).toMatch(round === 0 ? /memory store .*: 3 references/ : /memory store .*: 4 references/);
      const list = (await (await fetch(`${url}/v1/memories`)).json()) as { total: number; data: { text: string }[] };
      expect(list.data.map((m) => m.text).slice(0, 3)).toEqual(refs);
      const c = (await (await post(`${url}/v1/completions`, { prompt: 'Product keys', max_tokens: 4 })).json()) as { references: number[] };
      expect(c.references.length).toBeGreaterThan(0);
      if (round === 0) expect((await post(`${url}/v1/memories`, { text: 'Values are read sparsely.' })).status).toBe(201);
      serve.child.kill('SIGTERM');
      expect(await serve.exit).toBe(0);
    }
  }, 120_000);

  it('refuses a store written by another checkpoint, unless asked', async () => {
    const other = path.join(tmp, 'other');
    saveTinyCheckpoint(other, {}, { seed: 8 });
    const store = path.join(tmp, 'store-a');
    const a = loadCheckpoint(ckpt);
    const first = await openKnowledgeStore(store, { checkpoint: ckpt, model: a.model, tokenizer: a.tokenizer });
    expect(first.created).toBe(true);
    await first.knowledge.addTexts(['one reference']);
    await first.bank.close();
    const b = loadCheckpoint(other);
    await expect(openKnowledgeStore(store, { checkpoint: other, model: b.model, tokenizer: b.tokenizer })).rejects.toThrow(ConfigError);
    await expect(openKnowledgeStore(store, { checkpoint: other, model: b.model, tokenizer: b.tokenizer })).rejects.toThrow(
      /was written by the checkpoint at .*tiny/,
    );
    const forced = await openKnowledgeStore(store, { checkpoint: other, model: b.model, tokenizer: b.tokenizer, anyWriter: true });
    expect(forced.bank.size).toBe(1);
    await forced.bank.close();
    a.model.dispose();
    b.model.dispose();
  });
});
