/**
 * Byte-level BPE (Sennrich et al. 2016, byte-level as in GPT-2), trained from the corpus.
 *
 * Text → UTF-8 bytes → ids 0..255; merges learned on the training text add ids 256, 257, …;
 * two specials follow (<|bos|>, <|eos|>). Before merging, text is split into pieces (a word
 * with its leading space, a number, a punctuation run, whitespace) and merges never cross a
 * piece boundary. Every string round-trips: decode(encode(s)) equals s after UTF-8 encoding
 * (lone UTF-16 surrogates are not UTF-8; TextEncoder turns them into U+FFFD).
 *
 * Why not an npm tokenizer: `tokenizers` (the HF bindings) trains BPE but its JS API cannot set
 * the vocabulary size, and `js-tiktoken` only loads fixed vocabularies; both would also add a
 * format the checkpoint would have to validate. This file is ~250 lines and fully tested.
 */
import { readFileSync } from 'node:fs';
import { CheckpointError, ConfigError, writeFileAtomic } from '@mnemo/core';

const FORMAT = 'mnemo-bpe';
const VERSION = 1;
const SPECIALS = ['<|bos|>', '<|eos|>'] as const;

/** Pieces merges stay within: contractions, words, numbers, punctuation runs, whitespace. */
const PIECE = /'(?:s|t|re|ve|m|ll|d)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();

/**
 * Whether `text` certainly has more than `maxTokens` tokens for a tokenizer whose longest token
 * is `maxTokenBytes` bytes, from its UTF-8 length (each UTF-16 unit is at most 3 bytes, at least
 * 1, so the check is O(1) for texts far over or under the bound and one linear pass otherwise).
 */
export function exceedsTokens(text: string, maxTokens: number, maxTokenBytes: number): boolean {
  const maxBytes = maxTokens * maxTokenBytes;
  if (text.length > maxBytes) return true; // ≥ 1 byte per UTF-16 unit
  if (text.length * 3 <= maxBytes) return false;
  return Buffer.byteLength(text, 'utf8') > maxBytes;
}
const decoder = new TextDecoder('utf-8', { fatal: false });

/** a pair of ids as one number key (ids < 2^21) */
const key = (a: number, b: number) => a * 2097152 + b;

export interface TrainOptions {
  /** total vocabulary: 256 bytes + merges + 2 specials (fewer merges if the corpus runs out of pairs) */
  vocabSize: number;
  onProgress?: (merges: number, total: number) => void;
}

export class BpeTokenizer {
  /** merges[i] = [a, b] makes id 256 + i */
  readonly merges: ReadonlyArray<readonly [number, number]>;
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
  private readonly ranks = new Map<number, number>(); // pair key → merge index
  private readonly bytes: Uint8Array[]; // id → its bytes
  private readonly cache = new Map<string, number[]>();
  /** the longest token, in bytes: a text of B UTF-8 bytes has at least ceil(B / maxTokenBytes) tokens */
  readonly maxTokenBytes: number;

  constructor(merges: ReadonlyArray<readonly [number, number]>) {
    this.merges = merges;
    this.bytes = Array.from({ length: 256 }, (_, i) => Uint8Array.of(i));
    for (const [i, [a, b]] of merges.entries()) {
      const id = 256 + i;
      if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0 || a >= id || b >= id) {
        throw new ConfigError(`merges[${i}]`, `must be two ids below ${id}, got [${a}, ${b}]`);
      }
      this.ranks.set(key(a, b), i);
      const x = this.bytes[a]!;
      const y = this.bytes[b]!;
      const xy = new Uint8Array(x.length + y.length);
      xy.set(x);
      xy.set(y, x.length);
      this.bytes.push(xy);
    }
    this.maxTokenBytes = this.bytes.reduce((m, b) => Math.max(m, b.length), 1);
    this.bosId = 256 + merges.length;
    this.eosId = this.bosId + 1;
    this.vocabSize = this.eosId + 1;
  }

  /** Learn merges from `texts` until the vocabulary has `vocabSize` ids. */
  static train(texts: Iterable<string>, opts: TrainOptions): BpeTokenizer {
    const { vocabSize } = opts;
    if (!Number.isInteger(vocabSize) || vocabSize < 256 + SPECIALS.length || vocabSize > 2097152) {
      throw new ConfigError('vocabSize', `must be an integer in [${256 + SPECIALS.length}, 2097152], got ${vocabSize}`);
    }
    // 1. word counts
    const counts = new Map<string, number>();
    for (const text of texts) {
      for (const m of text.matchAll(PIECE)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
    const words: number[][] = []; // each unique piece as ids
    const freq: number[] = [];
    for (const [w, c] of counts) {
      words.push(Array.from(encoder.encode(w)));
      freq.push(c);
    }
    // 2. pair counts and where each pair occurs
    const pairCount = new Map<number, number>();
    const where = new Map<number, Set<number>>();
    const addPairs = (wi: number, sign: number) => {
      const w = words[wi]!;
      for (let i = 0; i + 1 < w.length; i++) {
        const k = key(w[i]!, w[i + 1]!);
        const c = (pairCount.get(k) ?? 0) + sign * freq[wi]!;
        if (c > 0) pairCount.set(k, c);
        else pairCount.delete(k);
        if (sign > 0) {
          const s = where.get(k);
          if (s) s.add(wi);
          else where.set(k, new Set([wi]));
        }
      }
    };
    for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);
    // 3. merge the most frequent pair (ties: the smallest pair key) until the vocabulary is full
    const total = vocabSize - 256 - SPECIALS.length;
    const merges: [number, number][] = [];
    while (merges.length < total) {
      let best = -1;
      let bestCount = 1; // a pair seen once is not worth a token
      for (const [k, c] of pairCount) {
        if (c > bestCount || (c === bestCount && best >= 0 && k < best)) {
          best = k;
          bestCount = c;
        }
      }
      if (best < 0) break;
      const a = Math.floor(best / 2097152);
      const b = best % 2097152;
      const id = 256 + merges.length;
      merges.push([a, b]);
      for (const wi of where.get(best) ?? []) {
        const w = words[wi]!;
        let has = false;
        for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) has = true;
        if (!has) continue; // stale entry: an earlier merge consumed the pair
        addPairs(wi, -1);
        const out: number[] = [];
        for (let i = 0; i < w.length; i++) {
          if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
            out.push(id);
            i++;
          } else out.push(w[i]!);
        }
        words[wi] = out;
        addPairs(wi, 1);
      }
      pairCount.delete(best);
      where.delete(best);
      opts.onProgress?.(merges.length, total);
    }
    return new BpeTokenizer(merges);
  }

  /** Token ids of `text` (no specials added). */
  encode(text: string): number[] {
    return this.encodeUpTo(text, Number.POSITIVE_INFINITY)!;
  }

  /**
   * Token ids of `text` if it has at most `maxTokens` of them, else null — with the work bounded
   * before it starts: a text whose UTF-8 length alone proves it too long is not encoded at all,
   * a piece (word) is encoded only if its length leaves room for it, and encoding stops as soon
   * as the count passes `maxTokens`. So the cost is O(maxTokens × maxTokenBytes) however long
   * the text (a server's prompt limit, checked before a megabyte of one word is merged).
   */
  encodeUpTo(text: string, maxTokens: number): number[] | null {
    if (exceedsTokens(text, maxTokens, this.maxTokenBytes)) return null;
    const out: number[] = [];
    for (const m of text.matchAll(PIECE)) {
      const piece = m[0];
      let ids = this.cache.get(piece);
      if (!ids) {
        // a piece of B bytes is at least ceil(B / maxTokenBytes) tokens (piece.length ≤ B)
        if (out.length + Math.ceil(piece.length / this.maxTokenBytes) > maxTokens) return null;
        ids = this.encodePiece(encoder.encode(piece));
        // short pieces only: a long unique word would pin its memory for the process's life
        if (this.cache.size < 100_000 && piece.length <= 64) this.cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
      if (out.length > maxTokens) return null;
    }
    return out;
  }

  /** Apply merges in rank order: repeatedly merge the adjacent pair learned first. */
  private encodePiece(bytes: Uint8Array): number[] {
    let w = Array.from(bytes);
    while (w.length > 1) {
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < w.length; i++) {
        const r = this.ranks.get(key(w[i]!, w[i + 1]!));
        if (r !== undefined && r < bestRank) bestRank = r;
      }
      if (bestRank === Number.POSITIVE_INFINITY) break;
      const [a, b] = this.merges[bestRank]!;
      const id = 256 + bestRank;
      const next: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(w[i]!);
      }
      w = next;
    }
    return w;
  }

  /** The bytes of `ids` as UTF-8 text (specials decode to nothing; invalid bytes to U+FFFD). */
  decode(ids: ArrayLike<number>): string {
    return decoder.decode(this.decodeBytes(ids));
  }

  /** The raw bytes of `ids` (streaming callers decode them incrementally). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let n = 0;
    for (let i = 0; i < ids.length; i++) n += this.tokenBytes(ids[i]!).length;
    const out = new Uint8Array(n);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.tokenBytes(ids[i]!);
      out.set(b, o);
      o += b.length;
    }
    return out;
  }

  private tokenBytes(id: number): Uint8Array {
    if (id === this.bosId || id === this.eosId) return new Uint8Array(0);
    const b = this.bytes[id];
    if (!b) throw new ConfigError('ids', `token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    return b;
  }

  toJSON(): { format: string; version: number; specials: string[]; merges: [number, number][] } {
    return { format: FORMAT, version: VERSION, specials: [...SPECIALS], merges: this.merges.map(([a, b]) => [a, b]) };
  }

  static fromJSON(json: unknown): BpeTokenizer {
    const o = json as { format?: unknown; version?: unknown; specials?: unknown; merges?: unknown } | null;
    if (!o || typeof o !== 'object' || o.format !== FORMAT || o.version !== VERSION) {
      throw new CheckpointError('tokenizer.json', `not a ${FORMAT} v${VERSION} tokenizer (format/version fields)`);
    }
    if (!Array.isArray(o.specials) || o.specials.join() !== SPECIALS.join()) {
      throw new CheckpointError('tokenizer.json', `specials must be ${JSON.stringify(SPECIALS)}`);
    }
    if (!Array.isArray(o.merges) || !o.merges.every((m) => Array.isArray(m) && m.length === 2)) {
      throw new CheckpointError('tokenizer.json', 'merges must be an array of [id, id] pairs');
    }
    try {
      return new BpeTokenizer(o.merges as [number, number][]);
    } catch (e) {
      throw new CheckpointError('tokenizer.json', (e as Error).message);
    }
  }

  /** Write the tokenizer as JSON, atomically (temp file + rename). */
  save(file: string): void {
    writeFileAtomic(file, `${JSON.stringify(this.toJSON())}\n`);
  }

  static load(file: string): BpeTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new CheckpointError(file, `cannot read tokenizer JSON: ${(e as Error).message}`);
    }
    return BpeTokenizer.fromJSON(json);
  }
}
