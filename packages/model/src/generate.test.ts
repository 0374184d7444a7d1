import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from './config';
import { type TextCodec, generate, sampleToken } from './generate';
import { LanguageModel } from './model';
import { mulberry32 } from '@mnemo/core';

/** A character codec: 62 letters/digits, then BOS = 62, EOS = 63. */
const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const codec: TextCodec = {
  bosId: 62,
  eosId: 63,
  encode: (s) => [...s].map((c) => CHARS.indexOf(c)),
  decode: (ids) => ids.map((i) => CHARS[i] ?? '').join(''),
};

let model: LanguageModel;

beforeAll(async () => {
  await initBackend({ log: false });
  model = new LanguageModel(
    parseModelConfig({ vocabSize: 64, dim: 32, layers: 2, heads: 4, kvHeads: 2, maxSeqLen: 32, ffnHidden: 64, seed: 3 }),
  );
  // make the EOS token impossible, so runs reach their length limits
  const emb = model.namedVariables().tok_emb!;
  emb.assign(tf.tidy(() => tf.concat([tf.slice(emb, [0, 0], [63, 32]), tf.mul(tf.slice(emb, [63, 0], [1, 32]), 0)])));
});

function argmax(a: Float32Array): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[b]!) b = i;
  return b;
}

describe('generate', () => {
  it('greedy equals the argmax of a full recomputation at every step', () => {
    const r = generate(model, codec, 'hello', { maxTokens: 12 });
    expect(r.tokens.length).toBe(12);
    expect(r.finishReason).toBe('length');
    expect(r.promptTokens).toBe(5);
    const ids = codec.encode('hello');
    for (const tok of r.tokens) {
      const logits = tf.tidy(() => {
        const { logits } = model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
        return tf.slice(logits, [0, ids.length - 1, 0], [1, 1, 64]).dataSync() as Float32Array;
      });
      expect(tok).toBe(argmax(logits));
      ids.push(tok);
    }
    expect(r.text).toBe(codec.decode(r.tokens));
  });

  it('stop sequences cut the text before them; streamed pieces add up to the text', () => {
    const full = generate(model, codec, 'abc', { maxTokens: 16, temperature: 1, seed: 5 });
    const stop = full.text.slice(6, 8);
    const at = full.text.indexOf(stop);
    const pieces: string[] = [];
    const r = generate(model, codec, 'abc', {
      maxTokens: 16,
      temperature: 1,
      seed: 5,
      stop: ['zzzzzz', stop],
      onToken: (t) => pieces.push(t),
    });
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(full.text.slice(0, at));
    expect(r.text.includes(stop)).toBe(false);
    expect(pieces.join('')).toBe(r.text);
    expect(pieces.length).toBe(r.tokens.length);
  });

  it('same seed → same sample; another seed → another sample', () => {
    const opts = { maxTokens: 16, temperature: 1.5, topP: 0.95 };
    const a = generate(model, codec, 'xy', { ...opts, seed: 1 });
    const b = generate(model, codec, 'xy', { ...opts, seed: 1 });
    const c = generate(model, codec, 'xy', { ...opts, seed: 2 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('stops at the context limit, on abort, and on EOS', () => {
    const long = generate(model, codec, 'a'.repeat(28), { maxTokens: 50 });
    expect(long.finishReason).toBe('length');
    expect(long.promptTokens + long.tokens.length).toBe(33); // the last token is sampled but not fed
    const ctl = new AbortController();
    const ab = generate(model, codec, 'ab', { maxTokens: 50, onToken: () => ctl.abort(), signal: ctl.signal });
    expect(ab.finishReason).toBe('abort');
    expect(ab.tokens.length).toBe(1);
    const tooLong = generate(model, codec, 'b'.repeat(40), { maxTokens: 2 });
    expect(tooLong.promptTokens).toBe(32); // the end of a long prompt
    const cache = model.newCache();
    const eosCodec = { ...codec, eosId: argmax(model.prefill([0], cache)) };
    cache.dispose();
    const eos = generate(model, eosCodec, 'a', { maxTokens: 5 });
    expect(eos.finishReason).toBe('stop');
    expect(eos.tokens).toEqual([]);
  });
});

describe('sampleToken', () => {
  const logits = Float32Array.from([1, 3, 2, 0.5, 3]);

  it('temperature 0 is argmax (lowest id on ties); a tiny topP keeps only the best', () => {
    const rng = mulberry32(1);
    expect(sampleToken(logits, { temperature: 0, topP: 1 }, rng)).toBe(1);
    for (let i = 0; i < 20; i++) expect([1, 4]).toContain(sampleToken(logits, { temperature: 1, topP: 0.01 }, rng));
  });

  it('samples softmax(logits / T) restricted to the top-p set', () => {
    const rng = mulberry32(2);
    const n = 20000;
    const count = new Array(5).fill(0);
    for (let i = 0; i < n; i++) count[sampleToken(logits, { temperature: 2, topP: 1 }, rng)]++;
    const e = Array.from(logits, (l) => Math.exp(l / 2));
    const z = e.reduce((a, b) => a + b);
    e.forEach((p, i) => expect(count[i] / n).toBeCloseTo(p / z, 1));
    // topP 0.75 at T = 1: probabilities ≈ [.07, .39, .14, .03, .39] → keeps ids 1, 4 (0.78)
    const kept = new Set<number>();
    for (let i = 0; i < 2000; i++) kept.add(sampleToken(logits, { temperature: 1, topP: 0.75 }, rng));
    expect([...kept].sort()).toEqual([1, 4]);
  });

  it('rejects bad options naming the field', () => {
    expect(() => sampleToken(logits, { temperature: -1, topP: 1 }, Math.random)).toThrow(/^temperature:/);
    expect(() => sampleToken(logits, { temperature: 1, topP: 0 }, Math.random)).toThrow(/^topP:/);
  });
});
