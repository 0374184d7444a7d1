/**
 * The tfjs op inside a tiny training loop, on the wasm and cpu backends, against a dense tfjs
 * reference out = matMul(oneHotWeights [B, N], V [N, dv]) trained by plain SGD on (Wq, V).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { DisposedError, ShapeError } from '@mnemo/core';
import { type BackendName, ValueStore, embeddingBag, initBackend } from './index';
import { rng } from './testing';

describe.each(['cpu', 'wasm'] as BackendName[])('embeddingBag op on the %s backend', (backend) => {
  it('trains like the dense reference: loss, Wq and the table after each SGD step', async () => {
    await initBackend({ backend, log: false });
    const N = 50;
    const dv = 8;
    const D = 6;
    const B = 7;
    const K = 4;
    const lr = 0.5;
    const r = rng(3);
    const x = tf.tensor2d(
      Float32Array.from({ length: B * D }, () => r() * 2 - 1),
      [B, D],
    );
    const idsArr = Int32Array.from({ length: B * K }, (_, p) => (p % 5 === 0 ? 7 : Math.floor(r() * N))); // row 7 shared
    idsArr[3] = -1; // padding
    const ids = tf.tensor2d(idsArr, [B, K], 'int32');
    const target = tf.tensor2d(
      Float32Array.from({ length: B * dv }, () => r()),
      [B, dv],
    );
    const wq0 = Float32Array.from({ length: D * K }, () => r() - 0.5);
    const store = ValueStore.create({ rows: N, dim: dv, optimizer: { kind: 'sgd', lr }, init: { kind: 'normal', std: 0.5, seed: 1 } });
    const all = Int32Array.from({ length: N }, (_, i) => i);
    const Wq = tf.variable(tf.tensor2d(wq0, [D, K]));
    const WqRef = tf.variable(tf.tensor2d(wq0, [D, K]));
    const Vref = tf.variable(tf.tensor2d(store.readRows(all), [N, dv]));
    const oneHot = tf.oneHot(ids, N); // [B, K, N]
    for (let step = 0; step < 3; step++) {
      // ours: the table is updated inside the gradient of embeddingBag
      const { value: loss, grads } = tf.variableGrads(() => {
        const w = tf.softmax(tf.matMul(x, Wq)) as tf.Tensor2D; // [B, K]
        return tf.mean(tf.square(tf.sub(embeddingBag(store, ids, w), target))) as tf.Scalar;
      }, [Wq]);
      Wq.assign(tf.sub(Wq, tf.mul(lr, grads[Wq.name]!)));
      // dense reference
      const ref = tf.variableGrads(() => {
        const w = tf.softmax(tf.matMul(x, WqRef)); // [B, K]
        const W = tf.sum(tf.mul(oneHot, tf.expandDims(w, 2)), 1) as tf.Tensor2D; // [B, N]
        return tf.mean(tf.square(tf.sub(tf.matMul(W, Vref), target))) as tf.Scalar;
      }, [WqRef, Vref]);
      WqRef.assign(tf.sub(WqRef, tf.mul(lr, ref.grads[WqRef.name]!)));
      Vref.assign(tf.sub(Vref, tf.mul(lr, ref.grads[Vref.name]!)));
      expect(loss.dataSync()[0]).toBeCloseTo(ref.value.dataSync()[0]!, 5);
      const V = store.readRows(all);
      const Vd = Vref.dataSync();
      for (let i = 0; i < V.length; i++) expect(V[i]).toBeCloseTo(Vd[i]!, 5);
      const a = Wq.dataSync();
      const b = WqRef.dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
      tf.dispose([loss, ref.value, ...Object.values(grads), ...Object.values(ref.grads)]);
    }
    expect(store.stats().steps).toBe(3);
    // ids get no gradient and bad inputs are refused
    expect(() => embeddingBag(store, tf.cast(ids, 'float32') as tf.Tensor2D, tf.ones([B, K]))).toThrow(ShapeError);
    expect(() => embeddingBag(store, ids, tf.ones([B, K + 1]))).toThrow(/shape/);
    store.dispose();
    expect(() => embeddingBag(store, ids, tf.ones([B, K]))).toThrow(DisposedError);
    tf.dispose([x, ids, target, Wq, WqRef, Vref, oneHot]);
  });
});
