/**
 * The Memory³ reader (docs/design.md §4.6): retrieve references for a 64-token span, decode
 * their memories into per-block tensors, and hand them to the model as its `ExternalKV`.
 *
 *   retrieve(span)   e = embed(span); hits = bank.search(e, 5)
 *   per block l:     k = [K_1 | … | K_5]   [Hkv, Σ n_i (≤ 5·8), dh], same for v
 *   contextStart 128: all memories share the interval [0, 128) of their references
 *
 * Decoded tensors live in an LRU cache in RAM (kept outside tf.tidy, disposed on eviction).
 * `session()` is the per-completion object `generate({ memory })` drives: it records the ids
 * each 64-token chunk read (the server reports them).
 */
import { ConfigError, ShapeError } from '@mnemo/core';
import * as tf from '@tensorflow/tfjs-core';
import { embedTokens } from './embed';
import { type Memory3Options, type MemoryHost, type MemoryKV, REFERENCE_POSITIONS, type ResolvedMemory3, resolveOptions } from './host';
import type { MemoryBank, MemoryHit } from './types';

export interface ReaderOptions extends Memory3Options {
  /** references retrieved per chunk (default 5) */
  topK?: number;
  /** tokens per chunk (default 64) */
  every?: number;
  /** decoded memories kept in RAM (default 256) */
  cacheSize?: number;
  /** hits below this cosine are not read (default −1: all) */
  minScore?: number;
}

/** concatenated id lists kept for decoding */
const JOINED = 4;

interface Decoded {
  k: tf.Tensor3D[]; // per memory block [Hkv, n, dh]
  v: tf.Tensor3D[];
}

/**
 * One ExternalKV for a batched decode step (`decodeBatch(tokens, caches, { external })`): row b
 * reads rows[b]'s current memories (undefined: none). Every row's cache must have been started
 * with the same contextStart (128 for sequences that read memories).
 */
export function batchExternal(rows: (MemoryKV | undefined)[], contextStart = REFERENCE_POSITIONS): MemoryKV {
  const blocks = [...new Set(rows.flatMap((r) => r?.blocks ?? []))].sort((a, b) => a - b);
  return { blocks, contextStart, get: (block, row) => (rows[row]?.blocks.includes(block) ? rows[row]!.get(block, 0, 0) : undefined) };
}

/** What one completion read: per chunk fed, the memory ids it attended to. */
export class MemorySession {
  readonly chunks: number[][] = [];
  constructor(
    private readonly reader: MemoryReader,
    readonly every: number,
  ) {}

  /** Memories for the next chunk, retrieved by `tokens` (generate calls this every `every` tokens). */
  refresh(tokens: number[]): MemoryKV {
    const ids = this.reader.retrieve(tokens).map((h) => h.id);
    this.chunks.push(ids);
    return this.reader.external(ids);
  }

  /** The distinct memory ids read, in first-read order. */
  get references(): number[] {
    return [...new Set(this.chunks.flat())];
  }
}

export class MemoryReader {
  readonly options: ResolvedMemory3;
  readonly topK: number;
  readonly every: number;
  private readonly cacheSize: number;
  private readonly minScore: number;
  private readonly cache = new Map<number, Decoded>(); // LRU: oldest first
  /** concatenated memories of recent id lists (decoding reads the same ones for 64 steps) */
  private readonly joined = new Map<string, Decoded>();

  constructor(
    private readonly host: MemoryHost,
    readonly bank: MemoryBank,
    opts: ReaderOptions,
  ) {
    this.options = resolveOptions(host, opts);
    const { kvHeads, dim, heads } = host.config;
    const s = bank.shape;
    if (s.layers !== this.options.blocks.length || s.kvHeads !== kvHeads || s.headDim !== dim / heads || s.tokens !== this.options.tokens)
      throw new ShapeError(
        'bank.shape',
        `${JSON.stringify(s)} does not fit the model's ${this.options.blocks.length} memory blocks × ${kvHeads} KV heads × ${this.options.tokens} tokens × dh ${dim / heads}`,
      );
    if (bank.embedDim !== dim) throw new ShapeError('bank.embedDim', `is ${bank.embedDim}; the model's embeddings have ${dim} dims`);
    this.topK = opts.topK ?? 5;
    this.every = opts.every ?? 64;
    this.cacheSize = opts.cacheSize ?? 256;
    this.minScore = opts.minScore ?? -1;
    for (const [field, v] of [
      ['topK', this.topK],
      ['every', this.every],
      ['cacheSize', this.cacheSize],
    ] as const)
      if (!Number.isInteger(v) || v < 1) throw new ConfigError(field, `must be an integer ≥ 1, got ${v}`);
  }

  /** The best `topK` memories for a span of tokens (a chunk's own text, or the previous 64 tokens). */
  retrieve(tokens: number[]): MemoryHit[] {
    if (tokens.length === 0 || this.bank.size === 0) return [];
    const e = embedTokens(this.host, tokens, this.options);
    return this.bank.search(e, this.topK).filter((h) => h.score >= this.minScore);
  }

  /**
   * The current memories `ids` as the model's ExternalKV (cached decoding: row 0, chunk 0). Their
   * per-block concatenation is built once and kept (the last few id lists), not per decode step.
   */
  external(ids: number[]): MemoryKV {
    this.load(ids);
    const key = ids.join(',');
    // drop the oldest concatenations here, outside any forward (a forward only adds)
    for (const [k, old] of this.joined) {
      if (this.joined.size < JOINED) break;
      if (k === key) continue;
      tf.dispose([...old.k, ...old.v]);
      this.joined.delete(k);
    }
    return {
      blocks: this.options.blocks,
      contextStart: REFERENCE_POSITIONS,
      get: (block) => {
        const l = this.options.blocks.indexOf(block);
        if (l < 0 || ids.length === 0) return undefined;
        const j = this.joinedOf(key, ids);
        return { k: j.k[l]!, v: j.v[l]! };
      },
    };
  }

  /** Per-row, per-chunk memories for forward / loss: table[row][chunk] = ids (training, scoring). */
  chunked(table: number[][][], chunk = this.every): MemoryKV {
    this.load(table.flat(2));
    return {
      blocks: this.options.blocks,
      contextStart: REFERENCE_POSITIONS,
      chunk,
      get: (block, row, c) => this.concat(table[row]?.[c] ?? [], block),
    };
  }

  /** A fresh per-completion session: pass it as generate's `memory` option. */
  session(): MemorySession {
    return new MemorySession(this, this.every);
  }

  /** Forget the decoded tensors of `id` (after the bank deleted or replaced it). */
  evict(id: number): void {
    const d = this.cache.get(id);
    if (d) tf.dispose([...d.k, ...d.v]);
    this.cache.delete(id);
  }

  dispose(): void {
    for (const id of [...this.cache.keys()]) this.evict(id);
    for (const j of this.joined.values()) tf.dispose([...j.k, ...j.v]);
    this.joined.clear();
  }

  /** The kept per-block concatenation of `ids` (external() drops the oldest beyond JOINED). */
  private joinedOf(key: string, ids: number[]): Decoded {
    const hit = this.joined.get(key);
    if (hit) return hit;
    const j: Decoded = tf.tidy(() => {
      const ds = ids.map((id) => this.decoded(id));
      const cat = (ts: tf.Tensor3D[]) => tf.keep(ts.length === 1 ? (tf.clone(ts[0]!) as tf.Tensor3D) : (tf.concat(ts, 1) as tf.Tensor3D));
      return {
        k: this.options.blocks.map((_, l) => cat(ds.map((d) => d.k[l]!))),
        v: this.options.blocks.map((_, l) => cat(ds.map((d) => d.v[l]!))),
      };
    });
    this.joined.set(key, j);
    return j;
  }

  /** Decoded memories in RAM. */
  get cached(): number {
    return this.cache.size;
  }

  /** [Hkv, Σ n, dh] of the ids at one block (inside the caller's tidy), undefined when none. */
  private concat(ids: number[], block: number): { k: tf.Tensor3D; v: tf.Tensor3D } | undefined {
    const l = this.options.blocks.indexOf(block);
    if (l < 0 || ids.length === 0) return undefined;
    const ds = ids.map((id) => this.decoded(id));
    if (ds.length === 1) return { k: ds[0]!.k[l]!, v: ds[0]!.v[l]! };
    return {
      k: tf.concat(
        ds.map((d) => d.k[l]!),
        1,
      ) as tf.Tensor3D,
      v: tf.concat(
        ds.map((d) => d.v[l]!),
        1,
      ) as tf.Tensor3D,
    };
  }

  /** Decode `ids` into the cache, then evict the least recently used beyond cacheSize (never these). */
  private load(ids: number[]): void {
    const keep = new Set(ids);
    for (const id of keep) this.decoded(id);
    for (const id of this.cache.keys()) {
      if (this.cache.size <= this.cacheSize) break;
      if (!keep.has(id)) this.evict(id);
    }
  }

  private decoded(id: number): Decoded {
    const hit = this.cache.get(id);
    if (hit) {
      this.cache.delete(id); // move to the newest end
      this.cache.set(id, hit);
      return hit;
    }
    const m = this.bank.get(id);
    const { layers: L, kvHeads: Hk, tokens: M, headDim: dh } = m.memory.shape;
    const n = Math.min(m.tokens, M); // short references were zero-padded
    const d: Decoded = { k: [], v: [] };
    for (let l = 0; l < L; l++) {
      for (const [kind, out] of [
        [0, d.k],
        [1, d.v],
      ] as const) {
        const a = new Float32Array(Hk * n * dh);
        for (let g = 0; g < Hk; g++) {
          const src = ((l * 2 + kind) * Hk + g) * M * dh;
          a.set(m.memory.kv.subarray(src, src + n * dh), g * n * dh);
        }
        out.push(tf.keep(tf.tensor3d(a, [Hk, n, dh])));
      }
    }
    this.cache.set(id, d);
    return d;
  }
}
