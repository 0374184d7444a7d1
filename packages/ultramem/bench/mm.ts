import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
await initBackend({ log: false });
const K = tf.randomNormal([4, 1024, 16]) as tf.Tensor3D;
const q = tf.randomNormal([4, 1024, 16]) as tf.Tensor3D;
for (let i = 0; i < 2; i++) {
  let t = performance.now();
  const f = tf.tensor4d(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [4, 1, 2, 1]);
  const m = tf.mul(tf.reshape(K, [4, 512, 2, 16]), f);
  m.dataSync();
  console.log('mul', performance.now() - t);
  t = performance.now();
  const Kf = tf.sum(m, 2) as tf.Tensor3D;
  Kf.dataSync();
  console.log('sum', performance.now() - t);
  t = performance.now();
  tf.matMul(q, Kf, false, true).dataSync();
  console.log('mm', performance.now() - t);
}
