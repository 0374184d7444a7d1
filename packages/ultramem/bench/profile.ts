import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { UltraMemLayer } from '../src/index';
await initBackend();
const layer = new UltraMemLayer({
  inputDim: 128,
  numKeys: 256,
  heads: 4,
  topM: 16,
  keyDim: 32,
  valueDim: 64,
  rank: 2,
  cores: 2,
  expansion: 4,
});
const x = tf.randomNormal([1024, 128]) as tf.Tensor2D;
const opt = tf.train.adam(1e-3);
const step = () =>
  opt.minimize(
    () => tf.add(tf.mean(tf.square(layer.apply(x, { training: true }))), layer.auxLoss()!) as tf.Scalar,
    false,
    layer.trainableVariables(),
  );
step();
const t0 = performance.now();
const p = await tf.profile(() => {
  step();
});
console.log('step ms', performance.now() - t0);
const agg = new Map<string, number>();
for (const k of p.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log([...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12));
const t1 = performance.now();
tf.tidy(() => layer.addressor.address(x, { training: true }));
console.log('address fwd ms', performance.now() - t1);
