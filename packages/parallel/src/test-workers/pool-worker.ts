/**
 * Test worker: each case of POOL_CASES on a ShardedPool — two lookups with tfjs gradients
 * (fused or deferred update), then the whole table read back — reported for the test to compare
 * with an unsharded MemoryPool.
 */
import { mulberry32 } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { ShardedPool, groupData, openGroup, reportResult } from '../index';
import { POOL_CASES, globalBatch, rankSlice } from '../testing';

await initBackend({ backend: 'cpu', log: false });
const group = openGroup();
const { mode } = (groupData<{ mode?: string }>() ?? {}) as { mode?: string };
if (mode === 'bytes' || mode === 'kill') {
  // uniform ids, B = 64 tokens × K = 16 per rank: bytes sent per forward + backward (or a rank dies mid-step)
  const B = 64;
  const K = 16;
  const dv = 48;
  const N = 4096;
  const rand = mulberry32(7 + group.rank);
  const report: Record<string, number | string | boolean> = {};
  for (const scheme of ['dim', 'row'] as const) {
    const pool = ShardedPool.create(group, { rows: N, dim: dv, optimizer: { kind: 'sgd', lr: 0.1 }, scheme });
    const ids = tf.tensor2d(
      Int32Array.from({ length: B * K }, () => Math.floor(rand() * N)),
      [B, K],
      'int32',
    );
    const w = tf.tensor2d(
      Float32Array.from({ length: B * K }, () => rand()),
      [B, K],
    );
    group.resetStats();
    try {
      tf.grad((x: tf.Tensor) => {
        const m = pool.lookup(ids, x as tf.Tensor2D);
        if (mode === 'kill' && group.rank === 1) process.exit(5); // dies between forward and backward
        return m;
      })(w).dispose();
    } catch (e) {
      reportResult({ threw: true, name: (e as Error).constructor.name, message: (e as Error).message });
      process.exit(0);
    }
    report[scheme] = group.stats().bytesSent;
    pool.dispose();
  }
  reportResult(report);
  group.close();
  process.exit(0);
}
if (mode === 'badid') {
  // rank 1 passes an id out of range: every rank must throw the same kind of error, none time out
  const errors: Record<string, string> = {};
  for (const scheme of ['dim', 'row'] as const) {
    const pool = ShardedPool.create(group, { rows: 64, dim: 8, optimizer: { kind: 'sgd', lr: 0.1 }, scheme });
    const ids = Int32Array.from({ length: 8 }, (_, i) => (group.rank === 1 && i === 5 ? 64 : i));
    try {
      pool.table.forward(ids, new Float32Array(8).fill(1), 4);
      errors[scheme] = 'none';
    } catch (e) {
      errors[scheme] = `${(e as Error).constructor.name}: ${(e as Error).message}`;
    }
    pool.dispose();
  }
  reportResult(errors);
  group.close();
  process.exit(0);
}
if (mode === 'save' || mode === 'load') {
  // save: train one step and save; load: load the saved pool (or report why not) and read it back
  const { file, scheme = 'dim' } = groupData<{ file: string; scheme?: 'dim' | 'row' }>();
  const c = POOL_CASES[scheme === 'dim' ? 0 : 3]!; // both Adam: moments and per-row step counts to re-deal
  const all = Int32Array.from({ length: c.rows }, (_, i) => i);
  let pool: ShardedPool;
  if (mode === 'save') {
    pool = ShardedPool.create(group, {
      rows: c.rows,
      dim: c.dim,
      optimizer: c.optimizer,
      scheme,
      init: { kind: 'normal', std: 0.3, seed: c.seed },
    });
    const s = rankSlice(c, group.rank, globalBatch(c, group.size, 0));
    tf.grad((x: tf.Tensor) => pool.lookup(tf.tensor2d(s.ids, [c.bags, c.K], 'int32'), x as tf.Tensor2D))(tf.tensor2d(s.w, [c.bags, c.K]));
    pool.save(file);
  } else {
    try {
      pool = ShardedPool.load(group, file);
    } catch (e) {
      reportResult({ error: (e as Error).constructor.name, message: (e as Error).message });
      process.exit(0);
    }
  }
  // one more step after save / load: equal only if the optimizer state round-tripped too
  const s = rankSlice(c, group.rank, globalBatch(c, group.size, 1));
  tf.grad((x: tf.Tensor) => pool.lookup(tf.tensor2d(s.ids, [c.bags, c.K], 'int32'), x as tf.Tensor2D))(tf.tensor2d(s.w, [c.bags, c.K]));
  const table = pool.readRows(group.rank === 0 ? all : new Int32Array(0)); // a collective: every rank calls it
  reportResult({ table: group.rank === 0 ? [...table] : null });
  group.close();
  process.exit(0);
}
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
