// One UltraMem layer (D 128, 256² keys, 4 heads, top-16, r 2, 2 cores, E 4) on 1024 tokens: median fwd+bwd+Adam step.
// Run: npx tsx --conditions=mnemo-source bench/step.ts
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { UltraMemLayer } from '../src/index';
await initBackend({ log: false });
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
step();
const ts: number[] = [];
for (let i = 0; i < 8; i++) {
  const t = performance.now();
  step();
  ts.push(performance.now() - t);
}
ts.sort((a, b) => a - b);
console.log(`step ms median ${ts[4]!.toFixed(1)} min ${ts[0]!.toFixed(1)}`);
