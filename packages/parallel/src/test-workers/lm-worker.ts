/**
 * Test worker: a LanguageModel (@mnemo/model) with a dense block and a Memory+ block on a
 * ShardedPool (P = 1: the model's own MemoryPool), trained with data-parallel dense gradients on
 * this rank's rows of a fixed global batch; reports the global loss of every step.
 */
import { mulberry32, subSeed } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { LanguageModel, parseModelConfig, poolShapeOf } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { ShardedPool, allReduceGradients, allReduceScalar, groupData, openGroup, reportResult } from '../index';

await initBackend({ backend: 'cpu', log: false });
const group = openGroup();
const { steps, sharded } = groupData<{ steps: number; sharded: boolean }>();
const cfg = parseModelConfig({
  vocabSize: 40,
  dim: 16,
  layers: 2,
  heads: 2,
  kvHeads: 2,
  maxSeqLen: 8,
  ffnHidden: 24,
  ffn: ['dense', 'memoryPlus'],
  memory: { numKeys: 8, heads: 2, topK: 4, keyDim: 8, valueLr: 0.02 },
  seed: 5,
});
const shape = poolShapeOf(cfg)!;
const pool = sharded
  ? ShardedPool.create(group, {
      rows: shape.rows,
      dim: shape.dim,
      optimizer: { kind: cfg.memory.valueOptimizer, lr: cfg.memory.valueLr },
      init: { kind: 'normal', std: shape.initStd, seed: subSeed(cfg.seed, 'pool') },
    })
  : undefined;
const model = new LanguageModel(cfg, pool ? { pool } : {});
const globalRows = 4;
const rows = globalRows / group.size;
const rand = mulberry32(9);
const all = Int32Array.from({ length: globalRows * 8 }, () => Math.floor(rand() * 40));
const x = tf.tensor2d(all.slice(group.rank * rows * 8, (group.rank + 1) * rows * 8), [rows, 8], 'int32');
const opt = tf.train.adam(1e-2);
const vars = model.trainableVariables();
const losses: number[] = [];
for (let s = 0; s < steps; s++) {
  // model.loss is the mean over this rank's tokens; / P makes the sum over ranks the global mean
  const { value, grads } = tf.variableGrads(() => tf.div(model.loss(x, { training: true }), group.size) as tf.Scalar, vars);
  const summed = allReduceGradients(group, grads);
  opt.applyGradients(Object.entries(summed).map(([name, tensor]) => ({ name, tensor })));
  losses.push(allReduceScalar(group, value));
  tf.dispose([value, ...Object.values(grads), ...(group.size > 1 ? Object.values(summed) : [])]);
}
reportResult({ losses });
group.close();
