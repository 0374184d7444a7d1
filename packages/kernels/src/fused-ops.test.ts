/**
 * The fused ops (fused-ops.ts) on the native dense path against the same math as tfjs ops on the
 * wasm path: values and gradients within float32 tolerance, on small shapes (one thread), odd
 * lengths (vector tails), large ones (all cores), every mask layout; each op really served by its
 * native kernels (counted), and the tfjs fallback taken off the contract and with
 * MNEMO_FUSED_OPS=0.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fusedOpCalls, fusedOps, initBackend, maskedSoftmax, nativeDense, rmsNorm, setDensePath, siluMul } from './index';
import { nativeAddon } from './native';
import { randTensor, relErr } from './testing';

const native = nativeDense();
if (!native.addon) console.log(`[fused-ops.test] skipped: ${native.reason}`);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(() => setDensePath());
afterEach(() => {
  delete process.env.MNEMO_FUSED_OPS;
});

/** The op's value and the gradients of Σ value ⊙ w (w fixed, so every output element matters). */
function valueAndGrads(path: 'native' | 'wasm', f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]): Float32Array[] {
  setDensePath(path);
  return tf.tidy(() => {
    const y = f(...xs);
    const w = randTensor(y.shape, 99, -1, 1);
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
    return [y, ...grads].map((t) => t.dataSync().slice() as Float32Array);
  });
}

function expectClose(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], kernels: number, tol = 2e-6) {
  const want = valueAndGrads('wasm', f, xs);
  const before = fusedOpCalls();
  const got = valueAndGrads('native', f, xs);
  // forward twice (y, then inside grads) and backward once
  expect(fusedOpCalls() - before).toBe(kernels);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(got[i]!.length).toBe(want[i]!.length);
    expect(relErr(got[i]!, want[i]!), `output ${i}`).toBeLessThan(tol);
  }
}

describe.runIf(native.addon)('fused ops, native vs tfjs ops', () => {
  it('are on for the native dense path only', () => {
    setDensePath('wasm');
    expect(fusedOps()).toBe(false);
    setDensePath('native');
    expect(fusedOps()).toBe(true);
    process.env.MNEMO_FUSED_OPS = '0';
    expect(fusedOps()).toBe(false);
  });

  for (const shape of [
    [3, 7],
    [5, 37],
    [512, 520],
  ]) {
    it(`siluMul ${shape.join('×')}: value, dg and du`, () => {
      const g = randTensor(shape, 1, -6, 6);
      const u = randTensor(shape, 2, -2, 2);
      expectClose((a, b) => siluMul(a!, b!), [g, u], 3);
    });
  }

  it('siluMul saturates cleanly at large |g| (no NaN, σ → 0 or 1)', () => {
    setDensePath('native');
    const g = tf.tensor1d([-200, -90, -30, 0, 30, 90, 200]);
    const y = siluMul(g, tf.onesLike(g)).dataSync();
    expect(Array.from(y).every(Number.isFinite)).toBe(true);
    expect(y[0]).toBeCloseTo(0, 30);
    expect(y[3]).toBe(0);
    expect(y[6]).toBeCloseTo(200, 4);
  });

  const causal = (R: number, S: number, B = 1) =>
    tf.tensor4d(
      Float32Array.from({ length: B * R * S }, (_, i) => (i % S > (Math.floor(i / S) % R) + (Math.floor(i / (R * S)) % 3) ? -1e9 : 0)),
      [B, 1, R, S],
    );
  const softmaxCases: [string, number[], () => tf.Tensor | null][] = [
    ['no mask', [2, 3, 5, 11], () => null],
    ['shared causal mask', [2, 3, 6, 6], () => causal(6, 6)],
    ['per-batch mask (cached decode)', [3, 2, 4, 9], () => causal(4, 9, 3)],
    ['large, all cores', [2, 4, 128, 256], () => causal(128, 256)],
  ];
  for (const [label, shape, mask] of softmaxCases) {
    it(`maskedSoftmax, ${label}: value and dx`, () => {
      const x = randTensor(shape, 3, -4, 4);
      const m = mask();
      expectClose((a) => maskedSoftmax(a as tf.Tensor4D, m), [x], 3);
    });
  }

  it('maskedSoftmax gives exactly 0 at masked keys and rows summing to 1', () => {
    setDensePath('native');
    const y = maskedSoftmax(randTensor([1, 1, 6, 6], 4, -4, 4) as tf.Tensor4D, causal(6, 6)).dataSync();
    for (let r = 0; r < 6; r++) {
      let s = 0;
      for (let j = 0; j < 6; j++) {
        if (j > r) expect(y[r * 6 + j]).toBe(0);
        s += y[r * 6 + j]!;
      }
      expect(s).toBeCloseTo(1, 6);
    }
  });

  for (const shape of [
    [4, 9],
    [2, 3, 37],
    [4, 256, 512],
  ]) {
    it(`rmsNorm ${shape.join('×')}: value, dx and dg`, () => {
      const x = randTensor(shape, 5, -3, 3);
      const g = randTensor([shape[shape.length - 1]!], 6, 0.5, 1.5);
      expectClose((a, b) => rmsNorm(a!, b as tf.Tensor1D, 1e-5), [x, g], 3, 1e-5);
    });
  }

  it('are batch-invariant: the first half of a batch gives the same bits alone as inside the whole', () => {
    setDensePath('native');
    const x = randTensor([8, 4, 64, 96], 11, -3, 3) as tf.Tensor4D; // 196K floats: the threads split it
    const g = randTensor([96], 12, 0.5, 1.5) as tf.Tensor1D;
    const mask = causal(64, 96);
    const half = tf.slice(x, [0, 0, 0, 0], [4, 4, 64, 96]) as tf.Tensor4D;
    const n = half.size;
    for (const [name, f] of [
      ['siluMul', (t: tf.Tensor) => siluMul(t, tf.sin(t))],
      ['maskedSoftmax', (t: tf.Tensor) => maskedSoftmax(t as tf.Tensor4D, mask)],
      ['rmsNorm', (t: tf.Tensor) => rmsNorm(t, g, 1e-5)],
    ] as const) {
      const whole = f(x).dataSync().subarray(0, n);
      const alone = f(half).dataSync();
      let differ = 0;
      for (let i = 0; i < n; i++) if (whole[i] !== alone[i]) differ++;
      expect(differ, name).toBe(0);
    }
  });

  it('falls back to the tfjs ops off the contract and when switched off', () => {
    setDensePath('native');
    const before = fusedOpCalls();
    const x = randTensor([2, 2, 3, 4], 7, -1, 1) as tf.Tensor4D;
    maskedSoftmax(x, tf.zeros([1, 2, 3, 4])).dispose(); // mask per head: not the contract
    siluMul(randTensor([3, 4], 8, -1, 1), randTensor([4], 9, -1, 1)).dispose(); // a broadcast
    process.env.MNEMO_FUSED_OPS = '0';
    rmsNorm(x, randTensor([4], 10, 1, 2) as tf.Tensor1D, 1e-5).dispose();
    expect(fusedOpCalls()).toBe(before);
  });

  it('the addon refuses an operand outside the heap, naming the op', () => {
    const a = nativeAddon() as unknown as { fusedF32(h: Float32Array, op: number, args: Float64Array): void };
    const heap = new Float32Array(8);
    expect(() => a.fusedF32(heap, 0, Float64Array.from([0, 0, 4, 8]))).toThrow(/op 0: an operand lies outside the heap/);
    expect(() => a.fusedF32(heap, 5, Float64Array.from([0, 0, 0, 0, 0]))).toThrow(/op 5 takes 8 args/);
    a.fusedF32(heap, 0, Float64Array.from([0, 0, 4, 4])); // in range: runs
  });
});
