/**
 * Embedding-bag ops over raw arrays: validate once, then run the native (C++) or TypeScript
 * kernel. The ValueStore calls these; the tfjs op (tfjs-op.ts) wraps the store.
 */
import { ShapeError, ValueError, checkFinite, checkInt } from '@mnemo/core';
import { type NativeAddon, nativeAddon } from './native';
import { type OptimizerStateArrays, type Storage, bagBackwardTs, bagForwardTs } from './ts/embedding-bag';

/** Sizes of one embedding-bag call; `batch` B bags of `bagSize` K positions. */
export interface BagDims {
  rows: number; // N
  dim: number; // dv
  batch: number; // B
  bagSize: number; // K
}

/**
 * Check ids [B, K] (int32 in [0, N) or −1 = padding), weights [B, K] (finite float32) and,
 * when given, gOut [B, dv] (finite). Returns B. With K = 0 the batch cannot be read off the
 * arrays, so `batch` must be passed.
 */
export function validateBag(
  rows: number,
  dim: number,
  ids: unknown,
  weights: unknown,
  bagSize: unknown,
  batch?: number,
  gOut?: unknown,
): number {
  const K = checkInt('bagSize', bagSize, 0);
  if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array [B, K] of row ids');
  if (!(weights instanceof Float32Array)) throw new ShapeError('weights', 'must be a Float32Array [B, K]');
  if (weights.length !== ids.length) {
    throw new ShapeError('weights', `must have one weight per id: ids has ${ids.length} values, weights ${weights.length}`);
  }
  let B: number;
  if (K === 0) {
    if (ids.length !== 0) throw new ShapeError('ids', `bagSize is 0 but ids has ${ids.length} values`);
    if (batch === undefined && gOut instanceof Float32Array) batch = gOut.length / dim;
    if (batch === undefined) throw new ShapeError('batch', 'pass the batch size B when bagSize is 0 (empty bags)');
    B = checkInt('batch', batch, 0);
  } else {
    if (ids.length % K !== 0) throw new ShapeError('ids', `length ${ids.length} is not a multiple of bagSize ${K}; expected [B, K]`);
    B = ids.length / K;
    if (batch !== undefined && batch !== B)
      throw new ShapeError('batch', `ids [${ids.length}] / bagSize ${K} = ${B} bags, but batch = ${batch}`);
  }
  const native = nativeAddon(); // the scans run natively when the addon is there (they are O(B·K + B·dv))
  const bad = native ? native.firstBadId(ids, rows) : firstBadIdTs(ids, rows);
  if (bad >= 0) {
    throw new ValueError('ids', `element ${bad} is ${ids[bad]}; ids must be in [0, ${rows}) or -1 for padding`);
  }
  finite('weights', weights, native);
  if (gOut !== undefined) {
    if (!(gOut instanceof Float32Array)) throw new ShapeError('gOut', 'must be a Float32Array [B, dv]');
    if (gOut.length !== B * dim) throw new ShapeError('gOut', `expected [B=${B}, dv=${dim}] = ${B * dim} values, got ${gOut.length}`);
    finite('gOut', gOut, native);
  }
  return B;
}

function firstBadIdTs(ids: Int32Array, rows: number): number {
  for (let i = 0; i < ids.length; i++) if (ids[i]! >= rows || ids[i]! < -1) return i;
  return -1;
}

function finite(field: string, x: Float32Array, native: NativeAddon | null): void {
  if (!native) {
    checkFinite(field, x);
    return;
  }
  const i = native.firstNonFinite(x);
  if (i >= 0) throw new ValueError(field, `element ${i} is ${x[i]}; inputs must be finite numbers`);
}

/** out[b] = Σ_j w[b,j] · V[ids[b,j]]  // [B, dv] */
export function bagForward(
  native: NativeAddon | null,
  values: Storage,
  dtype: number,
  dim: number,
  ids: Int32Array,
  weights: Float32Array,
  bagSize: number,
  out: Float32Array,
): void {
  if (bagSize === 0 || out.length === 0) {
    out.fill(0);
    return;
  }
  if (native) native.bagForward(values, dtype, dim, ids, weights, bagSize, out);
  else bagForwardTs(values, dtype, dim, ids, weights, bagSize, out);
}

/** gw (when given) and the fused optimizer update (when params is given). Returns touched rows. */
export function bagBackward(
  native: NativeAddon | null,
  values: Storage,
  dtype: number,
  dim: number,
  ids: Int32Array,
  weights: Float32Array,
  gOut: Float32Array,
  bagSize: number,
  gw: Float32Array | null,
  params: Float64Array | null,
  state: OptimizerStateArrays,
): number {
  if (bagSize === 0 || ids.length === 0) return 0;
  if (native) {
    // the addon's `moments` argument is full Adam's (m, v) [N, 2, dv] or row-wise Adam's f32 m [N, dv]
    return native.bagBackward(
      values,
      dtype,
      dim,
      ids,
      weights,
      gOut,
      bagSize,
      gw,
      params,
      state.accum,
      state.moments ?? state.m,
      state.steps,
      state.m16,
      state.rowV,
    );
  }
  return bagBackwardTs(values, dtype, dim, ids, weights, gOut, bagSize, gw, params, state);
}
