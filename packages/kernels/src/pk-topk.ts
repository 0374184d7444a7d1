/**
 * Op: product-key top-k over raw arrays. Validates once, then runs the best kernel available
 * (native C++ when the addon loaded, else the TypeScript kernel). `@mnemo/product-keys` builds
 * its tfjs op and gradient on top of this.
 */
import { ConfigError, ShapeError, checkFinite, checkInt } from '@mnemo/core';
import { nativeAddon } from './native';
import { pkBackwardTs } from './ts/pk-backward';
import { type PkDims, type PkTopKResult, pkTopKTs } from './ts/pk-topk';

export type { PkDims, PkTopKResult };

export type KernelImpl = 'native' | 'ts';

export interface PkTopKOptions {
  /** force a kernel; default: native when available */
  impl?: KernelImpl;
  /** skip the NaN/Inf scan of the queries (callers that already checked) */
  trusted?: boolean;
}

export function validatePkDims(d: PkDims): void {
  checkInt('batch', d.batch, 1);
  checkInt('heads', d.heads, 1);
  checkInt('n', d.n, 1, 46340); // n² must fit an int32 slot id
  checkInt('dk', d.dk, 2);
  if (d.dk % 2 !== 0) throw new ConfigError('dk', `must be even (two halves), got ${d.dk}`);
  checkInt('k', d.k, 1);
  if (d.k > d.n) throw new ConfigError('k', `must be ≤ n (${d.n}) sub-keys per half, got ${d.k}`);
}

/** Native kernel hook: the C++ addon's fused top-k, looked up on first use (or set explicitly). */
let nativePkTopK: ((q: Float32Array, keys: Float32Array, d: PkDims) => PkTopKResult) | undefined;
let nativeLooked = false;

export function setNativePkTopK(fn: typeof nativePkTopK): void {
  nativePkTopK = fn;
  nativeLooked = true;
}

function nativeKernel(): typeof nativePkTopK {
  if (!nativeLooked) {
    nativeLooked = true;
    const a = nativeAddon();
    if (a) {
      nativePkTopK = (q, keys, d) => {
        const scores = new Float32Array(d.batch * d.heads * d.k); // [B, H, k]
        const ids = new Int32Array(d.batch * d.heads * d.k); // [B, H, k]
        a.pkTopK(q, keys, d.batch, d.heads, d.n, d.dk, d.k, scores, ids);
        return { scores, ids };
      };
    }
  }
  return nativePkTopK;
}

export function productKeyTopK(queries: Float32Array, subkeys: Float32Array, dims: PkDims, opts: PkTopKOptions = {}): PkTopKResult {
  validatePkDims(dims);
  const { batch, heads, n, dk } = dims;
  if (!(queries instanceof Float32Array)) throw new ShapeError('queries', 'must be a Float32Array');
  if (!(subkeys instanceof Float32Array)) throw new ShapeError('subkeys', 'must be a Float32Array');
  if (queries.length !== batch * heads * dk) {
    throw new ShapeError('queries', `expected [B=${batch}, H=${heads}, dk=${dk}] = ${batch * heads * dk} values, got ${queries.length}`);
  }
  if (subkeys.length !== heads * 2 * n * (dk / 2)) {
    throw new ShapeError('subkeys', `expected [H=${heads}, 2, n=${n}, dk/2=${dk / 2}] = ${heads * n * dk} values, got ${subkeys.length}`);
  }
  if (!opts.trusted) {
    checkFinite('queries', queries);
    checkFinite('subkeys', subkeys);
  }
  const native = opts.impl === 'ts' ? undefined : nativeKernel();
  const impl = opts.impl ?? (native ? 'native' : 'ts');
  if (impl === 'native') {
    if (!native) {
      throw new ConfigError('impl', "native kernels are not available (the addon did not build or load); use impl: 'ts'");
    }
    return native(queries, subkeys, dims);
  }
  return pkTopKTs(queries, subkeys, dims);
}

export interface PkBackwardResult {
  dq: Float32Array; // [B, H, dk]
  dkeys: Float32Array; // [H, 2, n, dk/2]
}

/**
 * Backward of `productKeyTopK`: from dL/dscores [B, H, k] and the ids it returned, the gradients
 * of the queries [B, H, dk] and sub-keys [H, 2, n, dk/2] (zero outside the selected rows).
 */
export function productKeyTopKBackward(
  grad: Float32Array,
  ids: Int32Array,
  queries: Float32Array,
  subkeys: Float32Array,
  dims: PkDims,
  opts: { impl?: KernelImpl } = {},
): PkBackwardResult {
  validatePkDims(dims);
  const { batch, heads, n, dk, k } = dims;
  const bhk = batch * heads * k;
  if (!(grad instanceof Float32Array) || grad.length !== bhk)
    throw new ShapeError('grad', `expected a Float32Array of [B, H, k] = ${bhk} values`);
  if (!(ids instanceof Int32Array) || ids.length !== bhk)
    throw new ShapeError('ids', `expected an Int32Array of [B, H, k] = ${bhk} values`);
  if (!(queries instanceof Float32Array) || queries.length !== batch * heads * dk) {
    throw new ShapeError('queries', `expected a Float32Array of [B, H, dk] = ${batch * heads * dk} values`);
  }
  if (!(subkeys instanceof Float32Array) || subkeys.length !== heads * n * dk) {
    throw new ShapeError('subkeys', `expected a Float32Array of [H, 2, n, dk/2] = ${heads * n * dk} values`);
  }
  const nn = n * n;
  for (let i = 0; i < bhk; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < nn)) throw new ShapeError('ids', `ids[${i}] = ${id} is outside [0, n² = ${nn})`);
  }
  const dq = new Float32Array(queries.length);
  const dkeys = new Float32Array(subkeys.length);
  const addon = opts.impl === 'ts' ? undefined : nativeAddon();
  if (opts.impl === 'native' && !addon) {
    throw new ConfigError('impl', "native kernels are not available (the addon did not build or load); use impl: 'ts'");
  }
  if (addon) addon.pkBackward(grad, ids, queries, subkeys, batch, heads, n, dk, k, dq, dkeys);
  else pkBackwardTs(grad, ids, queries, subkeys, dims, dq, dkeys);
  return { dq, dkeys };
}
