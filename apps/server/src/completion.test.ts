import { describe, expect, it } from 'vitest';
import { Completion } from './completion';

const enc = (s: string) => [...new TextEncoder().encode(s)];
const dec = (ids: number[]) => new TextDecoder().decode(new Uint8Array(ids));

/** Push every token of `ids`, return the deltas and the completion. */
function run(ids: number[], stop: string[], maxTokens = 1000, eos = -1) {
  const c = new Completion(dec, stop, eos, maxTokens);
  const deltas: string[] = [];
  for (const id of ids) {
    deltas.push(c.push(id));
    if (c.done) break;
  }
  return { c, deltas };
}

describe('Completion', () => {
  it('releases multi-byte characters only when complete, and deltas add up to the text', () => {
    const text = 'a€😀b中';
    const { c, deltas } = run(enc(text), [], enc(text).length);
    expect(c.finishReason).toBe('length');
    expect(deltas.join('')).toBe(text);
    expect(deltas.every((d) => !d.includes('\ufffd'))).toBe(true);
    // the euro sign takes 3 bytes: nothing is released for its first two
    expect(deltas.slice(1, 4)).toEqual(['', '', '€']);
  });

  it('cuts at the first stop sequence and never streams a part of it', () => {
    const { c, deltas } = run(enc('hello END world'), ['END', 'wor']);
    expect(c.text).toBe('hello ');
    expect(c.finishReason).toBe('stop');
    expect(deltas.join('')).toBe('hello ');
    // "E" and "EN" were held back while they could still become "END"
    expect(deltas.some((d) => d.includes('E'))).toBe(false);
  });

  it('releases a held-back stop prefix once it cannot become the stop sequence', () => {
    const { c, deltas } = run(enc('abENx'), ['END'], 5);
    expect(c.finishReason).toBe('length');
    expect(deltas).toEqual(['a', 'b', '', '', 'ENx']);
  });

  it('picks the earliest of several stop sequences', () => {
    const { c } = run(enc('xx BB yy AA'), ['AA', 'BB']);
    expect(c.text).toBe('xx ');
  });

  it('stops on the end-of-sequence token, which is counted but not in the text', () => {
    const { c, deltas } = run([...enc('hi'), 999, ...enc('there')], [], 100, 999);
    expect(c.text).toBe('hi');
    expect(c.tokens).toEqual(enc('hi'));
    expect(c.sampled).toBe(3);
    expect(c.finishReason).toBe('stop');
    expect(deltas.join('')).toBe('hi');
  });

  it('finishes with length at max tokens or when the context is full', () => {
    expect(run(enc('abcdef'), [], 3).c.text).toBe('abc');
    const c = new Completion(dec, [], -1, 10);
    c.push(97);
    c.push(98, true);
    expect(c.finishReason).toBe('length');
    expect(() => c.push(99)).toThrow(/after finish/);
  });
});
