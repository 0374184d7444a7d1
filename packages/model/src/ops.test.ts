import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bmm } from './bmm';
import { crossEntropy, oneHot } from './ops';
import { Rope } from './rope';

const close = (a: tf.Tensor, b: tf.Tensor, tol = 1e-5) => {
  expect(a.shape).toEqual(b.shape);
  const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
  expect(d).toBeLessThan(tol);
};

beforeAll(async () => {
  await initBackend({ log: false });
});

describe('ops (value and gradient against plain tfjs references)', () => {
  it('crossEntropy equals −mean log softmax at the targets, gradient included', () => {
    const logits = tf.randomNormal([6, 9], 0, 3, 'float32', 3) as tf.Tensor2D;
    const targets = Int32Array.from([0, 8, 4, 4, 1, 7]);
    const ref = (l: tf.Tensor) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(l), oneHot(targets, 9)), -1)));
    close(crossEntropy(logits, targets), ref(logits));
    const scaled = (l: tf.Tensor) => tf.mul(crossEntropy(l as tf.Tensor2D, targets), 2.5);
    close(tf.grad(scaled)(logits), tf.grad((l: tf.Tensor) => tf.mul(ref(l), 2.5))(logits));
  });

  it.each([
    [false, false],
    [false, true],
    [true, false],
  ])('bmm (transposeA %s, transposeB %s) equals tf.matMul with gradients', (ta, tb) => {
    const a = tf.randomNormal(ta ? [2, 3, 4, 5] : [2, 3, 5, 4], 0, 1, 'float32', 4);
    const b = tf.randomNormal(tb ? [2, 3, 6, 4] : [2, 3, 4, 6], 0, 1, 'float32', 5);
    const w = tf.randomNormal([2, 3, 5, 6], 0, 1, 'float32', 6);
    close(bmm(a, b, ta, tb), tf.matMul(a, b, ta, tb), 1e-4);
    const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(bmm(x, y, ta, tb), w)))([a, b]);
    const r = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w)))([a, b]);
    close(g[0]!, r[0]!, 1e-4);
    close(g[1]!, r[1]!, 1e-4);
  });

  it('RoPE rotates pairs (i, i + dh/2) by p·θ^(−2i/dh); relative positions decide q·k', () => {
    const rope = new Rope(16, 4, 10000);
    const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]);
    const { cos, sin } = rope.at(Int32Array.from([5]), 1, 1);
    const y = rope.apply(x, cos, sin).dataSync();
    const a0 = 5;
    const a1 = 5 * 10000 ** -0.5;
    const want = [
      1 * Math.cos(a0) - 3 * Math.sin(a0),
      2 * Math.cos(a1) - 4 * Math.sin(a1),
      1 * Math.sin(a0) + 3 * Math.cos(a0),
      2 * Math.sin(a1) + 4 * Math.cos(a1),
    ];
    want.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
    const q = tf.tensor4d([0.3, -1, 2, 0.5], [1, 1, 1, 4]);
    const k = tf.tensor4d([1, 0.2, -0.7, 1.1], [1, 1, 1, 4]);
    const dot = (pq: number, pk: number) => {
      const a = rope.at(Int32Array.from([pq]), 1, 1);
      const b = rope.at(Int32Array.from([pk]), 1, 1);
      return tf.sum(tf.mul(rope.apply(q, a.cos, a.sin), rope.apply(k, b.cos, b.sin))).dataSync()[0]!;
    };
    expect(dot(7, 3)).toBeCloseTo(dot(12, 8), 4);
    expect(Math.abs(dot(7, 3) - dot(7, 6))).toBeGreaterThan(1e-3);
    rope.dispose();
  });
});
