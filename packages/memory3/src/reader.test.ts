import { initBackend } from '@mnemo/kernels';
import { LanguageModel, type TextCodec, generate, parseModelConfig } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryBank } from './in-memory-bank';
import type { MemoryKV } from './host';
import { KnowledgeBase } from './knowledge';
import { MemoryReader, batchExternal } from './reader';

/** characters ' '..'z' → 1..91; BOS 0, EOS 95 */
const codec: TextCodec = {
  bosId: 0,
  eosId: 95,
  encode: (s) => [...s].map((c) => Math.min(94, Math.max(1, c.charCodeAt(0) - 31))),
  decode: (ids) => ids.map((i) => (i > 0 && i < 95 ? String.fromCharCode(i + 31) : '')).join(''),
};
const TEXTS = [
  'The capital of Zoukra is Kemat.',
  'Bravol was founded by Tisen.',
  'The flag of Quaimo is green.',
  'Stroupa was built in the year 1412.',
  'Fjords are long narrow inlets.',
  'A whale is a mammal of the sea.',
];

let model: LanguageModel;
let kb: KnowledgeBase;
let ids: number[];

beforeAll(async () => {
  await initBackend({ log: false });
  model = new LanguageModel(
    parseModelConfig({ vocabSize: 96, dim: 32, layers: 4, heads: 4, kvHeads: 2, maxSeqLen: 160, ffnHidden: 48, seed: 9 }),
  );
  kb = KnowledgeBase.inMemory(model, codec);
  ids = await kb.addTexts(TEXTS);
});
afterAll(() => model.dispose());

function logitsOf(seq: number[], ext?: MemoryKV): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d([seq], [1, seq.length], 'int32'), { external: ext }).logits.dataSync() as Float32Array);
}

describe('MemoryReader', () => {
  it('retrieves a reference by its own text first, at most topK', () => {
    const reader = kb.reader();
    TEXTS.forEach((t, i) => {
      const hits = reader.retrieve(codec.encode(t));
      expect(hits.length).toBe(5);
      expect(hits[0]!.id).toBe(ids[i]);
      expect(hits[0]!.score).toBeCloseTo(1, 5);
    });
    expect(reader.retrieve([])).toEqual([]);
    reader.dispose();
  });

  it('hands the model [Hkv, Σ n, dh] per memory block, with contextStart 128; memories change the logits', () => {
    const reader = kb.reader();
    const ext = reader.external([ids[0]!, ids[1]!]);
    expect(ext.contextStart).toBe(128);
    expect(ext.blocks).toEqual([0, 1]);
    const n = Math.min(8, codec.encode(TEXTS[0]!).length) + Math.min(8, codec.encode(TEXTS[1]!).length);
    tf.tidy(() => {
      expect(ext.get(0, 0, 0)!.k.shape).toEqual([2, n, 8]);
      expect(ext.get(1, 0, 0)!.v.shape).toEqual([2, n, 8]);
    });
    expect(ext.get(2, 0, 0)).toBeUndefined();
    const seq = codec.encode('The capital of Zoukra is');
    const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    expect(diff(logitsOf(seq, ext), logitsOf(seq))).toBeGreaterThan(1e-3);
    expect(diff(logitsOf(seq, reader.external([])), logitsOf(seq))).toBeLessThan(1e-4);
    reader.dispose();
  });

  it('generation with a session reads per chunk and matches the chunked forward over the same memories', () => {
    const reader = kb.reader({ every: 8 });
    const session = reader.session();
    const prompt = 'Stroupa was built in the';
    const r = generate(model, codec, prompt, { maxTokens: 12, memory: session });
    const all = [...codec.encode(prompt), ...r.tokens];
    expect(session.chunks.length).toBe(Math.ceil((all.length - 1) / 8));
    expect(session.references.length).toBeGreaterThan(0);
    expect(new Set(session.references).size).toBe(session.references.length);
    const seq = all.slice(0, all.length - 1);
    const full = logitsOf(seq, reader.chunked([session.chunks], 8));
    const V = 96;
    for (let t = codec.encode(prompt).length - 1; t < seq.length; t++) {
      let best = 0;
      for (let i = 1; i < V; i++) if (full[t * V + i]! > full[t * V + best]!) best = i;
      expect(all[t + 1]).toBe(best);
    }
    reader.dispose();
  });

  it('keeps at most cacheSize decoded memories (never evicting those in use) and disposes evicted tensors', () => {
    const reader = kb.reader({ cacheSize: 2 });
    const before = tf.memory().numTensors;
    reader.external([ids[0]!, ids[1]!, ids[2]!]);
    expect(reader.cached).toBe(3);
    reader.external([ids[3]!]);
    expect(reader.cached).toBe(2);
    expect(tf.memory().numTensors).toBe(before + 2 * 2 * 2); // 2 memories × 2 blocks × (k, v)
    reader.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('decoding reads one kept concatenation per id list, not one per step; old lists are dropped', () => {
    const reader = kb.reader();
    const before = tf.memory().numTensors;
    const ext = reader.external([ids[0]!, ids[1]!]);
    const a = ext.get(0, 0, 0)!;
    expect(ext.get(0, 0, 0)!.k).toBe(a.k);
    const lists = [[ids[2]!], [ids[3]!], [ids[4]!], [ids[5]!, ids[0]!]];
    for (const l of lists) reader.external(l).get(1, 0, 0);
    expect(a.k.isDisposed).toBe(true); // the oldest of 5 lists
    expect(ext.get(0, 0, 0)!.k.shape).toEqual(a.k.shape); // rebuilt on demand
    reader.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('batchExternal: a batched decode step reads each row its own memories', () => {
    const reader = kb.reader();
    const rows = [codec.encode('The capital of'), codec.encode('Bravol was')];
    const exts = [reader.external([ids[0]!]), undefined];
    const caches = rows.map(() => model.newCache());
    rows.forEach((r, b) => model.prefill(r, caches[b]!, { external: exts[b] ?? reader.external([]) }));
    const batched = model.decodeBatch([5, 6], caches, { external: batchExternal(exts) });
    rows.forEach((r, b) => {
      const alone = model.newCache();
      model.prefill(r, alone, { external: exts[b] ?? reader.external([]) });
      const one = model.prefill([5 + b], alone, { external: exts[b] ?? reader.external([]) });
      expect(batched[b]!.reduce((m, x, i) => Math.max(m, Math.abs(x - one[i]!)), 0)).toBeLessThan(1e-4);
      alone.dispose();
    });
    for (const c of caches) c.dispose();
    reader.dispose();
  });

  it('refuses a bank of another shape', () => {
    const bank = new InMemoryBank({ layers: 3, kvHeads: 2, tokens: 8, headDim: 8 }, 32);
    expect(() => new MemoryReader(model, bank, { prefixId: 0 })).toThrow(/bank.shape/);
    expect(() => new MemoryReader(model, new InMemoryBank(kb.bank.shape, 16), { prefixId: 0 })).toThrow(/embedDim/);
  });
});

describe('KnowledgeBase', () => {
  it('adds, lists and deletes references; splits long texts into ≤ 127-token references', async () => {
    const k = KnowledgeBase.inMemory(model, codec);
    const long = 'x'.repeat(300);
    const got = await k.addTexts(['short text', long]);
    expect(got.length).toBe(1 + 3);
    expect(k.list().map((m) => m.tokens)).toEqual([10, 127, 127, 46]);
    expect(await k.delete(got[0]!)).toBe(true);
    expect(k.size).toBe(3);
    await expect(k.addTexts([''])).rejects.toThrow(/texts.0/);
  });
});
