/**
 * TdqkrAddressor: Tucker-decomposed query-key retrieval with multi-core scoring (UltraMem,
 * Huang et al. 2025; docs/design.md §3.2–3.6), on a grid of n × n slots per head.
 *
 *   q = LN_halves(x Wq)                     [B, Hq, dk]   Hq = ⌈H/2⌉: heads share queries in pairs
 *   S_row[h,b,i,a] = <q_row, K[h,0,i,a]>    [H, B, n, r]  (S_col likewise; LayerNorm on keys)
 *   rank-1 C̄[h] ≈ λ1 u tᵀ (host SVD, no gradient): a = S_row·u, b = S_col·t   [H, B, n]
 *   pre-select rows by a, columns by b:
 *     'signed' (default): the m largest AND the m smallest of each → 2m candidates per side.
 *        For a rank-1 core this is EXACT: λ1 a_i b_j is largest either for large a and b or for
 *        very negative a and b (or, when signs force it, the smallest |a|·|b| across signs, which
 *        the same sets contain), so the exact top-m of the n² grid is among the candidates.
 *     'top' (the paper's): the m largest of each.
 *   G^(c) = S̃_row C^(c) S̃_colᵀ              [H, B, M, M]  exact rescoring, M candidates per side
 *   top-m of Σ_c G^(c) per (h, b)            → grid ids g = row·n + col; ties → lower grid id
 *   ŝ^(c) = G^(c) at those pairs             → bag c of each token pools with core c's scores (MCS)
 *
 * Output: `bags` = Hc per token (bag c = the same ids, core c's raw scores as weights), ids in
 * [0, n²). Gradients reach Wq, the keys and the cores through G; none through u, t or the
 * selection. The auxiliary loss on the cores (tucker.ts) is this addressor's `auxLoss()`.
 */
import { gatherRows } from '@mnemo/kernels';
import type { Address, Addressor } from '@mnemo/memory-layer';
import { normalizeQueries } from '@mnemo/product-keys';
import * as tf from '@tensorflow/tfjs-core';
import { selectTop } from './select';
import { rank1, summedCores, tuckerAuxLoss } from './tucker';

export interface TdqkrOptions {
  inputDim: number; // D
  gridSize: number; // n: rows and columns of the grid (n² slots)
  heads: number; // H
  topM: number; // m
  keyDim: number; // dk (even): dk/2 per half
  rank: number; // r
  cores: number; // Hc
  preselect: 'signed' | 'top';
  layerNorm: boolean; // on query halves and keys
  aux: { alpha: number; tau: number };
  seed: number;
  name: string;
}

const EPS = 1e-6;

const ident = (i: number) => i;

/**
 * Candidates of one side into out[0..M): the `m` largest of v (ties → lower index), and with
 * `signed` the `m` smallest too (all n when 2m ≥ n).
 */
function preselect(v: Float64Array, m: number, signed: boolean, out: Int32Array, tmp: Int32Array): void {
  const n = v.length;
  const at = (i: number) => v[i]!;
  if (signed && 2 * m >= n) {
    for (let i = 0; i < n; i++) out[i] = i;
    return;
  }
  selectTop(n, m, at, ident, out);
  if (!signed) return;
  selectTop(n, m, at, (i) => -i, tmp, -1); // the last m of the same order (ties → higher index): disjoint from the first m
  out.set(tmp.subarray(0, m), m);
}

export class TdqkrAddressor implements Addressor {
  readonly rows: number;
  readonly heads: number;
  readonly topK: number;
  readonly bags: number;
  readonly wq: tf.Variable<tf.Rank.R2>; // [D, Hq·dk]
  readonly keys: tf.Variable<tf.Rank.R4>; // [H, 2, n·r, dk/2]: row i·r + a of half s is K[h, s, i, a]
  readonly tuckerCore: tf.Variable<tf.Rank.R4>; // [Hc, H, r, r]
  /** the last rank-1 factors (u, t) [H, r], for the sign rule */
  private prev?: { u: Float64Array; t: Float64Array };

  constructor(private readonly o: TdqkrOptions) {
    const { inputDim: D, gridSize: n, heads: H, keyDim: dk, rank: r, cores: Hc, seed, name } = o;
    this.rows = n * n;
    this.heads = H;
    this.topK = o.topM;
    this.bags = Hc;
    const Hq = Math.ceil(H / 2);
    const half = dk / 2;
    this.wq = tf.tidy(() => tf.variable(tf.randomNormal([D, Hq * dk], 0, D ** -0.5, 'float32', seed + 1), true, `${name}/wq`));
    this.keys = tf.tidy(() =>
      tf.variable(tf.randomNormal([H, 2, n * r, half], 0, half ** -0.5, 'float32', seed + 2), true, `${name}/keys`),
    );
    // cores U[0, 1) as in the reference code
    this.tuckerCore = tf.tidy(() => tf.variable(tf.randomUniform([Hc, H, r, r], 0, 1, 'float32', seed + 3), true, `${name}/tuckerCore`));
  }

  /** Queries per head, normalised: [H, B, dk] (head h reads the query of its pair, h div 2). */
  private query(x: tf.Tensor2D): tf.Tensor3D {
    const { heads: H, keyDim: dk, layerNorm } = this.o;
    const B = x.shape[0];
    const Hq = Math.ceil(H / 2);
    let q = tf.reshape(tf.matMul(x, this.wq), [B, Hq, dk]) as tf.Tensor3D; // [B, Hq, dk]
    if (layerNorm) q = normalizeQueries(q, 'layernorm');
    const paired = tf.slice(tf.reshape(tf.stack([q, q], 2), [B, 2 * Hq, dk]), [0, 0, 0], [B, H, dk]);
    return tf.transpose(paired, [1, 0, 2]) as tf.Tensor3D; // [H, B, dk]
  }

  /** Keys of half s, normalised: [H, n·r, dk/2] (row i·r + a = K[h, s, i, a]). */
  private halfKeys(s: number): tf.Tensor3D {
    const { heads: H, gridSize: n, rank: r, keyDim: dk, layerNorm } = this.o;
    let K = tf.reshape(tf.slice(this.keys, [0, s, 0, 0], [H, 1, n * r, dk / 2]), [H, n * r, dk / 2]) as tf.Tensor3D;
    if (layerNorm) {
      const { mean, variance } = tf.moments(K, -1, true);
      K = tf.div(tf.sub(K, mean), tf.sqrt(tf.add(variance, EPS))) as tf.Tensor3D;
    }
    return K;
  }

  /** Row and column scores S [2][H, B, n, r] over the WHOLE grid side (a reference for tests; address() scores candidates only). */
  scores(x: tf.Tensor2D): [tf.Tensor4D, tf.Tensor4D] {
    const { heads: H, keyDim: dk, gridSize: n, rank: r } = this.o;
    const B = x.shape[0];
    const qh = this.query(x);
    const half = (s: number) => {
      const qs = tf.slice(qh, [0, 0, s * (dk / 2)], [H, B, dk / 2]) as tf.Tensor3D; // [H, B, dk/2]
      return tf.reshape(tf.matMul(qs, this.halfKeys(s), false, true), [H, B, n, r]) as tf.Tensor4D;
    };
    return [half(0), half(1)];
  }

  address(x: tf.Tensor2D, opts: { training: boolean }): Address {
    const { heads: H, gridSize: n, rank: r, cores: Hc, topM: m, keyDim: dk } = this.o;
    const B = x.shape[0];
    const d = dk / 2;
    // rank-1 factors of each head's summed core (host, no gradient)
    const cbar = summedCores(this.tuckerCore.dataSync() as Float32Array, Hc, H, r);
    const { u, t } = rank1(cbar, H, r, this.prev);
    if (opts.training) this.prev = { u, t };
    const qh = this.query(x); // [H, B, dk]
    const qs = [0, 1].map((s) => tf.slice(qh, [0, 0, s * d], [H, B, d]) as tf.Tensor3D); // [H, B, d] per half
    const Ks = [0, 1].map((s) => this.halfKeys(s)); // [H, n·r, d] per half
    // pre-selection scores a = S_row·u = q_row · (Σ_a u_a K_row[:, a]) and b likewise: [H, B, n], no gradient
    // (tidy returns the tensor, not its data: tidy walks a returned typed array element by element)
    const proj = [u, t].map((f, s) => {
      const a = tf.tidy(() => {
        const Kf = tf.sum(tf.mul(tf.reshape(Ks[s]!, [H, n, r, d]), tf.tensor4d(Float32Array.from(f), [H, 1, r, 1])), 2) as tf.Tensor3D; // [H, n, d]
        return tf.matMul(qs[s]!, Kf, false, true); // [H, B, n]
      });
      const data = a.dataSync() as Float32Array;
      a.dispose();
      return data;
    });
    const signed = this.o.preselect === 'signed';
    const M = signed ? Math.min(n, 2 * m) : Math.min(n, m); // candidates per side
    const sel = [new Int32Array(H * B * M), new Int32Array(H * B * M)]; // grid row / column of each candidate
    const keyRows = [new Int32Array(H * B * M * r), new Int32Array(H * B * M * r)]; // rows of K viewed as [H·n·r, d]
    const v = new Float64Array(n);
    const picked = new Int32Array(M);
    const tmp = new Int32Array(m);
    for (let s = 0; s < 2; s++) {
      const pr = proj[s]!;
      for (let hb = 0; hb < H * B; hb++) {
        for (let i = 0; i < n; i++) v[i] = pr[hb * n + i]!;
        preselect(v, m, signed, picked, tmp);
        const h = Math.floor(hb / B);
        for (let j = 0; j < M; j++) {
          sel[s]![hb * M + j] = picked[j]!;
          for (let a = 0; a < r; a++) keyRows[s]![(hb * M + j) * r + a] = (h * n + picked[j]!) * r + a;
        }
      }
    }
    // candidate scores with gradient: S̃[h, b, j, a] = <q_s[h, b], K_s[h, sel_j, a]>   [H, B, M, r]
    const cand = (s: number) => {
      const rowsK = tf.reshape(gatherRows(tf.reshape(Ks[s]!, [H * n * r, d]) as tf.Tensor2D, keyRows[s]!), [H, B, M * r, d]);
      return tf.reshape(tf.sum(tf.mul(rowsK, tf.expandDims(qs[s]!, 2)), -1), [H, B, M, r]);
    };
    const Srt = cand(0); // S̃_row
    const Sct = cand(1); // S̃_col
    const rowSel = sel[0]!;
    const colSel = sel[1]!;
    // r is 2–4: the rescoring is written as r² broadcast multiply-adds, not as thousands of tiny
    // batched matmuls (which cost wasm ~50x more per FLOP)
    const rowsA = tf.unstack(Srt, 3).map((t) => tf.expandDims(t, 3)); // r × [H, B, M, 1]
    const colsB = tf.unstack(Sct, 3).map((t) => tf.expandDims(t, 2)); // r × [H, B, 1, M]
    const G: tf.Tensor3D[] = []; // per core [H·B, M, M]
    for (let c = 0; c < Hc; c++) {
      const Cc = tf.reshape(tf.slice(this.tuckerCore, [c, 0, 0, 0], [1, H, r, r]), [H, 1, 1, r * r]);
      const coef = tf.unstack(Cc, 3); // r² × [H, 1, 1]: C^(c)[h, p, q]
      const terms: tf.Tensor[] = [];
      for (let p = 0; p < r; p++) {
        // X_q = Σ_p S̃_row[p] C[p, q], then G += X_q ⊗ S̃_col[q]
        for (let q = 0; q < r; q++) terms.push(tf.mul(tf.mul(rowsA[p]!, tf.expandDims(coef[p * r + q]!, 3)), colsB[q]!));
      }
      G.push(tf.reshape(terms.length === 1 ? terms[0]! : tf.addN(terms), [H * B, M, M]) as tf.Tensor3D);
    }
    // final top-m of the summed grid scores per (h, b); ties → lower grid id
    const sum = new Float64Array(H * B * M * M);
    for (const g of G) {
      const d = g.dataSync() as Float32Array;
      for (let i = 0; i < d.length; i++) sum[i] = sum[i]! + d[i]!;
    }
    const pos = new Int32Array(H * B * m); // flat positions into [H·B, M, M]
    const ids = new Int32Array(B * H * m); // [B, H, m] grid ids
    const order = new Int32Array(m);
    for (let hb = 0; hb < H * B; hb++) {
      const gid = (p: number) => rowSel[hb * M + Math.floor(p / M)]! * n + colSel[hb * M + (p % M)]!;
      selectTop(M * M, m, (p) => sum[hb * M * M + p]!, gid, order);
      const h = Math.floor(hb / B);
      const b = hb % B;
      for (let j = 0; j < m; j++) {
        const p = order[j]!;
        pos[hb * m + j] = hb * M * M + p;
        ids[(b * H + h) * m + j] = gid(p);
      }
    }
    // ŝ^(c) [B, H·m] per core → weights [B·Hc, H·m] (bag c of token b is row b·Hc + c)
    const perCore = G.map((g) => {
      const s = tf.reshape(gatherRows(tf.reshape(g, [H * B * M * M, 1]) as tf.Tensor2D, pos), [H, B, m]);
      return tf.reshape(tf.transpose(s, [1, 0, 2]), [B, H * m]) as tf.Tensor2D;
    });
    const weights = tf.reshape(tf.stack(perCore, 1), [B * Hc, H * m]) as tf.Tensor2D;
    const bagIds = new Int32Array(B * Hc * H * m);
    for (let b = 0; b < B; b++) for (let c = 0; c < Hc; c++) bagIds.set(ids.subarray(b * H * m, (b + 1) * H * m), (b * Hc + c) * H * m);
    return { ids: tf.tensor2d(bagIds, [B * Hc, H * m], 'int32'), weights, scores: weights };
  }

  auxLoss(): tf.Scalar {
    return tuckerAuxLoss(this.tuckerCore, this.o.aux.alpha, this.o.aux.tau);
  }

  variables(): Record<string, tf.Variable> {
    return { wq: this.wq, keys: this.keys, tuckerCore: this.tuckerCore };
  }

  dispose(): void {
    for (const v of Object.values(this.variables())) v.dispose();
  }
}
