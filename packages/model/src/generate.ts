/**
 * Text generation with the KV cache: greedy (temperature 0), temperature and nucleus (top-p)
 * sampling, stop sequences, abort signals, streaming. Seeded by mulberry32: the same seed gives
 * the same text.
 */
import { ConfigError, mulberry32 } from '@mnemo/core';
import type { ExternalKV } from './extensions';
import type { LanguageModel } from './model';

/**
 * Memory³ reading during generation (docs/design.md §4.6): every `every` tokens the current
 * memories are dropped and `refresh` retrieves new ones. A prompt chunk retrieves with its own
 * tokens; a chunk of generated tokens with the `every` tokens before it. Keep one contextStart
 * across the refreshes of a completion (the cache's positions depend on it).
 */
export interface GenerateMemory {
  /** tokens per chunk (64) */
  readonly every: number;
  refresh(tokens: number[]): ExternalKV;
}

/** What generate needs of a tokenizer (BpeTokenizer has it). */
export interface TextCodec {
  readonly bosId: number;
  readonly eosId: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
}

export interface GenerateOptions {
  /** new tokens at most */
  maxTokens: number;
  /** 0 = greedy (default 0) */
  temperature?: number;
  /** nucleus sampling mass in (0, 1] (default 1: the whole distribution) */
  topP?: number;
  /** stop when the text contains one of these; the text is cut before it */
  stop?: string[];
  /** RNG seed (default: a random one) */
  seed?: number;
  signal?: AbortSignal;
  /** streaming: called per generated token with its new text ('' while held back); the pieces concatenate to `text` */
  onToken?: (text: string, id: number) => void;
  /** Memory³ explicit memories (e.g. a @mnemo/memory3 MemoryReader's session()) */
  memory?: GenerateMemory;
}

export interface GenerateResult {
  text: string;
  /** the generated ids (the EOS token excluded; the token completing a stop sequence included) */
  tokens: number[];
  /** tokens fed as the prompt (after left-truncation to maxSeqLen; an empty prompt feeds BOS) */
  promptTokens: number;
  finishReason: 'stop' | 'length' | 'abort';
}

/**
 * Continue `prompt`. Ends on EOS or a stop sequence ('stop'), after maxTokens or when the
 * context reaches maxSeqLen ('length'), or when `signal` aborts ('abort').
 */
export function generate(model: LanguageModel, tokenizer: TextCodec, prompt: string, opts: GenerateOptions): GenerateResult {
  const temperature = opts.temperature ?? 0;
  const topP = opts.topP ?? 1;
  checkSampling(temperature, topP);
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) {
    throw new ConfigError('maxTokens', `must be an integer ≥ 0, got ${opts.maxTokens}`);
  }
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  const rng = mulberry32(opts.seed ?? Math.floor(Math.random() * 2 ** 32));
  const maxLen = model.config.maxSeqLen;
  let ids = tokenizer.encode(prompt);
  if (ids.length === 0) ids = [tokenizer.bosId];
  if (ids.length > maxLen) ids = ids.slice(ids.length - maxLen); // keep the end of a long prompt
  const result: GenerateResult = { text: '', tokens: [], promptTokens: ids.length, finishReason: 'length' };
  if (opts.signal?.aborted) return { ...result, finishReason: 'abort' };

  const cache = model.newCache();
  let emitted = 0; // characters of result.text handed to onToken
  const emit = (upTo: number, id: number) => {
    if (!opts.onToken) return;
    opts.onToken(result.text.slice(emitted, Math.max(emitted, upTo)), id);
    emitted = Math.max(emitted, upTo);
  };
  const mem = opts.memory;
  if (mem && !(Number.isInteger(mem.every) && mem.every >= 1))
    throw new ConfigError('memory.every', `must be an integer ≥ 1, got ${mem.every}`);
  let external: ExternalKV | undefined;
  /** feed tokens at the cache's end, refreshing memories at chunk starts */
  const feed = (tokens: number[]): Float32Array => {
    if (!mem) return model.prefill(tokens, cache);
    let logits: Float32Array | undefined;
    let i = 0;
    while (i < tokens.length) {
      const p = cache.length;
      const end = i + Math.min(tokens.length - i, mem.every - (p % mem.every));
      if (p % mem.every === 0 || !external) {
        // a prompt chunk reads memories of its own text; a generated chunk those of the chunk before
        const own = p < ids.length;
        external = mem.refresh(own ? tokens.slice(i, end) : [...ids, ...result.tokens].slice(Math.max(0, p - mem.every), p));
      }
      logits = model.prefill(tokens.slice(i, end), cache, { external });
      i = end;
    }
    return logits!;
  };
  try {
    let logits = feed(ids);
    while (result.tokens.length < opts.maxTokens) {
      if (opts.signal?.aborted) {
        result.finishReason = 'abort';
        break;
      }
      const id = sampleToken(logits, { temperature, topP }, rng);
      if (id === tokenizer.eosId) {
        result.finishReason = 'stop';
        break;
      }
      result.tokens.push(id);
      result.text = tokenizer.decode(result.tokens);
      const cut = firstStop(result.text, stops);
      if (cut >= 0) {
        result.text = result.text.slice(0, cut);
        result.finishReason = 'stop';
        emit(cut, id);
        break;
      }
      emit(safeEnd(result.text, stops), id);
      if (result.tokens.length >= opts.maxTokens) break;
      if (cache.length >= maxLen) break; // context full: 'length'
      logits = feed([id]);
    }
  } finally {
    cache.dispose();
  }
  if (emitted < result.text.length) emit(result.text.length, result.tokens[result.tokens.length - 1] ?? -1);
  return result;
}

/**
 * Pick a token from logits [V]: argmax when temperature is 0 (lowest id on ties); otherwise
 * sample softmax(logits / temperature) restricted to the smallest top set of mass ≥ topP.
 */
export function sampleToken(logits: Float32Array, opts: { temperature: number; topP: number }, rng: () => number): number {
  checkSampling(opts.temperature, opts.topP);
  const V = logits.length;
  let best = 0;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) {
    if (logits[i]! > max) {
      max = logits[i]!;
      best = i;
    }
  }
  if (opts.temperature === 0 || max === Number.NEGATIVE_INFINITY || Number.isNaN(max)) return best;
  const p = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const l = logits[i]!;
    p[i] = Number.isNaN(l) ? 0 : Math.exp((l - max) / opts.temperature);
    sum += p[i]!;
  }
  let order: ArrayLike<number> | undefined;
  let n = V;
  let mass = sum;
  if (opts.topP < 1) {
    const idx = Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    mass = 0;
    n = 0;
    while (n < V && mass < opts.topP * sum) mass += p[idx[n++]!]!;
    order = idx;
  }
  let r = rng() * mass;
  for (let j = 0; j < n; j++) {
    const i = order ? order[j]! : j;
    r -= p[i]!;
    if (r < 0) return i;
  }
  // rounding: the last token with mass
  for (let j = n - 1; j >= 0; j--) {
    const i = order ? order[j]! : j;
    if (p[i]! > 0) return i;
  }
  return best;
}

function checkSampling(temperature: number, topP: number): void {
  if (!(Number.isFinite(temperature) && temperature >= 0))
    throw new ConfigError('temperature', `must be a finite number ≥ 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new ConfigError('topP', `must be in (0, 1], got ${topP}`);
}

/** Index of the earliest stop sequence in text, or −1. */
function firstStop(text: string, stops: string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** How much of text may be streamed: hold back a trailing U+FFFD (an unfinished UTF-8 char) and any suffix that may begin a stop sequence. */
function safeEnd(text: string, stops: string[]): number {
  let limit = text.length;
  while (limit > 0 && text[limit - 1] === '\uFFFD') limit--;
  let hold = 0;
  for (const s of stops) {
    for (let len = Math.min(s.length - 1, limit); len > hold; len--) {
      if (text.endsWith(s.slice(0, len), limit)) {
        hold = len;
        break;
      }
    }
  }
  return limit - hold;
}
