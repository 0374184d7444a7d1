/**
 * A deterministic stand-in Engine for scheduler and HTTP-layer tests (no tensors).
 * Tokens are UTF-8 bytes (0..255) plus an end-of-sequence id 256; the "model" puts most
 * probability on a next byte computed from the previous token and the position, so greedy
 * output is predictable and sampling at temperature > 0 really depends on the seed.
 */
import { mulberry32 } from '@mnemo/core';
import type { Engine, EngineCache, EngineInfo, MemoryReads, SamplingParams } from '../engine';
import type { FakeMemories } from './fake-memories';
import type { FakeTeacher } from './fake-teacher';

export class FakeCache implements EngineCache {
  tokens: number[] = [];
  promptLen = -1;
  disposed = false;
  references: number[] = [];
  constructor(private readonly owner: FakeEngine) {
    owner.liveCaches++;
  }
  get length(): number {
    return this.tokens.length;
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.owner.liveCaches--;
  }
}

export interface FakeEngineOptions {
  maxSeqLen?: number;
  /** busy-wait per prefill / decode step, ms (simulates compute) */
  stepMs?: number;
  /** emit the end-of-sequence token after this many generated tokens (default never) */
  eosAfter?: number;
  memoryBlocks?: number[];
  /** busy-wait per memory lookup, ms */
  lookupMs?: number;
  /** a Memory³ knowledge base: each 64-token chunk reads references from it */
  memories?: FakeMemories;
  /** sparse memory finetuning: taught rows override the next-byte peak */
  teacher?: FakeTeacher;
}

export class FakeEngine implements Engine {
  readonly eosId = 256;
  readonly bosId = 10;
  readonly info: EngineInfo;
  liveCaches = 0;
  readonly memories: FakeMemories | undefined;
  readonly teacher: FakeTeacher | undefined;
  readonly batchSizes: number[] = [];
  prefills = 0;

  constructor(private readonly opts: FakeEngineOptions = {}) {
    this.memories = opts.memories;
    this.teacher = opts.teacher;
    this.info = {
      id: 'fake',
      vocabSize: 257,
      maxSeqLen: opts.maxSeqLen ?? 256,
      memoryBlocks: opts.memoryBlocks ?? [1],
      denseParams: 1000,
      memoryParams: 5000,
      flopsPerToken: 2000,
    };
  }

  encode(text: string): number[] {
    return [...new TextEncoder().encode(text)];
  }

  /** calls of encodeUpTo, and the longest text it encoded (bounded-work checks) */
  encodedChars = 0;

  encodeUpTo(text: string, maxTokens: number): number[] | null {
    if (text.length > maxTokens) return null; // ≥ 1 byte per UTF-16 unit
    const ids = this.encode(text);
    this.encodedChars = Math.max(this.encodedChars, text.length);
    return ids.length > maxTokens ? null : ids;
  }

  decode(ids: number[]): string {
    return new TextDecoder().decode(new Uint8Array(ids.filter((i) => i < 256)));
  }

  newCache(): FakeCache {
    return new FakeCache(this);
  }

  prefill(tokens: number[], cache: EngineCache): Float32Array {
    this.prefills++;
    this.spin();
    const c = cache as FakeCache;
    if (c.disposed) throw new Error('prefill on a disposed cache');
    const from = c.length;
    c.tokens.push(...tokens);
    if (c.promptLen < 0) c.promptLen = c.length;
    // every 64-token chunk of the prompt reads references retrieved by its own text
    for (let s = from - (from % 64); s < c.length; s += 64) this.read(c, c.tokens.slice(s, s + 64));
    if (c.length > this.info.maxSeqLen) throw new Error(`cache overflow ${c.length}`);
    return this.logits(c);
  }

  decodeBatch(tokens: number[], caches: EngineCache[]): Float32Array[] {
    this.batchSizes.push(tokens.length);
    this.spin();
    return tokens.map((t, i) => {
      const c = caches[i] as FakeCache;
      if (c.disposed) throw new Error('decode on a disposed cache');
      c.tokens.push(t);
      if (c.length > this.info.maxSeqLen) throw new Error(`cache overflow ${c.length}`);
      if (c.length % 64 === 0) this.read(c, c.tokens.slice(c.length - 64)); // the next chunk reads by this one
      return this.logits(c);
    });
  }

  sample(logits: Float32Array, p: SamplingParams, rng: () => number): number {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    if (p.temperature === 0) return best;
    const w = Array.from(logits, (l) => Math.exp((l - logits[best]!) / p.temperature));
    const sum = w.reduce((a, b) => a + b, 0);
    let u = rng() * sum;
    for (let i = 0; i < w.length; i++) {
      u -= w[i]!;
      if (u <= 0) return i;
    }
    return best;
  }

  rng(seed: number): () => number {
    return mulberry32(seed);
  }

  lookups = 0;

  lookup(tokens: number[]): MemoryReads[] {
    this.lookups++;
    const end = performance.now() + (this.opts.lookupMs ?? 0);
    while (performance.now() < end) {
      /* simulated compute */
    }
    const H = 2;
    const k = 3;
    return this.info.memoryBlocks.map((block) => {
      const ids = new Int32Array(tokens.length * H * k);
      const weights = new Float32Array(tokens.length * H * k);
      tokens.forEach((tok, t) => {
        for (let h = 0; h < H; h++) {
          for (let j = 0; j < k; j++) {
            const o = (t * H + h) * k + j;
            ids[o] = tok * 10 + h * 3 + j + block * 1000;
            weights[o] = [0.2, 0.5, 0.3][j]!;
          }
        }
      });
      return { block, heads: H, topK: k, ids, weights };
    });
  }

  private read(c: FakeCache, chunk: number[]): void {
    for (const id of this.memories?.retrieve(chunk) ?? []) if (!c.references.includes(id)) c.references.push(id);
  }

  numTensors(): number {
    return this.liveCaches;
  }

  dispose(): void {}

  /** Next-token scores: a peak on a byte derived from the last token and the position. */
  private logits(c: FakeCache): Float32Array {
    const n = c.length;
    const last = c.tokens[n - 1]!;
    const out = new Float32Array(257);
    if (this.opts.eosAfter !== undefined && n - c.promptLen >= this.opts.eosAfter) {
      out[this.eosId] = 10;
      return out;
    }
    const next = this.teacher?.rows.get(last) ?? 97 + ((last * 7 + n * 3) % 26); // a..z, or what was taught
    for (let i = 97; i < 123; i++) out[i] = 1 + ((i * 31 + n) % 5) * 0.3;
    out[next] = 4;
    return out;
  }

  private spin(): void {
    const ms = this.opts.stepMs ?? 0;
    if (ms <= 0) return;
    const t = performance.now() + ms;
    while (performance.now() < t) {
      /* simulated compute */
    }
  }
}
