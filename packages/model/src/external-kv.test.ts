import { ShapeError, ValueError, mulberry32 } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from './config';
import type { ExternalKV } from './extensions';
import type { ModelKVCache } from './kv-cache';
import { type TextCodec, generate } from './generate';
import { LanguageModel } from './model';

const V = 61;
const Hk = 2;
const dh = 8;
let model: LanguageModel;

beforeAll(async () => {
  await initBackend({ log: false });
  model = new LanguageModel(
    parseModelConfig({ vocabSize: V, dim: 32, layers: 3, heads: 4, kvHeads: Hk, maxSeqLen: 24, ffnHidden: 48, seed: 7 }),
  );
});
afterAll(() => model.dispose());

function ids(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
}

/** random memories k, v [Hk, M, dh], kept (the test owns them) */
function memory(M: number, seed: number): { k: tf.Tensor3D; v: tf.Tensor3D } {
  return {
    k: tf.keep(tf.randomNormal([Hk, M, dh], 0, 2, 'float32', seed) as tf.Tensor3D),
    v: tf.keep(tf.randomNormal([Hk, M, dh], 0, 2, 'float32', seed + 1) as tf.Tensor3D),
  };
}

/** every chunk of every row reads mems[chunk] (undefined: none) in blocks 0 and 1 */
function external(
  mems: ({ k: tf.Tensor3D; v: tf.Tensor3D } | undefined)[],
  opts: { chunk?: number; contextStart?: number } = {},
): ExternalKV {
  return { blocks: [0, 1], contextStart: opts.contextStart ?? 128, chunk: opts.chunk, get: (_b, _row, c) => mems[c] };
}

function logitsOf(seq: number[], ext?: ExternalKV): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d([seq], [1, seq.length], 'int32'), { external: ext }).logits.dataSync() as Float32Array);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('ExternalKV (Memory³ reading)', () => {
  it('an ExternalKV that returns nothing leaves forward, loss and cached decoding bit-for-bit unchanged', () => {
    const seq = ids(12, 1);
    const none: ExternalKV = { blocks: [0, 1], get: () => undefined };
    expect(logitsOf(seq, none)).toEqual(logitsOf(seq));
    const loss = (ext?: ExternalKV) => tf.tidy(() => model.loss(tf.tensor2d([seq], [1, 12], 'int32'), { external: ext }).dataSync()[0]);
    expect(loss(none)).toBe(loss());
    const a = model.newCache();
    const b = model.newCache();
    expect(model.prefill(seq, a, { external: none })).toEqual(model.prefill(seq, b));
    a.dispose();
    b.dispose();
  });

  it('moving the context to position 128 without memories changes nothing but rounding (RoPE is relative)', () => {
    const seq = ids(12, 2);
    expect(maxDiff(logitsOf(seq, external([], { contextStart: 128 })), logitsOf(seq))).toBeLessThan(1e-4);
  });

  it('memories change the logits', () => {
    const seq = ids(10, 3);
    const m = memory(5, 11);
    expect(maxDiff(logitsOf(seq, external([m])), logitsOf(seq))).toBeGreaterThan(1e-3);
    tf.dispose([m.k, m.v]);
  });

  it('cached decoding with memories equals the full forward with the same memories', () => {
    const seq = ids(14, 4);
    const m = memory(6, 21);
    const ext = external([m]);
    const full = logitsOf(seq, ext); // [T, V]
    const cache = model.newCache();
    const first = model.prefill(seq.slice(0, 5), cache, { external: ext });
    expect(maxDiff(first, full.slice(4 * V, 5 * V))).toBeLessThan(1e-4);
    for (let t = 5; t < seq.length; t++) {
      const l = model.prefill([seq[t]!], cache, { external: ext });
      expect(maxDiff(l, full.slice(t * V, (t + 1) * V))).toBeLessThan(1e-4);
    }
    expect(cache.length).toBe(seq.length);
    // the cache holds the context only: [Hk, T, dh] per block
    expect((cache as ModelKVCache).k[0]!.shape).toEqual([Hk, seq.length, dh]);
    cache.dispose();
    tf.dispose([m.k, m.v]);
  });

  it('chunked forward: chunk c reads only its memories; swapping memories per chunk in the cache matches it', () => {
    const seq = ids(12, 5);
    const mems = [memory(3, 31), memory(5, 41), undefined];
    const full = logitsOf(seq, external(mems, { chunk: 4 }));
    // chunk 0's positions do not depend on chunk 1's memories (block-diagonal mask)
    const other = memory(5, 51);
    const swapped = logitsOf(seq, external([mems[0], other, undefined], { chunk: 4 }));
    expect(maxDiff(swapped.slice(0, 4 * V), full.slice(0, 4 * V))).toBe(0);
    expect(maxDiff(swapped.slice(4 * V, 8 * V), full.slice(4 * V, 8 * V))).toBeGreaterThan(1e-3);
    const cache = model.newCache();
    for (let c = 0; c < 3; c++) {
      const ext = external([mems[c]]);
      for (let t = 4 * c; t < 4 * c + 4; t++) {
        const l = model.prefill([seq[t]!], cache, { external: ext });
        expect(maxDiff(l, full.slice(t * V, (t + 1) * V))).toBeLessThan(1e-4);
      }
    }
    cache.dispose();
    tf.dispose([mems[0]!.k, mems[0]!.v, mems[1]!.k, mems[1]!.v, other.k, other.v]);
  });

  it('decodeBatch with memories of different sizes per row equals each row alone', () => {
    const m = [memory(2, 61), memory(7, 71)];
    const ext: ExternalKV = { blocks: [1, 2], contextStart: 64, get: (_b, row) => m[row] };
    const rows = [ids(3, 6), ids(6, 7)];
    const caches = rows.map(() => model.newCache());
    rows.forEach((r, b) => model.prefill(r, caches[b]!, { external: { ...ext, get: (bl) => ext.get(bl, b, 0) } }));
    const batched = model.decodeBatch([9, 10], caches, { external: ext });
    rows.forEach((r, b) => {
      const alone = model.newCache();
      const one: ExternalKV = { ...ext, get: (bl) => ext.get(bl, b, 0) };
      model.prefill(r, alone, { external: one });
      expect(maxDiff(batched[b]!, model.prefill([9 + b], alone, { external: one }))).toBeLessThan(1e-4);
      alone.dispose();
    });
    for (const c of caches) c.dispose();
    tf.dispose(m.flatMap((x) => [x.k, x.v]));
  });

  it('refuses memories of the wrong shape, a bad contextStart, and a contextStart change within a cache', () => {
    const seq = ids(6, 8);
    const bad = { k: tf.keep(tf.zeros([Hk, 3, dh + 1]) as tf.Tensor3D), v: tf.keep(tf.zeros([Hk, 3, dh + 1]) as tf.Tensor3D) };
    expect(() => logitsOf(seq, external([bad]))).toThrow(ShapeError);
    expect(() => logitsOf(seq, external([], { contextStart: 129 }))).toThrow(ValueError);
    const cache = model.newCache();
    model.prefill(seq, cache, { external: external([]) });
    expect(() => model.prefill([1], cache)).toThrow(/contextStart/);
    cache.dispose();
    tf.dispose([bad.k, bad.v]);
  });
});

describe('captureKV (Memory³ writer)', () => {
  it("returns each block's k, v as the KV cache holds them, q of H heads, and the residual streams", () => {
    const seq = ids(9, 9);
    const cap = model.captureKV(seq, { blocks: [2, 0], hidden: 0 });
    expect(cap.blocks.map((b) => b.block)).toEqual([0, 2]);
    const cache = model.newCache() as ModelKVCache;
    model.prefill(seq, cache);
    for (const b of cap.blocks) {
      expect(b.q.length).toBe(4 * 9 * dh);
      expect(maxDiff(b.k, cache.k[b.block]!.dataSync() as Float32Array)).toBeLessThan(1e-6);
      expect(maxDiff(b.v, cache.v[b.block]!.dataSync() as Float32Array)).toBeLessThan(1e-6);
    }
    cache.dispose();
    const emb = tf.tidy(() => tf.gather(model.namedVariables().tok_emb!, tf.tensor1d(seq, 'int32')).dataSync() as Float32Array);
    expect(maxDiff(cap.hidden!, emb)).toBe(0);
    // the final-normed states times the tied embedding are the logits
    const last = model.captureKV(seq, { blocks: [], hidden: 3 }).hidden!;
    const logits = tf.tidy(
      () => tf.matMul(tf.tensor2d(last, [9, 32]), model.namedVariables().tok_emb! as tf.Tensor2D, false, true).dataSync() as Float32Array,
    );
    expect(maxDiff(logits, logitsOf(seq))).toBeLessThan(1e-4);
    expect(() => model.captureKV(seq, { blocks: [3] })).toThrow(ValueError);
  });
});

describe('attentionKV (Memory³ writer, with gradient)', () => {
  it('batches rows as captureKV sees each alone, and its k carries gradient into the weights', () => {
    const a = ids(7, 21);
    const b = ids(7, 22);
    const out = model.attentionKV([...a, ...b], 2, 7, [1, 0]);
    expect(out.map((x) => x.block)).toEqual([0, 1]);
    for (const [r, seq] of [a, b].entries()) {
      const cap = model.captureKV(seq, { blocks: [0, 1] });
      for (const [l, blk] of cap.blocks.entries()) {
        const row = (t: tf.Tensor4D) => tf.tidy(() => tf.slice(t, [r, 0, 0, 0], [1, -1, -1, -1]).dataSync() as Float32Array);
        expect(maxDiff(blk.q, row(out[l]!.q))).toBeLessThan(1e-5);
        expect(maxDiff(blk.k, row(out[l]!.k))).toBeLessThan(1e-5);
        expect(maxDiff(blk.v, row(out[l]!.v))).toBeLessThan(1e-5);
      }
    }
    for (const x of out) tf.dispose([x.q, x.k, x.v]);
    const wk = model.namedVariables()['blocks.0.attn.wk']!;
    const { value, grads } = tf.variableGrads(() => {
      const [blk] = model.attentionKV(a, 1, 7, [0]);
      return tf.sum(tf.square(blk!.k)) as tf.Scalar;
    }, [wk]);
    expect(tf.norm(grads[wk.name]!).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([value, grads[wk.name]!]);
    expect(() => model.attentionKV(a, 2, 7, [0])).toThrow(ShapeError);
    expect(() => model.attentionKV(a, 1, 7, [3])).toThrow(/blocks/);
    expect(() => model.attentionKV(a, 1, 7, [])).toThrow(/blocks/);
    expect(() => model.attentionKV([...a.slice(0, 6), V], 1, 7, [0])).toThrow(/ids/);
  });
});

describe('generate with memory', () => {
  it('refreshes every `every` tokens (prompt chunks by their own text, then the chunk before) and matches the chunked forward', () => {
    const codec: TextCodec = {
      bosId: 0,
      eosId: 60,
      encode: (s) => [...s].map((c) => c.charCodeAt(0) - 64),
      decode: (x) => x.map((i) => String.fromCharCode(i + 64)).join(''),
    };
    const prompt = 'ABCDEFGHIJ'; // 10 tokens: chunks of 4 → [0,4) [4,8) [8,12)…
    const spans: number[][] = [];
    const mems: { k: tf.Tensor3D; v: tf.Tensor3D }[] = [];
    const fake = {
      every: 4,
      refresh: (tokens: number[]) => {
        spans.push(tokens);
        const m = memory(1 + (spans.length % 3), 100 + spans.length);
        mems.push(m);
        return external([m]);
      },
    };
    const r = generate(model, codec, prompt, { maxTokens: 7, memory: fake });
    const all = [...codec.encode(prompt), ...r.tokens]; // 17 tokens: chunks 0..4
    expect(spans.length).toBe(4); // chunks starting at 0, 4, 8 (prompt), 12 (generated); 16 is the last token, never fed
    expect(spans[0]).toEqual(all.slice(0, 4));
    expect(spans[2]).toEqual(all.slice(8, 10)); // the prompt's last chunk: its own two tokens
    expect(spans[3]).toEqual(all.slice(8, 12)); // a generated chunk: the 4 tokens before it
    const full = logitsOf(all.slice(0, 16), external(mems, { chunk: 4 }));
    for (let t = 9; t < 16; t++) {
      let best = 0;
      for (let i = 1; i < V; i++) if (full[t * V + i]! > full[t * V + best]!) best = i;
      if (best === 60) break;
      expect(all[t + 1]).toBe(best);
    }
    tf.dispose(mems.flatMap((m) => [m.k, m.v]));
  });
});
