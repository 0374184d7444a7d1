import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@mnemo/kernels';
import { MemoryPool } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalGroup, PoolService, reshardPool } from './index';
import { POOL_CASES, globalBatch } from './testing';

const worker = fileURLToPath(new URL('./test-workers/pool-worker.ts', import.meta.url));
let dir = '';
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-parallel-service-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('PoolService: a pool held by P worker threads, read from this thread', () => {
  it('lookups and rows equal the unsharded pool at P = 2 (as saved) and P = 3 (re-dealt, row), from a sharded or a plain file', async () => {
    const c = POOL_CASES[0]!;
    const file = path.join(dir, 'values.safetensors');
    const saved = await LocalGroup.run(2, worker, { data: { mode: 'save', file, scheme: 'dim' } });
    for (const r of saved) expect(r.error, String(r.error?.stack)).toBeUndefined();
    const plain = path.join(dir, 'plain.safetensors');
    reshardPool(file, 1, { out: plain });
    const ref = MemoryPool.load(plain);
    const g = globalBatch(c, 3, 7); // 3·6 bags: not a multiple of 2 or... padding covered at P = 4 below
    const B = 3 * c.bags - 1; // odd: the last rank's slice is padded
    const ids = tf.tensor2d(g.ids.slice(0, B * c.K), [B, c.K], 'int32');
    const w = tf.tensor2d(g.w.slice(0, B * c.K), [B, c.K]);
    const want = ref.lookup(ids, w).dataSync();
    const all = Int32Array.from({ length: c.rows }, (_, i) => i);
    const rows = ref.readRows(all);
    for (const [src, P, scheme] of [
      [file, 2, undefined],
      [plain, 3, 'row'],
    ] as const) {
      const svc = await PoolService.start(src, P, scheme ? { scheme } : {});
      try {
        expect([svc.rows, svc.dim]).toEqual([c.rows, c.dim]);
        const got = svc.lookup(ids, w).dataSync();
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        expect(worst, `P = ${P}`).toBeLessThan(1e-5);
        expect(svc.readRows(all)).toEqual(rows);
      } finally {
        svc.dispose();
      }
      const exits = await svc.exited();
      expect(exits.map((r) => r.exitCode)).toEqual(Array(P).fill(0)); // dispose ends every worker
    }
    ref.dispose();
  }, 60_000);

  it('a missing shard is refused at start, naming it', async () => {
    const file = path.join(dir, 'values.safetensors');
    const broken = path.join(dir, 'broken');
    fs.mkdirSync(broken);
    fs.copyFileSync(`${file}.shards.json`, path.join(broken, 'values.safetensors.shards.json'));
    fs.copyFileSync(`${file}.shard-0-of-2`, path.join(broken, 'values.safetensors.shard-0-of-2'));
    await expect(PoolService.start(path.join(broken, 'values.safetensors'), 2)).rejects.toThrow(/shard-1-of-2/);
  }, 30_000);
});
