import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW } from './adamw';

beforeAll(async () => {
  await initBackend();
});

describe('AdamW', () => {
  it('matches the Adam update written out in float64, clips by global norm, and tolerates unused variables', () => {
    const w = tf.variable(tf.tensor1d([1, -2, 3]));
    const unused = tf.variable(tf.tensor1d([5, 5])); // e.g. an MoE expert no token was routed to
    const opt = new AdamW([w, unused], { beta1: 0.9, beta2: 0.99, eps: 1e-8, clip: 0 });
    // loss = Σ w² → g = 2w
    const x = [1, -2, 3];
    let m = [0, 0, 0];
    let v = [0, 0, 0];
    for (let t = 1; t <= 3; t++) {
      opt.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, 0.1);
      const g = x.map((xi) => 2 * xi);
      m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]!);
      v = v.map((vi, i) => 0.99 * vi + 0.01 * g[i]! ** 2);
      for (let i = 0; i < 3; i++) x[i] = x[i]! - ((0.1 / (1 - 0.9 ** t)) * m[i]!) / (Math.sqrt(v[i]! / (1 - 0.99 ** t)) + 1e-8);
    }
    const got = Array.from(w.dataSync());
    for (let i = 0; i < 3; i++) expect(got[i]).toBeCloseTo(x[i]!, 5);
    expect(Array.from(unused.dataSync())).toEqual([5, 5]);
    // clipping: the gradient norm is reported before the clip
    const c = new AdamW([w], { clip: 1e-3 });
    const { gradNorm } = c.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, 0.1);
    expect(gradNorm).toBeGreaterThan(1);
    opt.dispose();
    c.dispose();
  });

  it('steps and dispose() leave no tensors behind', () => {
    const w = tf.tidy(() => tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1)));
    const x = tf.tensor2d([[1, 2, 3, 4]]);
    const before = tf.memory().numTensors;
    const opt = new AdamW([w], { weightDecay: 0.1, clip: 1 });
    for (let i = 0; i < 3; i++) opt.minimize(() => tf.sum(tf.square(tf.matMul(x, w))), 0.01);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
    x.dispose();
  });
});
