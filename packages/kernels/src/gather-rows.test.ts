import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatherRows } from './gather-rows';
import { initBackend } from './index';

const close = (a: tf.Tensor, b: tf.Tensor, tol = 1e-5) => {
  expect(a.shape).toEqual(b.shape);
  const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
  expect(d).toBeLessThan(tol);
};
const oneHot = (idx: Int32Array, n: number) => tf.cast(tf.oneHot(tf.tensor1d(idx, 'int32'), n), 'float32') as tf.Tensor2D;

beforeAll(async () => {
  await initBackend({ log: false });
});

describe('gatherRows (value and gradient against a one-hot matmul)', () => {
  it('gatherRows: rows and a scatter-add gradient (repeated ids add up)', () => {
    const table = tf.randomNormal([7, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
    const idx = Int32Array.from([3, 0, 3, 6, 3]);
    const w = tf.randomNormal([5, 5], 0, 1, 'float32', 2);
    const f = (t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t as tf.Tensor2D, idx), w));
    const ref = (t: tf.Tensor) => tf.sum(tf.mul(tf.matMul(oneHot(idx, 7), t as tf.Tensor2D), w));
    close(gatherRows(table, idx), tf.matMul(oneHot(idx, 7), table));
    close(tf.grad(f)(table), tf.grad(ref)(table));
  });
});
