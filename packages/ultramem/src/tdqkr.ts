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
 *   G = S̃_row (Σ_c C^(c)) S̃_colᵀ            [H, B, M, M]  exact rescoring of M candidates per side
 *                                            (host, no gradient: only the winners need one)
 *   top-m of G per (h, b)                    → grid ids g = row·n + col; ties → lower grid id
 *   ŝ^(c) = S_row[g] C^(c) S_col[g]ᵀ          [H, B, m]  recomputed at the winners with gradient
 *                                            → bag c of each token pools with core c's scores (MCS)
 *
 * Output: `bags` = Hc per token (bag c = the same ids, core c's raw scores as weights), ids in
 * [0, n²). Gradients reach Wq, the keys and the cores through ŝ; none through u, t or the
 * selection. The auxiliary loss on the cores (tucker.ts) is this addressor's `auxLoss()`.
 */
import { gatherRows } from '@mnemo/kernels';
import type { Address, Addressor } from '@mnemo/memory-layer';
import { normalizeQueries } from '@mnemo/product-keys';
import * as tf from '@tensorflow/tfjs-core';
import { selectTop, selectTopOf } from './select';
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

/**
 * Candidates of one side into out[0..M): the `m` largest of v[off, off + n) (ties → lower
 * index), and with `signed` the `m` smallest too (all n when 2m ≥ n).
 */
function preselect(v: Float32Array, off: number, n: number, m: number, signed: boolean, out: Int32Array, tmp: Int32Array): void {
  if (signed && 2 * m >= n) {
    for (let i = 0; i < n; i++) out[i] = i;
    return;
  }
  selectTopOf(v, off, n, m, out);
  if (!signed) return;
  selectTopOf(v, off, n, m, tmp, -1); // the last m of the same order (ties → higher index): disjoint from the first m
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
    const picked = new Int32Array(M);
    const tmp = new Int32Array(m);
    for (let s = 0; s < 2; s++) {
      const pr = proj[s]!;
      for (let hb = 0; hb < H * B; hb++) {
        preselect(pr, hb * n, n, m, signed, picked, tmp);
        const h = Math.floor(hb / B);
        for (let j = 0; j < M; j++) {
          sel[s]![hb * M + j] = picked[j]!;
          for (let a = 0; a < r; a++) keyRows[s]![(hb * M + j) * r + a] = (h * n + picked[j]!) * r + a;
        }
      }
    }
    // candidate scores on the host, no gradient: S̃[h, b, j, a] = <q_s[h, b], K_s[h, sel_j, a]>   [H, B, M, r]
    const qd = qh.dataSync() as Float32Array; // [H, B, dk]
    const candScores = (s: number) => {
      const K = Ks[s]!.dataSync() as Float32Array; // [H, n·r, d]
      const rows = keyRows[s]!;
      const out = new Float32Array(H * B * M * r);
      for (let hb = 0; hb < H * B; hb++) {
        const qo = hb * dk + s * d;
        for (let jr = 0; jr < M * r; jr++) {
          const ko = rows[hb * M * r + jr]! * d;
          let acc = 0;
          for (let e = 0; e < d; e++) acc += qd[qo + e]! * K[ko + e]!;
          out[hb * M * r + jr] = acc;
        }
      }
      return out;
    };
    const srt = candScores(0); // S̃_row [H, B, M, r]
    const sct = candScores(1); // S̃_col
    const rowSel = sel[0]!;
    const colSel = sel[1]!;
    // selection on the host: G = S̃_row C̄ S̃_colᵀ with C̄ = Σ_c C^(c) (the score MCS selects by)
    // [M, M] per (h, b); only the m winners' scores are recomputed below with gradient, so the
    // M² grid never becomes a tensor (it was 2·M²/m = 64x the tensor work of the winners)
    const X = new Float64Array(M * r); // X[i, q] = Σ_p S̃_row[i, p] C̄[p, q]
    const g = new Float64Array(M * M);
    const pos = new Int32Array(H * B * m); // winners' (row candidate, column candidate) as i·M + j
    const ids = new Int32Array(B * H * m); // [B, H, m] grid ids
    const order = new Int32Array(m);
    for (let hb = 0; hb < H * B; hb++) {
      const h = Math.floor(hb / B);
      const b = hb % B;
      for (let i = 0; i < M; i++) {
        for (let q = 0; q < r; q++) {
          let acc = 0;
          for (let p = 0; p < r; p++) acc += srt[(hb * M + i) * r + p]! * cbar[(h * r + p) * r + q]!;
          X[i * r + q] = acc;
        }
      }
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < M; j++) {
          let acc = 0;
          for (let q = 0; q < r; q++) acc += X[i * r + q]! * sct[(hb * M + j) * r + q]!;
          g[i * M + j] = acc;
        }
      }
      const gid = (p: number) => rowSel[hb * M + Math.floor(p / M)]! * n + colSel[hb * M + (p % M)]!;
      selectTop(M * M, m, (p) => g[p]!, gid, order); // ties → lower grid id
      for (let j = 0; j < m; j++) {
        pos[hb * m + j] = order[j]!;
        ids[(b * H + h) * m + j] = gid(order[j]!);
      }
    }
    // the winners scores with gradient (to q, keys, cores): rows/cols of K at the winners, one
    // gather per rank component a, so each S̃[·, a] is its own [H, B, m] tensor (an unstack of a
    // [H, B, m, r] tensor on its last axis, and its stack in the gradient, cost more than the rest)
    const winRows = [0, 1].map(() => Array.from({ length: r }, () => new Int32Array(H * B * m))); // [s][a] → [H·B·m]
    for (let hb = 0; hb < H * B; hb++) {
      const h = Math.floor(hb / B);
      for (let j = 0; j < m; j++) {
        const p = pos[hb * m + j]!;
        const row = rowSel[hb * M + Math.floor(p / M)]!;
        const col = colSel[hb * M + (p % M)]!;
        for (let a = 0; a < r; a++) {
          winRows[0]![a]![hb * m + j] = (h * n + row) * r + a;
          winRows[1]![a]![hb * m + j] = (h * n + col) * r + a;
        }
      }
    }
    const scoresAt = (s: number) => {
      const flat = tf.reshape(Ks[s]!, [H * n * r, d]) as tf.Tensor2D;
      const q = tf.expandDims(qs[s]!, 2); // [H, B, 1, d]
      return winRows[s]!.map(
        (rows) => tf.sum(tf.mul(tf.reshape(gatherRows(flat, rows), [H, B, m, d]), q), -1) as tf.Tensor3D, // [H, B, m]
      );
    };
    // r is 2–4: ŝ^(c) = Σ_{p,q} S_row[p] C^(c)[p, q] S_col[q] as r² broadcast multiply-adds
    // (thousands of tiny batched matmuls cost wasm ~50x more per FLOP)
    const rowsA = scoresAt(0); // r × [H, B, m]
    const colsB = scoresAt(1); // r × [H, B, m]
    const perCore: tf.Tensor2D[] = [];
    for (let c = 0; c < Hc; c++) {
      const coef = tf.unstack(tf.reshape(tf.slice(this.tuckerCore, [c, 0, 0, 0], [1, H, r, r]), [H, 1, 1, r * r]), 3); // r² × [H, 1, 1]
      const terms: tf.Tensor[] = [];
      for (let p = 0; p < r; p++) for (let q = 0; q < r; q++) terms.push(tf.mul(tf.mul(rowsA[p]!, coef[p * r + q]!), colsB[q]!));
      const sc = (terms.length === 1 ? terms[0]! : tf.addN(terms)) as tf.Tensor3D; // [H, B, m]
      perCore.push(tf.reshape(tf.transpose(sc, [1, 0, 2]), [B, H * m]) as tf.Tensor2D);
    }
    // ŝ^(c) [B, H·m] per core → weights [B·Hc, H·m] (bag c of token b is row b·Hc + c)
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
