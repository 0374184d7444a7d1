import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@mnemo/kernels';
import { MemoryPool } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LocalGroup, MpiGroup, mpiAvailable, mpirunPath } from './index';
import { POOL_CASES, type PoolCase, globalBatch } from './testing';

const worker = fileURLToPath(new URL('./test-workers/pool-worker.ts', import.meta.url));
type Report = Record<string, { out: number[][]; gw: number[][]; table: number[] }>;

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
});

/** The unsharded computation of a case on the global batch. */
function reference(c: PoolCase, P: number) {
  const pool = new MemoryPool({ rows: c.rows, dim: c.dim, optimizer: c.optimizer, deferred: c.deferred, initStd: 0.3, seed: c.seed });
  const res = { out: [] as Float32Array[], gw: [] as Float32Array[], table: new Float32Array() as Float32Array<ArrayBufferLike> };
  for (let call = 0; call < 2; call++) {
    const g = globalBatch(c, P, call);
    const ids = tf.tensor2d(g.ids, [P * c.bags, c.K], 'int32');
    const w = tf.tensor2d(g.w, [P * c.bags, c.K]);
    const dy = tf.tensor2d(g.gOut, [P * c.bags, c.dim]);
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => pool.lookup(ids, x as tf.Tensor2D))(w, dy);
    res.out.push(value.dataSync() as Float32Array);
    res.gw.push(grad.dataSync() as Float32Array);
    if (c.deferred) pool.step();
    tf.dispose([ids, w, dy, value, grad]);
  }
  res.table = pool.readRows(Int32Array.from({ length: c.rows }, (_, i) => i));
  pool.dispose();
  return res;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function compare(P: number, reports: (Report | undefined)[]): void {
  for (const c of POOL_CASES) {
    const ref = reference(c, P);
    for (let r = 0; r < P; r++) {
      const got = reports[r]?.[c.name];
      expect(got, `rank ${r} reported ${c.name}`).toBeDefined();
      for (let call = 0; call < 2; call++) {
        const o = ref.out[call]!.subarray(r * c.bags * c.dim, (r + 1) * c.bags * c.dim);
        const gw = ref.gw[call]!.subarray(r * c.bags * c.K, (r + 1) * c.bags * c.K);
        expect(maxDiff(got!.out[call]!, o), `${c.name} P=${P} rank ${r} call ${call} out`).toBeLessThan(1e-5);
        expect(maxDiff(got!.gw[call]!, gw), `${c.name} P=${P} rank ${r} call ${call} gw`).toBeLessThan(1e-5);
      }
      const rows: number[] = [];
      for (let i = r; i < c.rows; i += P) rows.push(...ref.table.subarray(i * c.dim, (i + 1) * c.dim));
      const d = maxDiff(got!.table, rows);
      expect(d, `${c.name} P=${P} rank ${r} table after the steps`).toBeLessThan(1e-5);
    }
    // the steps did move the table (a test of updates, not of init)
    const init = new MemoryPool({ rows: c.rows, dim: c.dim, optimizer: c.optimizer, initStd: 0.3, seed: c.seed });
    expect(maxDiff(init.readRows(Int32Array.from({ length: c.rows }, (_, i) => i)), ref.table)).toBeGreaterThan(1e-3);
    init.dispose();
  }
}

describe('sharded pools equal the unsharded MemoryPool (local backend)', () => {
  for (const P of [1, 2, 4]) {
    it(`P = ${P}: outputs, weight gradients and tables after two steps, Memory+ and UltraMem shapes, dim and row`, async () => {
      const res = await LocalGroup.run<Report>(P, worker, { timeoutMs: 30_000 });
      for (const r of res) expect(r.error, String(r.error?.stack)).toBeUndefined();
      compare(
        P,
        res.map((r) => r.result),
      );
    });
  }
});

const mpi = mpiAvailable();
const mpiReason = !mpirunPath() ? 'mpirun not on PATH' : !mpi.available ? mpi.reason : '';
if (mpiReason) console.log(`[parallel] skipping the mpi sharded-pool tests: ${mpiReason}`);

describe.skipIf(mpiReason !== '')('sharded pools equal the unsharded MemoryPool (mpi backend)', () => {
  for (const P of [2, 4]) {
    it(`P = ${P} under mpirun`, async () => {
      const res = await MpiGroup.run<Report>(P, worker, { timeoutMs: 30_000 });
      expect(res.exitCode, res.stderr).toBe(0);
      compare(P, res.results);
    });
  }
});

describe('sharded checkpoints', () => {
  it('save at P = 2 and load at P = 2 keeps values and optimizer state; P = 4 is refused with the reason', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-parallel-ckpt-'));
    const file = path.join(dir, 'values.safetensors');
    try {
      const saved = await LocalGroup.run<{ table: number[] | null }>(2, worker, { data: { mode: 'save', file } });
      for (const r of saved) expect(r.error, String(r.error?.stack)).toBeUndefined();
      expect(fs.readdirSync(dir).sort()).toEqual([
        'values.safetensors.shard-0-of-2',
        'values.safetensors.shard-1-of-2',
        'values.safetensors.shards.json',
      ]);
      const loaded = await LocalGroup.run<{ table: number[] | null }>(2, worker, { data: { mode: 'load', file } });
      for (const r of loaded) expect(r.error, String(r.error?.stack)).toBeUndefined();
      // the same next step from the loaded pool gives the same table as from the live one
      expect(loaded[0]!.result!.table).toEqual(saved[0]!.result!.table);
      const other = await LocalGroup.run<{ error: string; message: string }>(4, worker, { data: { mode: 'load', file } });
      expect(other[0]!.result!.error).toBe('CheckpointError');
      expect(other[0]!.result!.message).toMatch(/was saved by 2 ranks \(dim sharding\) and this group has 4: .*load it with 2 ranks/);
      fs.writeFileSync(path.join(dir, 'values.safetensors.shards.json'), '{ not json');
      const corrupt = await LocalGroup.run<{ error: string; message: string }>(2, worker, { data: { mode: 'load', file } });
      expect(corrupt[0]!.result!.error).toBe('CheckpointError');
      expect(corrupt[0]!.result!.message).toMatch(/shards\.json: is not valid JSON/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bad input on one rank', () => {
  it('every rank throws a ValueError at once (dim and row), none waits for a timeout', async () => {
    const t0 = Date.now();
    const res = await LocalGroup.run<Record<string, string>>(2, worker, { data: { mode: 'badid' }, timeoutMs: 60_000 });
    for (const r of res) {
      expect(r.error).toBeUndefined();
      expect(r.result!.dim).toMatch(/^ValueError: ids: element 13 is 64/); // rank 1's element 5 in the gathered [2·2, 4]
      expect(r.result!.row).toMatch(/^ValueError: ids: rank 1, element 5: id 64/);
    }
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});
