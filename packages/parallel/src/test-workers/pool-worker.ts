/**
 * Test worker: each case of POOL_CASES on a ShardedPool — two lookups with tfjs gradients
 * (fused or deferred update), then the whole table read back — reported for the test to compare
 * with an unsharded MemoryPool.
 */
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { ShardedPool, groupData, openGroup, reportResult } from '../index';
import { POOL_CASES, globalBatch, rankSlice } from '../testing';

await initBackend({ backend: 'cpu', log: false });
const group = openGroup();
const { only } = (groupData<{ only?: string[] }>() ?? {}) as { only?: string[] };
const out: Record<string, { out: number[][]; gw: number[][]; table: number[] }> = {};
for (const c of POOL_CASES) {
  if (only && !only.includes(c.name)) continue;
  const pool = ShardedPool.create(group, {
    rows: c.rows,
    dim: c.dim,
    optimizer: c.optimizer,
    scheme: c.scheme,
    deferred: c.deferred,
    init: { kind: 'normal', std: 0.3, seed: c.seed },
  });
  const res = { out: [] as number[][], gw: [] as number[][], table: [] as number[] };
  for (let call = 0; call < 2; call++) {
    const s = rankSlice(c, group.rank, globalBatch(c, group.size, call));
    const ids = tf.tensor2d(s.ids, [c.bags, c.K], 'int32');
    const w = tf.tensor2d(s.w, [c.bags, c.K]);
    const dy = tf.tensor2d(s.gOut, [c.bags, c.dim]);
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => pool.lookup(ids, x as tf.Tensor2D))(w, dy);
    res.out.push([...(value.dataSync() as Float32Array)]);
    res.gw.push([...(grad.dataSync() as Float32Array)]);
    if (c.deferred) pool.step();
    tf.dispose([ids, w, dy, value, grad]);
  }
  // every rank reads a different part: rank r reads rows r, r + P, … (readRows is a collective)
  const mine = Int32Array.from({ length: Math.ceil((c.rows - group.rank) / group.size) }, (_, i) => group.rank + i * group.size);
  res.table = [...pool.readRows(mine)];
  pool.dispose();
  out[c.name] = res;
}
reportResult(out);
group.close();
