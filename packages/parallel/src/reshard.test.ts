import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointError } from '@mnemo/core';
import { initBackend, readStoreTensors } from '@mnemo/kernels';
import { MemoryPool } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalGroup, manifestFile, reshardPool, shardFile } from './index';
import { POOL_CASES, globalBatch } from './testing';

const worker = fileURLToPath(new URL('./test-workers/pool-worker.ts', import.meta.url));
let dir = '';
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-parallel-reshard-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const shardsOf = (file: string, P: number) => Array.from({ length: P }, (_, r) => readStoreTensors(shardFile(file, r, P)));

describe.each(['dim', 'row'] as const)('re-dealing a %s-sharded pool to another P', (scheme) => {
  it('2 → 1 is the unsharded pool (its next step gives the table of P = 2); 2 → 4 → 2 gives back the same bytes; P = 4 loads it', async () => {
    const c = POOL_CASES[scheme === 'dim' ? 0 : 3]!;
    const file = path.join(dir, `${scheme}.safetensors`);
    const saved = await LocalGroup.run<{ table: number[] | null }>(2, worker, { data: { mode: 'save', file, scheme } });
    for (const r of saved) expect(r.error, String(r.error?.stack)).toBeUndefined();

    // 2 → 1: a plain store file; one step of the global batch on it = the P = 2 pool's step after its save
    const one = path.join(dir, `${scheme}-p1.safetensors`);
    reshardPool(file, 1, { out: one });
    expect(fs.existsSync(manifestFile(one))).toBe(false);
    const pool = MemoryPool.load(one);
    const g = globalBatch(c, 2, 1); // both ranks' bags, rank-major
    tf.grad((x: tf.Tensor) => pool.lookup(tf.tensor2d(g.ids, [2 * c.bags, c.K], 'int32'), x as tf.Tensor2D))(
      tf.tensor2d(g.w, [2 * c.bags, c.K]),
    );
    const table = pool.readRows(Int32Array.from({ length: c.rows }, (_, i) => i));
    pool.dispose();
    const want = saved[0]!.result!.table!;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(table[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-6); // Adam moments and step counts came along (a fresh state steps differently)

    // 2 → 4 → 2: the same tensors, byte for byte; 4 ranks load and step the P = 4 files
    const four = path.join(dir, `${scheme}-p4.safetensors`);
    const back = path.join(dir, `${scheme}-p2.safetensors`);
    expect(reshardPool(file, 4, { out: four }).files).toHaveLength(5);
    reshardPool(four, 2, { out: back });
    const [a, b] = [shardsOf(file, 2), shardsOf(back, 2)];
    for (let r = 0; r < 2; r++) {
      // rowUpdates is a statistics counter, not re-dealt per shard (reshard.ts)
      expect({ ...b[r]!.metadata, rowUpdates: '' }).toEqual({ ...a[r]!.metadata, rowUpdates: '' });
      for (const [name, t] of Object.entries(a[r]!.tensors))
        expect(Buffer.from(b[r]!.tensors[name]!.bytes).equals(Buffer.from(t.bytes)), name).toBe(true);
    }
    const at4 = await LocalGroup.run<{ table: number[] | null; error?: string }>(4, worker, { data: { mode: 'load', file: four, scheme } });
    for (const r of at4) expect(r.error, String(r.error?.stack)).toBeUndefined();
    expect(at4[0]!.result!.error).toBeUndefined();
    expect(at4[0]!.result!.table).toHaveLength(c.rows * c.dim);
  });
});

describe('re-dealing refuses what it cannot rebuild, naming the file', () => {
  it('a missing shard, a corrupt shard, a P′ that does not divide dv', async () => {
    const file = path.join(dir, 'dim.safetensors'); // from the test above
    if (!fs.existsSync(manifestFile(file))) await LocalGroup.run(2, worker, { data: { mode: 'save', file, scheme: 'dim' } });
    const copy = path.join(dir, 'broken.safetensors');
    fs.copyFileSync(manifestFile(file), manifestFile(copy));
    fs.copyFileSync(shardFile(file, 0, 2), shardFile(copy, 0, 2));
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    };
    const missing = err(() => reshardPool(copy, 1, { out: path.join(dir, 'x') }));
    expect(missing).toBeInstanceOf(CheckpointError);
    expect(missing.message).toContain(`${shardFile(copy, 1, 2)}: shard 1 of 2 is missing`);
    const bytes = fs.readFileSync(shardFile(file, 1, 2));
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff; // a value byte
    fs.writeFileSync(shardFile(copy, 1, 2), bytes);
    const corrupt = err(() => reshardPool(copy, 1, { out: path.join(dir, 'x') }));
    expect(corrupt).toBeInstanceOf(CheckpointError);
    expect(corrupt.message).toMatch(/shard-1-of-2: shard 1 of 2 is unreadable: .*checksum/);
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false); // nothing half-written
    const odd = err(() => reshardPool(file, 3));
    expect(odd.message).toMatch(/dv = 16, which 3 ranks cannot split evenly/);
  });
});
