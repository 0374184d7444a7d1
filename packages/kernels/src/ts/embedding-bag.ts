/**
 * Embedding bag, portable TypeScript kernels (docs/design.md §2.4 and the backward without float
 * atomics). The C++ kernels in native/cpu implement exactly this, and are tested against it.
 *
 *   values  V   [N, dv]  storage dtype code 0 = float32, 1 = bfloat16, 2 = float16
 *   ids         [B, K]   int32 row ids; −1 = padding (skipped)
 *   weights w   [B, K]   float32
 *   forward:  out[b] = Σ_j w[b,j] · V[ids[b,j]]                    // [B, dv]
 *   backward: gw[b,j] = <gOut[b], V[ids[b,j]]>  (V before the update) // [B, K]
 *             gV[r]   = Σ_{(b,j): ids[b,j]=r} w[b,j] · gOut[b]       // per touched row, never stored
 *             then the optimizer updates row r once (see ../optimizers.ts).
 * The backward sorts positions by (row, position) — the histogram → prefix sum → reverse table of
 * the reference kernel — so each row's gradient is summed in one place, in a fixed order.
 * Arithmetic in float64; results are rounded once when stored. No validation: the op validates.
 */
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half';

export type Storage = Float32Array | Uint16Array;
export const DTYPE_CODE = { float32: 0, bfloat16: 1, float16: 2 } as const;

/**
 * Per-row optimizer state; only the arrays of the optimizer in use exist (the others are null).
 * One meaning per member; state-layout.ts maps each to its store-file tensor.
 */
export interface OptimizerStateArrays {
  accum: Float32Array | null; // Adagrad Σg²                          [N, dv]
  moments: Float32Array | null; // full Adam: (m, v) per row         [N, 2, dv]
  m: Float32Array | null; // row-wise Adam, momentDtype float32: m     [N, dv]
  m16: Uint16Array | null; // row-wise Adam, momentDtype bfloat16: m   [N, dv]
  rowV: Float32Array | null; // row-wise Adam: second moment per row  [N]
  steps: Int32Array | null; // Adam per-row step count                 [N]
}

export function readRow(values: Storage, dtype: number, dim: number, r: number, dst: Float64Array): void {
  const o = r * dim;
  if (dtype === 0) for (let c = 0; c < dim; c++) dst[c] = values[o + c]!;
  else if (dtype === 1) for (let c = 0; c < dim; c++) dst[c] = bf16ToF32(values[o + c]!);
  else for (let c = 0; c < dim; c++) dst[c] = f16ToF32(values[o + c]!);
}

export function writeRow(values: Storage, dtype: number, dim: number, r: number, src: Float64Array): void {
  const o = r * dim;
  if (dtype === 0) for (let c = 0; c < dim; c++) values[o + c] = src[c]!;
  else if (dtype === 1) for (let c = 0; c < dim; c++) values[o + c] = f32ToBf16(src[c]!);
  else for (let c = 0; c < dim; c++) values[o + c] = f32ToF16(src[c]!);
}

export function bagForwardTs(
  values: Storage,
  dtype: number,
  dim: number,
  ids: Int32Array, // [B, K]
  weights: Float32Array, // [B, K]
  bagSize: number, // K
  out: Float32Array, // [B, dv]
): void {
  const B = out.length / dim;
  const acc = new Float64Array(dim);
  const row = new Float64Array(dim);
  for (let b = 0; b < B; b++) {
    acc.fill(0);
    for (let j = 0; j < bagSize; j++) {
      const p = b * bagSize + j;
      const r = ids[p]!;
      if (r < 0) continue;
      const w = weights[p]!;
      readRow(values, dtype, dim, r, row);
      for (let c = 0; c < dim; c++) acc[c]! += w * row[c]!;
    }
    out.set(acc, b * dim);
  }
}

/** Positions with a real id, sorted by (row, position). */
export function sortPositionsByRow(ids: Int32Array): Int32Array {
  const P = ids.length;
  let n = 0;
  for (let p = 0; p < P; p++) if (ids[p]! >= 0) n++;
  const order = new Int32Array(n);
  if (P < 2 ** 22) {
    // key = row·P + p is exact in float64 (row < 2^31, P < 2^22); typed sort is numeric
    const keys = new Float64Array(n);
    let i = 0;
    for (let p = 0; p < P; p++) if (ids[p]! >= 0) keys[i++] = ids[p]! * P + p;
    keys.sort();
    for (let t = 0; t < n; t++) order[t] = keys[t]! % P;
  } else {
    let i = 0;
    for (let p = 0; p < P; p++) if (ids[p]! >= 0) order[i++] = p;
    order.sort((a, b) => ids[a]! - ids[b]! || a - b);
  }
  return order;
}

/**
 * Fused backward. `params` = packOptimizer(...) or null for no update (gw only).
 * Returns the number of distinct rows touched.
 */
export function bagBackwardTs(
  values: Storage,
  dtype: number,
  dim: number,
  ids: Int32Array, // [B, K]
  weights: Float32Array, // [B, K]
  gOut: Float32Array, // [B, dv]
  bagSize: number, // K
  gw: Float32Array | null, // [B, K] out
  params: Float64Array | null,
  state: OptimizerStateArrays,
): number {
  if (gw) gw.fill(0);
  if (bagSize === 0) return 0;
  const order = sortPositionsByRow(ids);
  const n = order.length;
  const vrow = new Float64Array(dim);
  const g = new Float64Array(dim);
  const kind = params ? params[0]! : -1;
  const lr = params ? params[1]! : 0;
  const beta1 = params ? params[2]! : 0;
  const beta2 = params ? params[3]! : 0;
  const eps = params ? params[4]! : 0;
  const wd = params ? params[5]! : 0;
  const clip = params ? params[6]! : 0;
  const maxNorm = params ? params[7]! : 0;
  const rowWise = params ? (params[8] ?? 0) : 0;
  const momentBf16 = params ? (params[9] ?? 0) : 0;

  // g = Σ_{p in run} w[p] · gOut[bag(p)]
  const rowGrad = (s: number, e: number): void => {
    g.fill(0);
    for (let t = s; t < e; t++) {
      const p = order[t]!;
      const w = weights[p]!;
      const go = ((p / bagSize) | 0) * dim;
      for (let c = 0; c < dim; c++) g[c]! += w * gOut[go + c]!;
    }
  };

  // 'global' clip needs ‖g‖ over all touched rows first (a pass over gOut only, V is not read)
  let globalScale = 1;
  if (params && clip === 2) {
    let sq = 0;
    for (let s = 0; s < n; ) {
      let e = s + 1;
      while (e < n && ids[order[e]!] === ids[order[s]!]) e++;
      rowGrad(s, e);
      for (let c = 0; c < dim; c++) sq += g[c]! * g[c]!;
      s = e;
    }
    const norm = Math.sqrt(sq);
    if (norm > maxNorm) globalScale = maxNorm / norm;
  }

  let touched = 0;
  for (let s = 0; s < n; ) {
    const r = ids[order[s]!]!;
    let e = s + 1;
    while (e < n && ids[order[e]!] === r) e++;
    touched++;
    readRow(values, dtype, dim, r, vrow);
    if (gw) {
      for (let t = s; t < e; t++) {
        const p = order[t]!;
        const go = ((p / bagSize) | 0) * dim;
        let dot = 0;
        for (let c = 0; c < dim; c++) dot += gOut[go + c]! * vrow[c]!;
        gw[p] = dot;
      }
    }
    if (params) {
      rowGrad(s, e);
      let scale = globalScale;
      if (clip === 1) {
        let sq = 0;
        for (let c = 0; c < dim; c++) sq += g[c]! * g[c]!;
        const norm = Math.sqrt(sq);
        if (norm > maxNorm) scale = maxNorm / norm;
      }
      const decay = 1 - lr * wd;
      const o = r * dim;
      if (kind === 0) {
        for (let c = 0; c < dim; c++) vrow[c] = vrow[c]! * decay - lr * scale * g[c]!;
      } else if (kind === 1) {
        const A = state.accum!;
        for (let c = 0; c < dim; c++) {
          const gc = scale * g[c]!;
          const a = A[o + c]! + gc * gc;
          A[o + c] = a;
          vrow[c] = vrow[c]! * decay - (lr * gc) / (Math.sqrt(a) + eps);
        }
      } else if (rowWise) {
        // partial row-wise Adam: v_r ← β2 v_r + (1−β2)·mean(g²); m per element
        const t = ++state.steps![r]!;
        const bc1 = 1 - beta1 ** t;
        const bc2 = 1 - beta2 ** t;
        let sq = 0;
        for (let c = 0; c < dim; c++) sq += (scale * g[c]!) ** 2;
        const vr = beta2 * state.rowV![r]! + (1 - beta2) * (sq / dim);
        state.rowV![r] = vr;
        const k = lr / bc1 / (Math.sqrt(vr / bc2) + eps);
        const M16 = state.m16;
        const M = state.m;
        for (let c = 0; c < dim; c++) {
          const gc = scale * g[c]!;
          const old = momentBf16 ? bf16ToF32(M16![o + c]!) : M![o + c]!;
          const m = beta1 * old + (1 - beta1) * gc;
          if (momentBf16) M16![o + c] = f32ToBf16(m);
          else M![o + c] = m;
          vrow[c] = vrow[c]! * decay - k * m;
        }
      } else {
        const M = state.moments!;
        const t = ++state.steps![r]!;
        const bc1 = 1 - beta1 ** t;
        const bc2 = 1 - beta2 ** t;
        const mo = 2 * o;
        for (let c = 0; c < dim; c++) {
          const gc = scale * g[c]!;
          const m = beta1 * M[mo + c]! + (1 - beta1) * gc;
          const v = beta2 * M[mo + dim + c]! + (1 - beta2) * gc * gc;
          M[mo + c] = m;
          M[mo + dim + c] = v;
          vrow[c] = vrow[c]! * decay - (lr * (m / bc1)) / (Math.sqrt(v / bc2) + eps);
        }
      }
      writeRow(values, dtype, dim, r, vrow);
    }
    s = e;
  }
  return touched;
}
