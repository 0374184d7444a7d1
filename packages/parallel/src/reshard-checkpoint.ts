/**
 * A model checkpoint (@mnemo/model's directory: config.json with the size and sha256 of every
 * file, memory/values.safetensors the pool) whose pool was saved sharded — a run of
 * `mnemo-train --memory-parallel P` — rewritten for P' ranks into a NEW directory:
 *
 *   reshardCheckpoint('runs/x/checkpoint', 1, 'runs/x/checkpoint-p1');  // loadCheckpoint / mnemo-serve read it
 *   reshardCheckpoint('runs/x/checkpoint', 4, 'runs/x/checkpoint-p4');  // resume or serve at P' = 4
 *
 * Every file but the pool's is copied as is (after checking it against config.json); the pool is
 * re-dealt by reshardPool (reshard.ts); config.json gets the new file list and
 * `extra.memoryParallel.P`. The new directory appears at once (written as `<out>.tmp-<pid>`, then
 * renamed); an existing `out` is refused, never overwritten.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError, ConfigError } from '@mnemo/core';
import { isShardedPool } from './manifest';
import { type ReshardResult, reshardPool } from './reshard';

/** Where a checkpoint's pool lives, relative to the checkpoint directory. */
export const POOL_FILE = path.join('memory', 'values.safetensors');

/** The group size a checkpoint's pool was saved for: P of its shards, 1 for a plain pool, 0 without a pool. */
export function checkpointShards(dir: string): number {
  const d = fs.realpathSync(dir);
  const pool = path.join(d, POOL_FILE);
  if (isShardedPool(pool)) return (JSON.parse(fs.readFileSync(`${pool}.shards.json`, 'utf8')) as { P: number }).P;
  return fs.existsSync(pool) ? 1 : 0;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function listFiles(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? path.join(rel, e.name) : e.name;
    if (e.isDirectory()) out.push(...listFiles(root, r));
    else out.push(r);
  }
  return out.sort();
}

export function reshardCheckpoint(dir: string, toP: number, out: string): ReshardResult {
  if (!fs.existsSync(dir)) throw new CheckpointError(dir, 'does not exist');
  const src = fs.realpathSync(dir); // the <dir> pointer → its current version
  if (fs.existsSync(out)) throw new ConfigError('out', `${out} exists; give a new directory (a checkpoint is never overwritten)`);
  const configFile = path.join(src, 'config.json');
  let meta: { files?: Record<string, { bytes: number; sha256: string }>; extra?: Record<string, unknown> };
  try {
    meta = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    throw new CheckpointError(configFile, `cannot read: ${(e as Error).message}`);
  }
  if (!meta.files || typeof meta.files !== 'object')
    throw new CheckpointError(configFile, 'has no files list; not a mnemo-model checkpoint');
  const pool = path.join(src, POOL_FILE);
  if (!isShardedPool(pool))
    throw new CheckpointError(`${pool}.shards.json`, "is missing: this checkpoint's pool is not sharded (nothing to re-deal)");
  const poolParts = (f: string) => f === POOL_FILE || f.startsWith(`${POOL_FILE}.`);
  // every other listed file must be there and intact: it is copied as is
  for (const [rel, rec] of Object.entries(meta.files)) {
    if (poolParts(rel)) continue;
    const f = path.join(src, rel);
    if (!fs.existsSync(f)) throw new CheckpointError(f, 'is listed in config.json but missing');
    if (fs.statSync(f).size !== rec.bytes || sha256(f) !== rec.sha256)
      throw new CheckpointError(f, 'does not match its size or sha256 in config.json (corrupt)');
  }
  const tmp = `${path.resolve(out)}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    for (const rel of Object.keys(meta.files)) {
      if (poolParts(rel)) continue;
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.copyFileSync(path.join(src, rel), path.join(tmp, rel));
    }
    fs.mkdirSync(path.join(tmp, 'memory'), { recursive: true });
    const res = reshardPool(pool, toP, { out: path.join(tmp, POOL_FILE) });
    const files: Record<string, { bytes: number; sha256: string }> = {};
    for (const rel of listFiles(tmp)) files[rel] = { bytes: fs.statSync(path.join(tmp, rel)).size, sha256: sha256(path.join(tmp, rel)) };
    const extra = { ...(meta.extra ?? {}), memoryParallel: { ...((meta.extra?.memoryParallel as object) ?? {}), P: toP } };
    fs.writeFileSync(path.join(tmp, 'config.json'), `${JSON.stringify({ ...meta, extra, files }, null, 2)}\n`);
    fs.renameSync(tmp, out);
    return { ...res, files: res.files.map((f) => path.join(out, path.relative(tmp, f))) };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
