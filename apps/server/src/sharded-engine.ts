/**
 * `mnemo-serve --memory-parallel P`: the checkpoint's value pool held by P worker threads
 * (@mnemo/parallel PoolService: each holds 1/P of the table, dim- or row-sharded), the dense model
 * in the server's thread as usual. A pool saved sharded at P (mnemo-train --memory-parallel P) is
 * used as is; an unsharded one, or one of another P, is re-dealt for P first. Completions are the
 * unsharded server's: the lookups give the same bags to float rounding (sharded-engine.test.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CheckpointError, ConfigError } from '@mnemo/core';
import { resolveCheckpointDir } from '@mnemo/model';
import { PoolService, checkpointShards } from '@mnemo/parallel';
import { ModelEngine } from './model-engine';

export async function loadShardedEngine(dir: string, P: number, opts: { id?: string } = {}): Promise<ModelEngine> {
  const at = resolveCheckpointDir(dir);
  if (checkpointShards(at) === 0)
    throw new ConfigError('--memory-parallel', `${dir}: the model reads no value pool; serve it without --memory-parallel`);
  const memoryDir = path.join(at, 'memory');
  const pool = await PoolService.start(path.join(memoryDir, 'values.safetensors'), P);
  try {
    return ModelEngine.load(dir, {
      id: opts.id ?? path.basename(path.resolve(dir)),
      openPool: () => {
        const file = path.join(memoryDir, 'memory.json');
        let layers: unknown[];
        try {
          layers = (JSON.parse(readFileSync(file, 'utf8')) as { layers: unknown[] }).layers;
        } catch (e) {
          throw new CheckpointError(file, `cannot read: ${(e as Error).message}`);
        }
        return { pool, configs: layers };
      },
    });
  } catch (e) {
    pool.dispose();
    throw e;
  }
}
