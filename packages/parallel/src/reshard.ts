/**
 * Re-dealing a sharded pool to another group size P' (docs/design.md §5.4), on the files alone
 * (no group, no live table): read the P shards of `file` (ShardedPool.save), rebuild the whole
 * table [N, dv] with its optimizer state, and write it for P' ranks.
 *
 *   dim sharding: shard p holds columns [p·dv/P, (p+1)·dv/P) of every row, and its state the same
 *                 columns (Adam m and v [N, 2, dvl], Adagrad accum [N, dvl]); the per-row Adam
 *                 step count [N] is the same on every shard (each updates every touched row)
 *                 → concatenate columns, split into dv/P' columns
 *   row sharding: shard q holds rows r ≡ q (mod P) in order, with all their state (row-wise
 *                 Adam's per-row v included) → put row r back at r, deal again by r mod P'
 *   P' = 1:       one plain store file at `out` (MemoryPool.load / ValueStore.load read it)
 *   a plain store file as input (MemoryPool.save): one shard, dealt by `opts.scheme` (default dim)
 *
 * Refused with a CheckpointError naming the file: a missing or corrupt manifest or shard, shards
 * that disagree (shape, optimizer, dtype, step counts), dv not divisible by P' (dim), N < P' (row).
 * Counters: every output keeps the `steps` of the shards; `rowUpdates` is the sum for row
 * sharding (each row lives on one shard), shard 0's for dim sharding.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError, MnemoError, writeFileAtomic } from '@mnemo/core';
import { type StoreFileContents, type StoreTensor, readStoreTensors, writeStoreTensors } from '@mnemo/kernels';
import { localRows } from './row-sharded';
import { type PoolManifest, type ShardScheme, isShardedPool, manifestFile, readPoolManifest, shardFile } from './manifest';

export interface ReshardResult {
  scheme: ShardScheme;
  fromP: number;
  toP: number;
  /** the files written (P' = 1: the plain store file; else the shards, then the manifest) */
  files: string[];
}

function readShard(file: string, r: number, P: number, plain: boolean): StoreFileContents {
  const f = plain ? file : shardFile(file, r, P);
  if (!fs.existsSync(f)) throw new CheckpointError(f, `shard ${r} of ${P} is missing; the pool cannot be rebuilt without it`);
  try {
    return readStoreTensors(f);
  } catch (e) {
    if (e instanceof MnemoError) throw new CheckpointError(f, `shard ${r} of ${P} is unreadable: ${e.message}`);
    throw e;
  }
}

const rowBytes = (t: StoreTensor) => t.bytes.length / t.shape[0]!;

/** The whole table [N, dv] from its shards. */
function gather(m: PoolManifest, shards: StoreFileContents[], file: string): StoreFileContents {
  const s0 = shards[0]!;
  const names = Object.keys(s0.tensors);
  shards.forEach((s, r) => {
    const bad =
      s.metadata.optimizer !== s0.metadata.optimizer || s.metadata.dtype !== s0.metadata.dtype || s.metadata.steps !== s0.metadata.steps;
    const want = m.scheme === 'dim' ? [m.rows, m.dim / m.P] : [localRows(m.rows, m.P, r), m.dim];
    if (bad || s.rows !== want[0] || s.dim !== want[1] || Object.keys(s.tensors).join() !== names.join()) {
      throw new CheckpointError(
        shardFile(file, r, m.P),
        `does not match shard 0 and the manifest (${m.scheme} sharding of [${m.rows}, ${m.dim}] over ${m.P}: expected [${want}], ` +
          `${s0.metadata.dtype}, optimizer ${s0.metadata.optimizer}, steps ${s0.metadata.steps}; got [${s.rows}, ${s.dim}], ${s.metadata.dtype}, ${s.metadata.optimizer}, steps ${s.metadata.steps})`,
      );
    }
  });
  const tensors: Record<string, StoreTensor> = {};
  for (const name of names) {
    const parts = shards.map((s) => s.tensors[name]!);
    const t0 = parts[0]!;
    const perRow = t0.shape.length === 1; // [N]: adam_step, adam_row_v
    if (m.scheme === 'dim') {
      if (perRow) {
        parts.forEach((t, r) => {
          if (!Buffer.from(t.bytes).equals(Buffer.from(t0.bytes)))
            throw new CheckpointError(
              shardFile(file, r, m.P),
              `per-row tensor '${name}' differs from shard 0's; the shards are not of one table`,
            );
        });
        tensors[name] = t0;
        continue;
      }
      // [N, dvl] or [N, 2, dvl] → [N, dv] or [N, 2, dv]: concatenate the last axis
      const seg = t0.bytes.length / (t0.shape.slice(0, -1).reduce((a, b) => a * b, 1) || 1); // bytes of one dvl run
      const runs = t0.bytes.length / seg;
      const out = new Uint8Array(seg * m.P * runs);
      for (let i = 0; i < runs; i++) parts.forEach((t, p) => out.set(t.bytes.subarray(i * seg, (i + 1) * seg), (i * m.P + p) * seg));
      tensors[name] = { dtype: t0.dtype, shape: [...t0.shape.slice(0, -1), m.dim], bytes: out };
    } else {
      // row r of the table is row ⌊r / P⌋ of shard r mod P
      const rb = rowBytes(t0);
      const out = new Uint8Array(rb * m.rows);
      for (let r = 0; r < m.rows; r++) {
        const i = Math.floor(r / m.P);
        out.set(parts[r % m.P]!.bytes.subarray(i * rb, (i + 1) * rb), r * rb);
      }
      tensors[name] = { dtype: t0.dtype, shape: [m.rows, ...t0.shape.slice(1)], bytes: out };
    }
  }
  const rowUpdates =
    m.scheme === 'row' ? shards.reduce((a, s) => a + (Number(s.metadata.rowUpdates) || 0), 0) : Number(s0.metadata.rowUpdates) || 0;
  return { rows: m.rows, dim: m.dim, metadata: { ...s0.metadata, rowUpdates: String(rowUpdates) }, tensors };
}

/** Rank p of P's part of the whole table. */
function split(full: StoreFileContents, scheme: ShardScheme, P: number, p: number): StoreFileContents {
  const tensors: Record<string, StoreTensor> = {};
  const N = full.rows;
  for (const [name, t] of Object.entries(full.tensors)) {
    if (scheme === 'dim') {
      if (t.shape.length === 1) {
        tensors[name] = t;
        continue;
      }
      const seg = t.bytes.length / t.shape.slice(0, -1).reduce((a, b) => a * b, 1) / P; // bytes of dv/P columns
      const runs = t.bytes.length / (seg * P);
      const out = new Uint8Array(seg * runs);
      for (let i = 0; i < runs; i++) out.set(t.bytes.subarray((i * P + p) * seg, (i * P + p + 1) * seg), i * seg);
      tensors[name] = { dtype: t.dtype, shape: [...t.shape.slice(0, -1), full.dim / P], bytes: out };
    } else {
      const rb = rowBytes(t);
      const n = localRows(N, P, p);
      const out = new Uint8Array(rb * n);
      for (let i = 0; i < n; i++) out.set(t.bytes.subarray((p + i * P) * rb, (p + i * P + 1) * rb), i * rb);
      tensors[name] = { dtype: t.dtype, shape: [n, ...t.shape.slice(1)], bytes: out };
    }
  }
  const rows = scheme === 'dim' ? N : localRows(N, P, p);
  const dim = scheme === 'dim' ? full.dim / P : full.dim;
  return { rows, dim, metadata: full.metadata, tensors };
}

/**
 * Re-deal the sharded pool saved as `file` for `toP` ranks, written as `opts.out` (default `file`:
 * in place — the new files first, then the old shards and, at P' = 1, the old manifest removed).
 */
export function reshardPool(file: string, toP: number, opts: { out?: string; scheme?: ShardScheme } = {}): ReshardResult {
  // an unsharded store file (no manifest) is a pool of one shard, dealt by opts.scheme (default dim)
  const plain = !isShardedPool(file) && fs.existsSync(file);
  const m: PoolManifest = plain ? plainManifest(file, opts.scheme ?? 'dim') : readPoolManifest(file);
  const to = opts.scheme ?? m.scheme; // the scheme written
  const mf = manifestFile(file);
  if (!Number.isInteger(toP) || toP < 1) throw new CheckpointError(mf, `cannot be re-dealt to P' = ${toP}: P' must be an integer ≥ 1`);
  if (to === 'dim' && toP > 1 && m.dim % toP !== 0)
    throw new CheckpointError(mf, `is dim-sharded with dv = ${m.dim}, which ${toP} ranks cannot split evenly; pick P' dividing ${m.dim}`);
  if (to === 'row' && toP > m.rows) throw new CheckpointError(mf, `has N = ${m.rows} rows, fewer than P' = ${toP} ranks`);
  const full = gather(
    m,
    Array.from({ length: m.P }, (_, r) => readShard(file, r, m.P, plain)),
    file,
  );
  const out = opts.out ?? file;
  const files: string[] = [];
  if (toP === 1) {
    writeStoreTensors(out, full);
    files.push(out);
  } else {
    for (let p = 0; p < toP; p++) {
      writeStoreTensors(shardFile(out, p, toP), split(full, to, toP, p));
      files.push(shardFile(out, p, toP));
    }
    const manifest: PoolManifest = {
      ...m,
      scheme: to,
      P: toP,
      shards: files.map((f) => path.basename(f)),
    };
    writeFileAtomic(manifestFile(out), `${JSON.stringify(manifest, null, 2)}\n`);
    files.push(manifestFile(out));
  }
  if (!plain && path.resolve(out) === path.resolve(file) && toP !== m.P) {
    for (let r = 0; r < m.P; r++) fs.rmSync(shardFile(file, r, m.P), { force: true });
    if (toP === 1) fs.rmSync(mf, { force: true });
  }
  return { scheme: to, fromP: m.P, toP, files };
}

function plainManifest(file: string, scheme: ShardScheme): PoolManifest {
  let c: { rows: number; dim: number };
  try {
    c = readStoreTensors(file);
  } catch (e) {
    if (e instanceof MnemoError) throw new CheckpointError(file, `is unreadable: ${e.message}`);
    throw e;
  }
  return { format: 'mnemo-sharded-pool', version: 1, scheme, P: 1, rows: c.rows, dim: c.dim, shards: [path.basename(file)] };
}
