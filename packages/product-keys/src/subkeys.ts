/**
 * Sub-key tables. Keys are never stored as an N × dk matrix: each head h has two tables
 * K1 = subkeys[h, 0], K2 = subkeys[h, 1] ∈ R^{n × dk/2}; slot (i, j) has key
 * concat(K1[i], K2[j]) and slot id i·n + j (first half = most significant digit).
 */
import { ConfigError, checkInt } from '@mnemo/core';
import * as tf from '@tensorflow/tfjs-core';

/** meta: U(±1/√dk) ("Memory Layers at Scale"); xlm: U(±1/√(dk/2)) (XLM's PKM). */
export type KeyInit = 'meta' | 'xlm';

export interface SubkeyShape {
  heads: number; // H
  numKeys: number; // n, N = n²
  keyDim: number; // dk (even)
}

export function checkSubkeyShape(s: SubkeyShape): void {
  checkInt('heads', s.heads, 1);
  checkInt('numKeys', s.numKeys, 1, 46340);
  checkInt('keyDim', s.keyDim, 2);
  if (s.keyDim % 2) throw new ConfigError('keyDim', `must be even (two halves), got ${s.keyDim}`);
}

/** Uniform init bound of one sub-key element. */
export function subkeyInitBound(init: KeyInit, keyDim: number): number {
  if (init === 'meta') return 1 / Math.sqrt(keyDim);
  if (init === 'xlm') return 1 / Math.sqrt(keyDim / 2);
  throw new ConfigError('keyInit', `unknown initialiser '${String(init)}'; use 'meta' or 'xlm'`);
}

/** Fresh sub-keys [H, 2, n, dk/2], uniform in ±bound(init), seeded. */
export function initSubkeys(shape: SubkeyShape, init: KeyInit = 'meta', seed = 0): tf.Tensor4D {
  checkSubkeyShape(shape);
  const b = subkeyInitBound(init, shape.keyDim);
  return tf.randomUniform([shape.heads, 2, shape.numKeys, shape.keyDim / 2], -b, b, 'float32', seed) as tf.Tensor4D;
}

/**
 * The explicit key matrix [H, N, dk] that product keys avoid (for tests and the brute-force
 * reference only): keys[h, i·n + j] = concat(K1[i], K2[j]).
 */
export function explicitKeys(subkeys: Float32Array, heads: number, n: number, keyDim: number): Float32Array {
  const half = keyDim / 2;
  const N = n * n;
  const out = new Float32Array(heads * N * keyDim);
  for (let h = 0; h < heads; h++) {
    const k1 = h * 2 * n * half;
    const k2 = k1 + n * half;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const o = (h * N + i * n + j) * keyDim;
        out.set(subkeys.subarray(k1 + i * half, k1 + (i + 1) * half), o);
        out.set(subkeys.subarray(k2 + j * half, k2 + (j + 1) * half), o + half);
      }
    }
  }
  return out;
}
