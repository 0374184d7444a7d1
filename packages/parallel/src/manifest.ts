/**
 * A sharded pool on disk: `file.shard-<r>-of-<P>` per rank (a kernels store file of that rank's
 * shard) and `file.shards.json`, the manifest naming them, written last by rank 0.
 */
import fs from 'node:fs';
import { CheckpointError } from '@mnemo/core';

export type ShardScheme = 'dim' | 'row';

export interface PoolManifest {
  format: 'mnemo-sharded-pool';
  version: 1;
  scheme: ShardScheme;
  P: number;
  rows: number;
  dim: number;
  shards: string[];
}

export function shardFile(file: string, rank: number, P: number): string {
  return `${file}.shard-${rank}-of-${P}`;
}

export function manifestFile(file: string): string {
  return `${file}.shards.json`;
}

/** The manifest of a sharded pool saved as `file`, checked; a CheckpointError names it when missing or corrupt. */
export function readPoolManifest(file: string): PoolManifest {
  const mf = manifestFile(file);
  if (!fs.existsSync(mf))
    throw new CheckpointError(
      mf,
      `is missing: ${file} is not a sharded pool (ShardedPool.save writes this manifest; an unsharded pool loads with MemoryPool.load)`,
    );
  let m: PoolManifest;
  try {
    m = JSON.parse(fs.readFileSync(mf, 'utf8')) as PoolManifest;
  } catch (e) {
    throw new CheckpointError(mf, `is not valid JSON (${(e as Error).message}); the manifest is corrupt`);
  }
  const ok =
    m?.format === 'mnemo-sharded-pool' &&
    m.version === 1 &&
    (m.scheme === 'dim' || m.scheme === 'row') &&
    Number.isInteger(m.P) &&
    m.P >= 1 &&
    Number.isInteger(m.rows) &&
    Number.isInteger(m.dim) &&
    Array.isArray(m.shards) &&
    m.shards.length === m.P;
  if (!ok) throw new CheckpointError(mf, 'is not a mnemo-sharded-pool v1 manifest (format, version, scheme, P, rows, dim, shards[P])');
  return m;
}

/** Whether `file` was saved by ShardedPool.save (its manifest exists). */
export function isShardedPool(file: string): boolean {
  return fs.existsSync(manifestFile(file));
}
