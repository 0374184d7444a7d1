/**
 * Memory³ writing WITH gradient, for stage-2 training (docs/design.md §4.7): the writer of
 * writer.ts run on a batch of references in one pass whose K/V stay on the gradient tape, so the
 * loss of the rows that read a memory also trains how it is written: the keys the question's
 * entity has to match and the values that carry the object. Written without gradient (the
 * store's memories), only the reading queries learn, and the read circuit never forms.
 *
 *   input  ids [R, T]: row r = [prefix, r_1 … r_n, pad …]       T = 1 + max n (pads last: causal, never seen)
 *   w_j    = log Σ_{h ∈ g} Σ_{i ≤ n} exp(q_i·k_j)              the real queries only, no causal mask
 *   keep_r = the min(tokens, n) j ≥ 1 of largest w_j            chosen without gradient, as writeMemory
 *   memory r, block l: k, v [Hkv, M_r, dh] gathered from the pass (differentiable)
 *
 * Same selection and positions as writeMemory, so a memory written here holds the same K/V as
 * the stored one up to float rounding (tested).
 */
import { ValueError } from '@mnemo/core';
import { gatherRows } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { type Memory3Options, type MemoryHost, type MemoryKV, REFERENCE_POSITIONS, resolveOptions } from './host';
import { tokenImportance, topPositions } from './writer';

/** A host whose writer pass can stay on the tape (@mnemo/model's LanguageModel.attentionKV). */
export interface TrainableHost extends MemoryHost {
  attentionKV(
    ids: ArrayLike<number>,
    B: number,
    T: number,
    blocks: number[],
  ): { block: number; q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D }[];
}

/** Memories of a batch of references, on the tape; `external` hands them to the model's loss. */
export class TrainableMemories {
  /** per memory block: K and V of every (reference, KV head, position) [R·Hkv·T, dh] */
  private readonly flatK: tf.Tensor2D[] = [];
  private readonly flatV: tf.Tensor2D[] = [];
  /** kept positions of reference r, KV head g, memory block l: kept[r][l][g] */
  readonly kept: number[][][];
  readonly blocks: number[];
  private readonly T: number;
  private readonly kvHeads: number;
  private readonly headDim: number;

  /** Call inside the loss closure (the pass must be on the tape); dispose() after the step. */
  constructor(host: TrainableHost, references: number[][], opts: Memory3Options) {
    const o = resolveOptions(host, opts);
    const { heads, kvHeads, dim, maxSeqLen } = host.config;
    const dh = dim / heads;
    if (references.length === 0) throw new ValueError('references', 'give at least one reference');
    const limit = Math.min(REFERENCE_POSITIONS, maxSeqLen) - 1;
    references.forEach((r, i) => {
      if (r.length === 0 || r.length > limit)
        throw new ValueError(`references[${i}]`, `has ${r.length} tokens; give 1..${limit} (split longer texts)`);
    });
    const R = references.length;
    const T = 1 + Math.max(...references.map((r) => r.length));
    const ids = new Int32Array(R * T); // pads are token 0, after the text: causal attention never lets the text see them
    references.forEach((r, i) => {
      ids[i * T] = o.prefixId;
      ids.set(r, i * T + 1);
    });
    this.blocks = o.blocks;
    this.T = T;
    this.kvHeads = kvHeads;
    this.headDim = dh;
    const pass = host.attentionKV(ids, R, T, o.blocks); // per block q [R, H, T, dh], k, v [R, Hkv, T, dh]
    this.kept = references.map(() => o.blocks.map(() => [] as number[]));
    try {
      pass.forEach((b, l) => {
        const q = b.q.dataSync() as Float32Array;
        const k = b.k.dataSync() as Float32Array;
        references.forEach((r, i) => {
          const n = r.length + 1; // real positions: prefix + text
          const qi = new Float32Array(heads * n * dh);
          const ki = new Float32Array(kvHeads * n * dh);
          for (let h = 0; h < heads; h++) qi.set(q.subarray((i * heads + h) * T * dh, ((i * heads + h) * T + n) * dh), h * n * dh);
          for (let g = 0; g < kvHeads; g++) ki.set(k.subarray((i * kvHeads + g) * T * dh, ((i * kvHeads + g) * T + n) * dh), g * n * dh);
          const w = tokenImportance(qi, ki, heads, kvHeads, n, dh);
          this.kept[i]![l] = Array.from({ length: kvHeads }, (_, g) => topPositions(w, g * n, n, 1, o.tokens)).flat();
        });
        this.flatK.push(tf.reshape(b.k, [R * kvHeads * T, dh]) as tf.Tensor2D);
        this.flatV.push(tf.reshape(b.v, [R * kvHeads * T, dh]) as tf.Tensor2D);
      });
    } finally {
      for (const b of pass) tf.dispose([b.q, b.k, b.v]);
    }
  }

  /** Kept tokens of reference r (the same in every block and KV head: min(tokens, n)). */
  tokensOf(r: number): number {
    return this.kept[r]![0]!.length / this.kvHeads;
  }

  /** [Hkv, Σ M_r, dh] of references `refs` at memory block l, in refs order (inside the loss's tape). */
  gather(refs: number[], l: number): { k: tf.Tensor3D; v: tf.Tensor3D } {
    const { T, kvHeads: Hk, headDim: dh } = this;
    const idx: number[] = [];
    let M = 0;
    for (let g = 0; g < Hk; g++) {
      for (const r of refs) {
        const m = this.tokensOf(r);
        const pos = this.kept[r]![l]!.slice(g * m, (g + 1) * m);
        for (const j of pos) idx.push((r * Hk + g) * T + j);
        if (g === 0) M += m;
      }
    }
    const at = Int32Array.from(idx); // gatherRows: a gather whose gradient is a scatter-add on every backend
    const k = tf.reshape(gatherRows(this.flatK[l]!, at), [Hk, M, dh]) as tf.Tensor3D;
    const v = tf.reshape(gatherRows(this.flatV[l]!, at), [Hk, M, dh]) as tf.Tensor3D;
    return { k, v };
  }

  /**
   * The model's ExternalKV over these memories: row b, chunk c reads the references table[b][c]
   * (indices into the constructor's `references`), at parallel positions before the context.
   */
  external(table: number[][][], chunk: number): MemoryKV {
    for (const [b, row] of table.entries())
      for (const [c, refs] of row.entries())
        for (const r of refs)
          if (!Number.isInteger(r) || r < 0 || r >= this.kept.length)
            throw new ValueError(`table[${b}][${c}]`, `names reference ${r}; give indices in [0, ${this.kept.length})`);
    return {
      blocks: this.blocks,
      contextStart: REFERENCE_POSITIONS,
      chunk,
      get: (block, row, c) => {
        const l = this.blocks.indexOf(block);
        const refs = table[row]?.[c] ?? [];
        return l < 0 || refs.length === 0 ? undefined : this.gather(refs, l);
      },
    };
  }

  dispose(): void {
    tf.dispose([...this.flatK, ...this.flatV]);
    this.flatK.length = 0;
    this.flatV.length = 0;
  }
}
