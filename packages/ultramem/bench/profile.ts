// One UltraMem layer on 1024 tokens: median fwd+bwd+Adam step, then where one step's kernel time goes.
// Run: npx tsx --conditions=mnemo-source bench/profile.ts
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
step();
// median of 8 timed steps, then one step under the kernel profiler
const ts: number[] = [];
for (let i = 0; i < 8; i++) {
  const t = performance.now();
  step();
  ts.push(performance.now() - t);
}
ts.sort((a, b) => a - b);
console.log(`step ms median ${ts[4]!.toFixed(1)} min ${ts[0]!.toFixed(1)}`);
const p = await tf.profile(() => {
  step();
});
const agg = new Map<string, number>();
for (const k of p.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log([...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12));
const t1 = performance.now();
tf.tidy(() => layer.addressor.address(x, { training: true }));
console.log('address fwd ms', performance.now() - t1);
