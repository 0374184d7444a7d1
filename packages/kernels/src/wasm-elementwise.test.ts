/**
 * Add, Sub and Multiply on the native dense path (wasm-elementwise.ts) against tfjs-wasm's own
 * kernels: bit-identical on every shape the native path takes (equal, a row repeated along the
 * leading dims on either side, a scalar on either side), the other shapes and small tensors left
 * to wasm, and gradients equal through both.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_ELEMENTWISE_MIN, broadcastPeriod, initBackend, nativeDense, nativeElementwiseCalls, setDensePath } from './index';
import { randTensor } from './testing';

const native = nativeDense();
if (!native.addon) console.log(`[wasm-elementwise.test] native dense path skipped: ${native.reason}`);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: false });
});
afterAll(() => setDensePath());

const ops = { Add: tf.add, Sub: tf.sub, Multiply: tf.mul } as const;

function on(path: 'native' | 'wasm', f: () => tf.Tensor) {
  setDensePath(path);
  const y = f();
  const out = { shape: y.shape, values: y.dataSync().slice() };
  y.dispose();
  return out;
}

describe('broadcastPeriod', () => {
  it('is n for the whole output, 1 for a scalar, the row for a trailing broadcast, null otherwise', () => {
    expect(broadcastPeriod([4, 8], [4, 8])).toBe(32);
    expect(broadcastPeriod([1, 1, 8], [3, 4, 8])).toBe(8);
    expect(broadcastPeriod([4, 8], [3, 4, 8])).toBe(32);
    expect(broadcastPeriod([1], [3, 4, 8])).toBe(1);
    expect(broadcastPeriod([], [3, 4])).toBe(1);
    expect(broadcastPeriod([4, 1], [4, 8])).toBeNull(); // a column: not a repeating row
    expect(broadcastPeriod([3, 1, 8], [3, 4, 8])).toBeNull();
  });
});

describe.runIf(native.addon)('native Add / Sub / Multiply', () => {
  const big = [2048, 512]; // 1M elements, at NATIVE_ELEMENTWISE_MIN
  const cases: [string, number[], number[]][] = [
    ['equal shapes', big, big],
    ['row on the right', [4, 512, 512], [512]],
    ['row on the left', [1, 512], [4, 512, 512]],
    ['scalar on the right', big, []],
    ['scalar on the left', [1], big],
    ['matrix repeated along a batch', [2, 1024, 512], [1024, 512]],
  ];
  for (const [name, op] of Object.entries(ops)) {
    for (const [label, sa, sb] of cases) {
      it(`${name}, ${label}: bit-identical to wasm, served natively`, () => {
        const a = randTensor(sa, 1, -2, 2);
        const b = randTensor(sb, 2, -2, 2);
        const want = on('wasm', () => op(a, b));
        const before = nativeElementwiseCalls();
        const got = on('native', () => op(a, b));
        expect(nativeElementwiseCalls()).toBe(before + 1);
        expect(got.shape).toEqual(want.shape);
        expect(Buffer.from(got.values.buffer).equals(Buffer.from(want.values.buffer))).toBe(true);
        a.dispose();
        b.dispose();
      });
    }
  }

  it('leaves columns, small tensors and int32 to the wasm kernel, with the same values', () => {
    const pairs: [tf.Tensor, tf.Tensor][] = [
      [randTensor([2048, 512], 3, -2, 2), randTensor([2048, 1], 4, -2, 2)], // column broadcast
      [randTensor([8, 8], 5, -2, 2), randTensor([8, 8], 6, -2, 2)], // small
      [
        tf.tensor1d(
          Array.from({ length: NATIVE_ELEMENTWISE_MIN }, (_, i) => i),
          'int32',
        ),
        tf.scalar(3, 'int32'),
      ],
    ];
    for (const [a, b] of pairs) {
      const want = on('wasm', () => tf.mul(a, b));
      const before = nativeElementwiseCalls();
      const got = on('native', () => tf.mul(a, b));
      expect(nativeElementwiseCalls()).toBe(before);
      expect(Array.from(got.values)).toEqual(Array.from(want.values));
      a.dispose();
      b.dispose();
    }
  });

  it('gives the same gradients through a gain and a gate (RMSNorm · g, SwiGLU)', () => {
    const x = randTensor([1024, 1024], 7, -2, 2);
    const g = randTensor([1024], 8, -2, 2);
    const f = (x: tf.Tensor, g: tf.Tensor) => tf.sum(tf.mul(tf.mul(tf.mul(x, g), tf.sigmoid(x)), tf.sub(x, tf.scalar(0.5))));
    const grads = (path: 'native' | 'wasm') => {
      setDensePath(path);
      const [dx, dg] = tf.grads(f)([x, g]);
      const out = [dx!.dataSync().slice(), dg!.dataSync().slice()];
      dx!.dispose();
      dg!.dispose();
      return out;
    };
    const w = grads('wasm');
    const before = nativeElementwiseCalls();
    const n = grads('native');
    expect(nativeElementwiseCalls()).toBeGreaterThan(before);
    expect(Buffer.from(n[0]!.buffer).equals(Buffer.from(w[0]!.buffer))).toBe(true);
    // dg sums over rows: same per-element products, same reduction kernel
    expect(Buffer.from(n[1]!.buffer).equals(Buffer.from(w[1]!.buffer))).toBe(true);
  });
});
