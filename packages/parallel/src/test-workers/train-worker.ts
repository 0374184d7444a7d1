/**
 * Test worker: 20 training steps of a Memory+ layer (MemoryLayer, gating silu) on a sharded pool
 * with data-parallel dense parameters: this rank's slice of a fixed global batch, the loss
 * normalised by the global batch, dense gradients all-reduced, the values updated inside the
 * pool's backward (Adam, fused). Reports the global loss of every step.
 */
import { mulberry32 } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { MemoryLayer } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { ShardedPool, allReduceGradients, allReduceScalar, groupData, openGroup, reportResult } from '../index';

await initBackend({ backend: 'cpu', log: false });
const group = openGroup();
const { scheme, steps } = groupData<{ scheme: 'dim' | 'row'; steps: number }>();
const D = 16;
const globalB = 16;
const B = globalB / group.size;
const cfg = { inputDim: D, numKeys: 16, heads: 2, topK: 4, keyDim: 8, valueDim: D, seed: 3 };
const pool = ShardedPool.create(group, {
  rows: 256,
  dim: D,
  optimizer: { kind: 'adam', lr: 1e-2 },
  scheme,
  init: { kind: 'normal', std: D ** -0.5, seed: 3 },
});
const layer = new MemoryLayer(cfg, { pool });
const dense = tf.train.adam(1e-2);
const rand = mulberry32(11);
const xAll = Float32Array.from({ length: globalB * D }, () => rand() * 2 - 1);
const yAll = Float32Array.from({ length: globalB * D }, () => rand() * 2 - 1);
const x = tf.tensor2d(xAll.slice(group.rank * B * D, (group.rank + 1) * B * D), [B, D]);
const y = tf.tensor2d(yAll.slice(group.rank * B * D, (group.rank + 1) * B * D), [B, D]);
const vars = layer.trainableVariables();
const losses: number[] = [];
for (let s = 0; s < steps; s++) {
  const { value, grads } = tf.variableGrads(
    () => tf.div(tf.sum(tf.square(tf.sub(layer.apply(x, { training: true }), y))), globalB * D) as tf.Scalar,
    vars,
  );
  const summed = allReduceGradients(group, grads);
  dense.applyGradients(Object.entries(summed).map(([name, tensor]) => ({ name, tensor })));
  losses.push(allReduceScalar(group, value));
  tf.dispose([value, ...Object.values(grads), ...Object.values(summed)]);
}
reportResult({ losses });
group.close();
