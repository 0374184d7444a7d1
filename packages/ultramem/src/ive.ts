/**
 * Implicit value expansion (IVE, docs/design.md §3.7): a virtual grid of E·N slots over N physical
 * rows. A fixed seeded permutation maps grid id g → s = perm[g]; virtual block p = s div N,
 * physical row s mod N. E = 1 is the identity (no shuffle).
 */
import { ConfigError, mulberry32 } from '@mnemo/core';
import type { Address, Addressor } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';

/** A seeded uniform permutation of [0, n) (Fisher–Yates); the identity when `shuffle` is false. */
export function permutation(n: number, seed: number, shuffle = true): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  if (!shuffle) return p;
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const x = p[i]!;
    p[i] = p[j]!;
    p[j] = x;
  }
  return p;
}

/** Virtual grid id → (block, physical row) under `perm`. */
export function expand(g: number, perm: Int32Array, N: number): { block: number; row: number } {
  const s = perm[g]!;
  return { block: Math.floor(s / N), row: s % N };
}

/**
 * ExpandedAddressor: the value side of UltraMem on the memory core. It wraps an addressor over a
 * grid of E·N virtual slots (product keys or TDQKR) and turns each token's reads into the bags
 * the shared pool pools, for IVE (E virtual blocks) and MCS (value columns split in `chunks`):
 *
 *   pool: the physical table V [N, dv] viewed as [N·chunks, dv/chunks] (row r, chunk c ↔ row r·chunks + c)
 *   virtual id g → block p, row r (perm);  bag (b, p, c) reads row r·chunks + c for every read of
 *   token b in block p, with the inner bag c's weights (inner bags: 1, or one per chunk = MCS)
 *   → m [B, E·chunks·(dv/chunks)] = [B, E·dv]: block p's pooled values, chunks concatenated
 *
 * A ProjectionReadout [E·dv → D] then is o = Σ_p W_pᵀ (Vᵀ ŝ_p): pool first, project after.
 * Reads of other blocks are −1 (padding) in a bag; they cost nothing and get no gradient.
 */

export class ExpandedAddressor implements Addressor {
  readonly rows: number;
  readonly heads: number;
  readonly topK: number;
  readonly bags: number;

  constructor(
    readonly inner: Addressor,
    readonly o: { expansion: number; physicalRows: number; chunks: number; perm: Int32Array },
  ) {
    const { expansion: E, physicalRows: N, chunks } = o;
    if (inner.rows !== E * N) throw new ConfigError('expansion', `the inner addressor reads ${inner.rows} slots, E·N = ${E * N}`);
    if (o.perm.length !== E * N) throw new ConfigError('perm', `has ${o.perm.length} entries, E·N = ${E * N}`);
    if (inner.bags !== 1 && inner.bags !== chunks) {
      throw new ConfigError('cores', `the inner addressor gives ${inner.bags} bags per token; the values have ${chunks} column chunks`);
    }
    this.rows = N * chunks;
    this.heads = inner.heads;
    this.topK = inner.topK;
    this.bags = E * chunks;
  }

  address(x: tf.Tensor2D, opts: { training: boolean }): Address {
    const { expansion: E, physicalRows: N, chunks: C, perm } = this.o;
    const a = this.inner.address(x, opts);
    const B = x.shape[0];
    const Cin = this.inner.bags;
    const K = a.ids.shape[1];
    const inIds = a.ids.dataSync() as Int32Array; // [B·Cin, K] virtual ids
    const ids = new Int32Array(B * E * C * K).fill(-1); // [B·E·C, K]
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const src = (b * Cin + (Cin === 1 ? 0 : c)) * K;
        for (let j = 0; j < K; j++) {
          const g = inIds[src + j]!;
          if (g < 0) continue;
          const s = perm[g]!;
          const p = Math.floor(s / N);
          ids[((b * E + p) * C + c) * K + j] = (s % N) * C + c;
        }
      }
    }
    // [B·Cin, K] → [B, E, C, K] → [B·E·C, K]: copies by concat, not tf.tile (tfjs-wasm's Tile
    // is ~10x slower forward and ~4x in the gradient at these shapes: 70 vs 4 ms per call)
    const spread = (w: tf.Tensor2D) => {
      let t = tf.reshape(w, [B, 1, Cin, K]);
      if (C > Cin) t = tf.concat(new Array<tf.Tensor>(C / Cin).fill(t), 2);
      if (E > 1) t = tf.concat(new Array<tf.Tensor>(E).fill(t), 1);
      return tf.reshape(t, [B * E * C, K]) as tf.Tensor2D;
    };
    const weights = spread(a.weights);
    const scores = a.scores === a.weights ? weights : spread(a.scores);
    return { ids: tf.tensor2d(ids, [B * E * C, K], 'int32'), weights, scores };
  }

  auxLoss(): tf.Scalar | undefined {
    return this.inner.auxLoss?.();
  }

  variables(): Record<string, tf.Variable> {
    return this.inner.variables();
  }

  dispose(): void {
    this.inner.dispose();
  }
}
