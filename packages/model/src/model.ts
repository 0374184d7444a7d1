/**
 * LanguageModel: a decoder-only transformer (pre-norm, Llama-like) on tfjs.
 *
 *   ids [B, T] → h = E[ids]                              [B, T, D]
 *   each block i:  h += Attention(RMSNorm(h))             causal, RoPE, GQA
 *                  x = RMSNorm(h);  h += FFN_i(x)         a registry kind: dense | moe | memory | memoryPlus
 *                  (+ outputs of skip-layer memories that read block j ≤ i's x and write after block i)
 *   logits = RMSNorm(h) · Eᵀ  (tied)  or  · W_head        [B, T, V]
 *
 * All memories (memory blocks and config.skips) share ONE value pool (`pool`); their values are
 * updated sparsely by the pool's own optimizer during backward, so `trainableVariables()` holds
 * dense tensors only.
 * Incremental decoding keeps per-sequence KV caches; `decodeBatch` decodes several sequences of
 * different lengths at once (per-row positions and masks, caches padded to the longest).
 * Memory³ explicit memories plug in as an `ExternalKV` (extensions.ts, external-kv.ts) on
 * forward/loss and on the cached calls; `captureKV` hands the writer a block's q, k, v.
 */
import { ConfigError, ShapeError, ValueError, subSeed } from '@mnemo/core';
import { type Memory, MemoryPool, type ValuePool } from '@mnemo/memory-layer';
import { valueLrMultiplier } from '@mnemo/ultramem';
import * as tf from '@tensorflow/tfjs-core';
import { Attention, type AttnContext, cachedMask, causalMask } from './attention';
import { type ModelConfig, type ModelConfigInput, parseModelConfig } from './config';
import { EXTERNAL_POSITIONS, type ExternalKV, type SkipLayerMemory } from './extensions';
import { chunkedKvHook, contextStartOf } from './external-kv';
import type { FfnSlot } from './ffn';
import { FFN_REGISTRY, isMemoryKind, memoryKind, poolShapeOf } from './ffn-kinds';
import { type KVCache, ModelKVCache, cachedKvHook } from './kv-cache';
import { gatherRows } from '@mnemo/kernels';
import { crossEntropy, rmsNorm } from './ops';
import { ParamStore } from './params';
import { Rope } from './rope';

/** causal masks kept per sequence length (the first few lengths seen) */
const MASK_CACHE = 8;

interface Block {
  attnNorm: tf.Variable; // [D]
  attn: Attention;
  ffnNorm: tf.Variable; // [D]
  ffn: FfnSlot;
}

export interface LanguageModelOptions {
  /** adopt an existing value pool (e.g. loaded from a checkpoint) instead of creating one; the model disposes it */
  pool?: ValuePool;
  /**
   * custom skip-layer memories (extensions.ts), after the config's own (config.skips); their
   * variables join the model's as `skips.<i>.<name>`. Checkpoints do not rebuild them: declare
   * memory skips in config.skips instead.
   */
  skips?: SkipLayerMemory[];
}

/** Where a memory of the model sits: a block's FFN slot (`blocks.<i>.ffn`) or a skip (`skips.<i>`). */
export interface MemorySite {
  site: string;
  /** the block whose normalised FFN input it reads */
  readBlock: number;
  /** the block after which its output joins the residual */
  writeBlock: number;
  memory: Memory;
}

/** One memory's lookups for a token sequence: ids and weights laid out [T, G, H, k] (G = bags per token: 1 for product keys, E·cores for UltraMem). */
export interface MemoryInspection {
  /** the block whose FFN input the memory read */
  block: number;
  /** `blocks.<i>.ffn` or `skips.<i>` */
  site: string;
  /** G: bags per token */
  bags: number;
  ids: Int32Array;
  weights: Float32Array;
  heads: number;
  topK: number;
}

/** What `captureKV` returns (plain arrays, nothing to dispose). */
export interface CapturedKV {
  /** per requested block, in block order: q [H, T, dh] (after RoPE, × 1/√dh), k, v [Hkv, T, dh] (k after RoPE) */
  blocks: { block: number; q: Float32Array; k: Float32Array; v: Float32Array }[];
  /** [T, D]: the residual stream entering block `hidden` (layers: final-normed) */
  hidden?: Float32Array;
}

/** What `attentionKV` returns: one block's tensors (the caller disposes them). */
export interface TensorKV {
  block: number;
  /** [B, H, T, dh] after RoPE, × 1/√dh */
  q: tf.Tensor4D;
  /** [B, Hkv, T, dh] after RoPE */
  k: tf.Tensor4D;
  /** [B, Hkv, T, dh] */
  v: tf.Tensor4D;
}

export class LanguageModel {
  readonly config: ModelConfig;
  readonly pool?: ValuePool;
  private readonly params: ParamStore;
  private readonly tokEmb: tf.Variable; // [V, D]
  private readonly lmHead?: tf.Variable; // [D, V] when untied
  private readonly normF: tf.Variable; // [D]
  private readonly blocks: Block[] = [];
  private readonly skips: SkipLayerMemory[];
  private readonly sites: MemorySite[] = [];
  private readonly rope: Rope;
  private readonly masks = new Map<number, tf.Tensor4D>(); // causal masks by T
  private readonly groups: number; // G = heads / kvHeads

  constructor(config: ModelConfig | ModelConfigInput, opts: LanguageModelOptions = {}) {
    const c = parseModelConfig(config);
    this.config = c;
    const D = c.dim;
    this.groups = c.heads / c.kvHeads;
    this.params = new ParamStore(c.seed);
    this.rope = new Rope(c.maxSeqLen + EXTERNAL_POSITIONS, D / c.heads, c.ropeTheta); // room for memories' positions
    const outStd = 0.02 / Math.sqrt(2 * c.layers); // residual projections (GPT-2 scaling)
    this.tokEmb = this.params.normal('tok_emb', [c.vocabSize, D], 0.02);

    const m = c.memory;
    const shape = poolShapeOf(c); // from the memory kinds the config uses
    if (opts.pool) {
      if (!shape) throw new ConfigError('pool', 'given, but the config has no memory blocks or skips to read it');
      if (opts.pool.rows !== shape.rows || opts.pool.dim !== shape.dim) {
        throw new ConfigError('pool', `is ${opts.pool.rows}×${opts.pool.dim}; the config's memories need ${shape.rows}×${shape.dim}`);
      }
      this.pool = opts.pool;
    } else if (shape) {
      this.pool = new MemoryPool({
        rows: shape.rows,
        dim: shape.dim,
        initStd: shape.initStd,
        optimizer: { kind: m.valueOptimizer, lr: m.valueLr },
        seed: subSeed(c.seed, 'pool'),
      });
    }

    for (let i = 0; i < c.layers; i++) {
      const p = `blocks.${i}`;
      const attnNorm = this.params.ones(`${p}.attn_norm`, [D]);
      const attn = new Attention(this.params, `${p}.attn`, i, D, c.heads, c.kvHeads, this.rope, outStd);
      const ffnNorm = this.params.ones(`${p}.ffn_norm`, [D]);
      const spec = FFN_REGISTRY[c.ffn[i]!];
      const ffn = spec.create({ config: c, block: i, prefix: `${p}.ffn`, params: this.params, outStd, pool: this.pool });
      if (ffn.memory) {
        for (const [name, v] of Object.entries(ffn.variables())) this.params.adopt(`${p}.ffn.${name}`, v);
        this.sites.push({ site: `${p}.ffn`, readBlock: i, writeBlock: i, memory: ffn.memory });
      }
      this.blocks.push({ attnNorm, attn, ffnNorm, ffn });
    }
    this.normF = this.params.ones('norm_f', [D]);
    if (!c.tieEmbeddings) this.lmHead = this.params.normal('lm_head', [D, c.vocabSize], 0.02);

    // skip-layer memories: the config's (on the shared pool, checkpointed), then custom ones
    const configSkips = (c.skips ?? []).map((s, i): SkipLayerMemory => {
      const site = `skips.${i}`;
      const memory = memoryKind(s.kind, `${site}.kind`).create(c, site, this.pool!);
      this.sites.push({ site, readBlock: s.read, writeBlock: s.write, memory });
      return {
        readBlock: s.read,
        writeBlock: s.write,
        apply: (x, o) => memory.apply(x, o) as tf.Tensor2D,
        aux: () => memory.auxLoss(),
        variables: () => memory.variables(),
        dispose: () => memory.dispose(),
      };
    });
    this.skips = [...configSkips, ...(opts.skips ?? [])];
    this.skips.forEach((s, i) => {
      if (!(Number.isInteger(s.readBlock) && s.readBlock >= 0 && s.readBlock < s.writeBlock && s.writeBlock < c.layers)) {
        throw new ConfigError(
          `skips.${i}`,
          `needs 0 ≤ readBlock < writeBlock < layers (${c.layers}), got ${s.readBlock} → ${s.writeBlock}`,
        );
      }
      for (const [name, v] of Object.entries(s.variables())) this.params.adopt(`skips.${i}.${name}`, v);
    });
  }

  /** Dense parameters (everything but the pool's values), for the model's optimizer. */
  trainableVariables(): tf.Variable[] {
    return this.params.list();
  }

  /** Every dense parameter under its stable checkpoint name. */
  namedVariables(): Record<string, tf.Variable> {
    return this.params.named();
  }

  /** Block indices whose FFN is a memory kind. */
  memoryBlocks(): number[] {
    return this.config.ffn.flatMap((k, i) => (isMemoryKind(k) ? [i] : []));
  }

  /** Every memory reading the shared pool: memory blocks in block order, then config.skips in order. */
  memoryLayers(): Memory[] {
    return this.sites.map((s) => s.memory);
  }

  /** Where each memory of memoryLayers() sits (same order). */
  memorySites(): MemorySite[] {
    return this.sites.map((s) => ({ ...s }));
  }

  /** The FFN slot of block `i` (e.g. a MoeFfn, to read its last balance value). */
  ffnSlot(i: number): FfnSlot {
    const b = this.blocks[i];
    if (!b) throw new ValueError('block', `${i} is not in [0, ${this.blocks.length})`);
    return b.ffn;
  }

  /**
   * The value LR for training step `step` of `steps`: `memory.valueLr`, times UltraMem's decay
   * (`memory.valueLrDecay`× at the start, falling linearly to 1×) when the config sets one.
   */
  scheduleValueLr(step: number, steps: number): number | undefined {
    const { valueLr, valueLrDecay } = this.config.memory;
    if (!this.pool || valueLrDecay === undefined) return undefined;
    const lr = valueLr * valueLrMultiplier(step, steps, valueLrDecay);
    this.pool.setLearningRate(lr);
    return lr;
  }

  /** Apply queued value updates when the pool runs in deferred mode; a no-op otherwise (fused updates). */
  stepMemory(): void {
    this.pool?.step();
  }

  /**
   * ids [B, T] int32 → logits [B, T, V]; auxLoss = Σ MoE balance losses (scaled by balanceCoef), 0 without MoE.
   * `external`: Memory³ memories read by its blocks, per row and chunk (extensions.ts).
   */
  forward(ids: tf.Tensor2D, opts: { training?: boolean; external?: ExternalKV } = {}): { logits: tf.Tensor3D; auxLoss: tf.Scalar } {
    const idArr = this.checkIds(ids, 1);
    const [B, T] = ids.shape;
    return tf.tidy(() => {
      const { h, aux } = this.run(idArr, B, T, this.fullContext(T, B, opts.external), opts.training ?? false);
      const logits = tf.reshape(this.head(tf.reshape(h, [B * T, this.config.dim]) as tf.Tensor2D), [B, T, this.config.vocabSize]);
      return { logits: logits as tf.Tensor3D, auxLoss: aux };
    });
  }

  /**
   * Mean next-token cross-entropy of ids[:, 1:] given ids[:, :-1], plus auxLoss (the training
   * objective); `aux: false` leaves out the MoE balance term (evaluation: comparable across kinds).
   */
  loss(ids: tf.Tensor2D, opts: { training?: boolean; aux?: boolean; external?: ExternalKV } = {}): tf.Scalar {
    const idArr = this.checkIds(ids, 2);
    const [B, T] = ids.shape;
    const T1 = T - 1;
    const inputs = new Int32Array(B * T1);
    const targets = new Int32Array(B * T1);
    for (let b = 0; b < B; b++) {
      inputs.set(idArr.subarray(b * T, b * T + T1), b * T1);
      targets.set(idArr.subarray(b * T + 1, (b + 1) * T), b * T1);
    }
    return tf.tidy(() => {
      const { h, aux } = this.run(inputs, B, T1, this.fullContext(T1, B, opts.external), opts.training ?? false);
      const logits = this.head(tf.reshape(h, [B * T1, this.config.dim]) as tf.Tensor2D); // [B·T1, V]
      const ce = crossEntropy(logits, targets);
      return (opts.aux === false ? ce : tf.add(ce, aux)) as tf.Scalar;
    });
  }

  /** An empty KV cache for one sequence. */
  newCache(): KVCache {
    return new ModelKVCache(this, this.config.layers);
  }

  /**
   * Feed `tokens` (a prompt, or the token just generated) to one sequence; logits of its last position [V].
   * `external`: the memories these tokens read (row 0, chunk 0); they are not kept in the cache.
   */
  prefill(tokens: number[], cache: KVCache, opts: { external?: ExternalKV } = {}): Float32Array {
    if (tokens.length === 0) throw new ValueError('tokens', 'is empty; feed at least one token');
    return this.runCached([tokens], [cache], opts.external)[0]!;
  }

  /** One step for several sequences: tokens[b] is appended to caches[b] (lengths may differ). Logits [V] per row. */
  decodeBatch(tokens: number[], caches: KVCache[], opts: { external?: ExternalKV } = {}): Float32Array[] {
    if (tokens.length !== caches.length) {
      throw new ShapeError('tokens', `has ${tokens.length} entries for ${caches.length} caches; give one token per sequence`);
    }
    if (tokens.length === 0) return [];
    return this.runCached(
      tokens.map((t) => [t]),
      caches,
      opts.external,
    );
  }

  /**
   * The Memory³ writer's view of one sequence (no gradient, positions 0..T−1, causal): for each
   * block in `blocks`, q after RoPE pre-scaled by 1/√dh [H, T, dh] and k (after RoPE), v
   * [Hkv, T, dh]; with `hidden: l`, the residual stream [T, D] entering block l (0: the token
   * embeddings; l = layers: the final-normed states the head reads).
   */
  captureKV(tokens: number[], opts: { blocks: number[]; hidden?: number }): CapturedKV {
    const c = this.config;
    const T = tokens.length;
    const idArr = this.checkTokens(tokens, 'tokens');
    if (T === 0 || T > c.maxSeqLen) throw new ValueError('tokens', `length ${T} must be in [1, maxSeqLen = ${c.maxSeqLen}]`);
    for (const b of opts.blocks)
      if (!Number.isInteger(b) || b < 0 || b >= c.layers) throw new ValueError('blocks', `${b} is not a block in [0, ${c.layers})`);
    if (opts.hidden !== undefined && !(Number.isInteger(opts.hidden) && opts.hidden >= 0 && opts.hidden <= c.layers))
      throw new ValueError('hidden', `must be an integer in [0, layers = ${c.layers}], got ${opts.hidden}`);
    const out: CapturedKV = { blocks: [] };
    tf.tidy(() => {
      const att = this.fullContext(T, 1);
      att.onQKV = (block, q, k, v) => {
        if (!opts.blocks.includes(block)) return;
        const data = (t: tf.Tensor4D) => t.dataSync() as Float32Array; // [1, n, T, dh] → [n, T, dh]
        out.blocks.push({ block, q: data(q), k: data(k), v: data(v) });
      };
      const upTo = Math.max(opts.hidden ?? 0, ...opts.blocks.map((b) => b + 1)); // blocks needed
      const { h } = this.run(
        idArr,
        1,
        T,
        att,
        false,
        undefined,
        (layer, x) => {
          if (layer === opts.hidden) out.hidden = x.dataSync() as Float32Array;
        },
        upTo,
      );
      if (opts.hidden === c.layers) out.hidden = h.dataSync() as Float32Array;
    });
    out.blocks.sort((a, b) => a.block - b.block);
    return out;
  }

  /**
   * The writer's view of B sequences as tensors, for training the writer (Memory³ stage 2 with
   * gradient): rows of `ids` [B·T] (positions 0..T−1, causal), per block in `blocks` (block
   * order) q [B, H, T, dh] (after RoPE, × 1/√dh), k [B, Hkv, T, dh] (after RoPE), v [B, Hkv, T, dh].
   * Called inside a gradient tape (a loss closure), gradients flow through k and v into the
   * weights of every block up to the last in `blocks`. The caller disposes them (or a tidy does).
   */
  attentionKV(ids: ArrayLike<number>, B: number, T: number, blocks: number[]): TensorKV[] {
    const c = this.config;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1 || T > c.maxSeqLen)
      throw new ValueError('attentionKV', `B ${B} and T ${T} must be integers ≥ 1 with T ≤ maxSeqLen = ${c.maxSeqLen}`);
    if (ids.length !== B * T) throw new ShapeError('ids', `has ${ids.length} tokens, expected B·T = ${B * T}`);
    if (blocks.length === 0) throw new ValueError('blocks', 'name at least one block');
    for (const b of blocks)
      if (!Number.isInteger(b) || b < 0 || b >= c.layers) throw new ValueError('blocks', `${b} is not a block in [0, ${c.layers})`);
    const idArr = this.checkTokens(ids, 'ids');
    const out: TensorKV[] = [];
    tf.tidy(() => {
      const att = this.fullContext(T, B);
      att.onQKV = (block, q, k, v) => {
        if (blocks.includes(block)) out.push({ block, q: tf.keep(q), k: tf.keep(k), v: tf.keep(v) });
      };
      this.run(idArr, B, T, att, false, undefined, undefined, Math.max(...blocks) + 1);
    });
    return out.sort((a, b) => a.block - b.block);
  }

  /** Per token, per memory (blocks, then skips reading the same block), per head: the slots read and their weights ([T, H, k] each). */
  inspectMemory(tokens: number[]): MemoryInspection[] {
    const T = tokens.length;
    const idArr = this.checkTokens(tokens, 'tokens');
    if (T === 0 || T > this.config.maxSeqLen)
      throw new ValueError('tokens', `length ${T} must be in [1, maxSeqLen = ${this.config.maxSeqLen}]`);
    const out: MemoryInspection[] = [];
    tf.tidy(() => {
      this.run(idArr, 1, T, this.fullContext(T, 1), false, (block, x) => {
        for (const s of this.sites) {
          if (s.readBlock !== block) continue;
          const t = s.memory.inspect(x);
          out.push({ block, site: s.site, ids: t.ids, weights: t.weights, heads: t.heads, topK: t.k, bags: t.bags });
        }
      });
    });
    return out;
  }

  dispose(): void {
    for (const b of this.blocks) b.ffn.dispose();
    for (const s of this.skips) s.dispose();
    this.params.dispose();
    this.pool?.dispose();
    this.rope.dispose();
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /** The blocks over token ids [B·T]; returns the final-normed hidden states [B, T, D] and Σ aux. */
  private run(
    idArr: Int32Array,
    B: number,
    T: number,
    att: AttnContext,
    training: boolean,
    onFfnInput?: (block: number, x: tf.Tensor2D) => void,
    onResidual?: (layer: number, h: tf.Tensor3D) => void,
    upTo = this.blocks.length,
  ): { h: tf.Tensor3D; aux: tf.Scalar } {
    const c = this.config;
    const D = c.dim;
    let h = tf.reshape(gatherRows(this.tokEmb as tf.Tensor2D, idArr), [B, T, D]) as tf.Tensor3D; // [B, T, D]
    const auxes: tf.Scalar[] = [];
    const pending = new Map<number, tf.Tensor2D[]>(); // skip-layer outputs, by the block they write after
    this.blocks.forEach((blk, i) => {
      onResidual?.(i, h);
      if (i >= upTo) return; // captureKV: the blocks after those it reads are not run
      h = tf.add(h, blk.attn.apply(rmsNorm(h, blk.attnNorm as tf.Tensor1D, c.normEps), att));
      const x = tf.reshape(rmsNorm(h, blk.ffnNorm as tf.Tensor1D, c.normEps), [B * T, D]) as tf.Tensor2D; // [B·T, D]
      onFfnInput?.(i, x);
      for (const s of this.skips) {
        if (s.readBlock !== i) continue;
        pending.set(s.writeBlock, [...(pending.get(s.writeBlock) ?? []), s.apply(x, { training })]);
        const a = s.aux?.();
        if (a) auxes.push(a);
      }
      const { y, aux } = blk.ffn.apply(x, { training });
      if (aux) auxes.push(aux);
      h = tf.add(h, tf.reshape(y, [B, T, D]));
      for (const s of pending.get(i) ?? []) h = tf.add(h, tf.reshape(s, [B, T, D]));
    });
    h = rmsNorm(h, this.normF as tf.Tensor1D, c.normEps);
    const aux = auxes.length === 0 ? tf.scalar(0) : auxes.length === 1 ? auxes[0]! : (tf.addN(auxes) as tf.Scalar);
    return { h, aux };
  }

  /** Hidden states [N, D] → logits [N, V]. */
  private head(h: tf.Tensor2D): tf.Tensor2D {
    return this.lmHead ? tf.matMul(h, this.lmHead as tf.Tensor2D) : tf.matMul(h, this.tokEmb as tf.Tensor2D, false, true);
  }

  /**
   * Attention context of B fresh sequences of length T: positions 0..T−1 and causal; with
   * `external`, positions start at its contextStart and its blocks read its chunked memories.
   */
  private fullContext(T: number, B: number, external?: ExternalKV): AttnContext {
    let mask = this.masks.get(T);
    if (!mask) {
      mask = causalMask(T, this.groups); // [1, 1, G·T, T]; disposed by the caller's tidy unless cached
      if (this.masks.size < MASK_CACHE) this.masks.set(T, tf.keep(mask)); // training repeats a few lengths
    }
    if (!external) return { ...this.rope.prefix(T), mask };
    const start = contextStartOf(external);
    const chunk = external.chunk ?? T;
    if (!Number.isInteger(chunk) || chunk < 1) throw new ValueError('external.chunk', `must be an integer ≥ 1, got ${chunk}`);
    const kv = chunkedKvHook(external, B, T, chunk, this.groups);
    return { ...this.rope.prefix(T, start), mask, kv };
  }

  /** Feed rows[b] (all of one length T) to caches[b]; logits of each row's last position. */
  private runCached(rows: number[][], handles: KVCache[], external?: ExternalKV): Float32Array[] {
    const c = this.config;
    const B = rows.length;
    const T = rows[0]!.length;
    const caches = handles.map((h, b) => {
      if (!(h instanceof ModelKVCache) || h.owner !== this)
        throw new ValueError(`caches.${b}`, 'was not made by this model; use model.newCache()');
      if (h.disposed) throw new ValueError(`caches.${b}`, 'is disposed; use model.newCache()');
      if (h.length + T > c.maxSeqLen) {
        throw new ValueError(
          `caches.${b}`,
          `holds ${h.length} tokens; ${T} more exceed maxSeqLen ${c.maxSeqLen}. Start a new sequence or shorten it`,
        );
      }
      return h;
    });
    if (new Set(caches).size !== B) throw new ValueError('caches', 'lists one cache twice; each sequence needs its own cache');
    const start = contextStartOf(external);
    caches.forEach((h, b) => {
      if (h.length === 0)
        h.start = start; // a cache's positions are fixed by its first feed
      else if (h.start !== start)
        throw new ValueError(
          `caches.${b}`,
          `holds positions from ${h.start}; external.contextStart ${start} would shift them: keep one contextStart per sequence`,
        );
    });
    const idArr = this.checkTokens(rows.flat(), 'tokens');
    const past = caches.map((k) => k.length);
    const S = Math.max(...past) + T;
    const positions = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = start + past[b]! + t;
    const G = this.groups;
    const logits = tf.tidy(() => {
      const { cos, sin } = this.rope.at(positions, B, T);
      const mask = cachedMask(past, T, G, S);
      const kv = cachedKvHook(caches, past, T, S, G, external); // appends to the caches, prepends memories
      const { h } = this.run(idArr, B, T, { cos, sin, mask, kv }, false);
      const last = tf.reshape(tf.slice(h, [0, T - 1, 0], [B, 1, c.dim]), [B, c.dim]) as tf.Tensor2D;
      return this.head(last); // [B, V]
    });
    for (const k of caches) k.length += T;
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    const V = c.vocabSize;
    return Array.from({ length: B }, (_, b) => data.slice(b * V, (b + 1) * V));
  }

  private checkIds(ids: tf.Tensor2D, minT: number): Int32Array {
    if (!(ids instanceof tf.Tensor) || ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new ShapeError(
        'ids',
        `must be an int32 tf.Tensor2D [B, T], got ${ids instanceof tf.Tensor ? `${ids.dtype} [${ids.shape}]` : typeof ids}`,
      );
    }
    const [B, T] = ids.shape;
    if (B < 1 || T < minT || T > this.config.maxSeqLen + minT - 1) {
      throw new ShapeError(
        'ids',
        `shape [${B}, ${T}]: need B ≥ 1 and ${minT} ≤ T ≤ ${this.config.maxSeqLen + minT - 1} (maxSeqLen ${this.config.maxSeqLen})`,
      );
    }
    return this.checkTokens(ids.dataSync() as Int32Array, 'ids');
  }

  private checkTokens(ids: ArrayLike<number>, field: string): Int32Array {
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= V)
        throw new ValueError(field, `element ${i} is ${t}; token ids must be integers in [0, ${V})`);
    }
    return Int32Array.from(ids);
  }
}
