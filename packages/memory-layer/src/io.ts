/**
 * Save and load memories with their shared pool:
 *   <dir>/memory.json         { format, version, pool: { rows, dim }, layers: [config, …] }
 *   <dir>/layers.safetensors  dense tensors, named `layers.<i>.<name>` (wq, bq, subkeys, w1, …)
 *   <dir>/values.safetensors  the pool's value table + optimizer state (kernels ValueStore format)
 * Every file is written to a temp name and renamed; loading checks names, shapes and dtypes and
 * refuses anything missing, extra or corrupt with a CheckpointError naming the file and tensor.
 *
 * Any memory design saves through `saveMemory` (a layer is its JSON config + named variables).
 * Loading is two steps so that this package need not know every design: `openMemory` reads the
 * pool and the saved configs; the caller (e.g. @mnemo/model, from its registry of kinds) builds
 * the layers on that pool; `loadMemoryTensors` fills their variables. `loadMemory` does all three
 * for PKM / Memory+ layers.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CheckpointError, SafetensorsReader, writeFileAtomic, writeSafetensors } from '@mnemo/core';
import * as tf from '@tensorflow/tfjs-core';
import { type MemoryLayerConfig, parseMemoryLayerConfig } from './config';
import { MemoryLayer } from './memory-layer';
import { MemoryPool, type ValuePool } from './pool';

const FORMAT = 'mnemo-memory';
const VERSION = 1;

/** What a checkpoint needs of a memory layer: its JSON config, its pool and its named dense tensors. */
export interface SavableMemory {
  readonly config: unknown;
  readonly pool: ValuePool;
  variables(): Record<string, tf.Variable>;
}

export interface SavedMemory {
  pool: ValuePool;
  layers: SavableMemory[];
}

export interface LoadedMemory {
  pool: MemoryPool;
  layers: MemoryLayer[];
}

export function saveMemory(dir: string, { pool, layers }: SavedMemory): void {
  mkdirSync(dir, { recursive: true });
  for (const [i, l] of layers.entries()) {
    if (l.pool !== pool) throw new CheckpointError(dir, `layer ${i} does not use the pool being saved`);
  }
  pool.save(path.join(dir, 'values.safetensors'));
  const entries = layers.flatMap((l, i) =>
    Object.entries(l.variables()).map(([name, v]) => ({
      name: `layers.${i}.${name}`,
      dtype: 'F32' as const,
      shape: v.shape,
      data: v.dataSync() as Float32Array,
    })),
  );
  writeSafetensors(path.join(dir, 'layers.safetensors'), entries, { format: FORMAT });
  const meta = { format: FORMAT, version: VERSION, pool: { rows: pool.rows, dim: pool.dim }, layers: layers.map((l) => l.config) };
  writeFileAtomic(path.join(dir, 'memory.json'), `${JSON.stringify(meta, null, 2)}\n`);
}

/** The pool of a saved memory (values + optimizer state) and its layers' configs as saved (not parsed). */
export function openMemory(dir: string, opts: { mmap?: boolean } = {}): { pool: MemoryPool; configs: unknown[] } {
  const jsonFile = path.join(dir, 'memory.json');
  let meta: { format?: string; version?: number; pool?: { rows: number; dim: number }; layers?: unknown[] };
  try {
    meta = JSON.parse(readFileSync(jsonFile, 'utf8'));
  } catch (e) {
    throw new CheckpointError(jsonFile, `cannot read: ${(e as Error).message}`);
  }
  if (meta.format !== FORMAT || meta.version !== VERSION || !Array.isArray(meta.layers) || !meta.pool) {
    throw new CheckpointError(jsonFile, `not a ${FORMAT} v${VERSION} file`);
  }
  const values = path.join(dir, 'values.safetensors');
  const shards = `${values}.shards.json`; // @mnemo/parallel ShardedPool.save (mnemo-train --memory-parallel P)
  if (!existsSync(values) && existsSync(shards)) {
    let P = '?';
    try {
      P = String((JSON.parse(readFileSync(shards, 'utf8')) as { P?: unknown }).P);
    } catch {}
    throw new CheckpointError(
      values,
      `is sharded over ${P} ranks (trained with --memory-parallel ${P}); write an unsharded copy with \`mnemo-train reshard --checkpoint DIR --memory-parallel 1 --out NEWDIR\` (@mnemo/parallel reshardCheckpoint), or load it with ${P} ranks`,
    );
  }
  const pool = MemoryPool.load(values, opts);
  if (pool.rows !== meta.pool.rows || pool.dim !== meta.pool.dim) {
    pool.dispose();
    throw new CheckpointError(dir, `values are ${pool.rows}×${pool.dim}, memory.json says ${meta.pool.rows}×${meta.pool.dim}`);
  }
  return { pool, configs: meta.layers };
}

/**
 * Fill the variables of `layers` (built on the opened pool, in saved order) from
 * layers.safetensors. With `configs` (from openMemory), each layer's config must equal the saved one.
 */
export function loadMemoryTensors(dir: string, layers: SavableMemory[], configs?: unknown[]): void {
  if (configs) {
    if (configs.length !== layers.length) {
      throw new CheckpointError(dir, `does not match the model config: ${configs.length} memory layers saved, ${layers.length} expected`);
    }
    layers.forEach((l, i) => {
      if (canonical(l.config) !== canonical(configs[i])) {
        throw new CheckpointError(
          dir,
          `does not match the model config: layer ${i} was saved as ${JSON.stringify(configs[i])}, expected ${JSON.stringify(l.config)}`,
        );
      }
    });
  }
  const reader = new SafetensorsReader(path.join(dir, 'layers.safetensors'));
  try {
    const used = new Set<string>();
    for (const [i, layer] of layers.entries()) {
      for (const [name, v] of Object.entries(layer.variables())) {
        const key = `layers.${i}.${name}`;
        const info = reader.info(key);
        if (info.dtype !== 'F32' || info.shape.join() !== v.shape.join()) {
          throw new CheckpointError(reader.file, `tensor '${key}' is ${info.dtype} [${info.shape}], expected F32 [${v.shape}]`);
        }
        tf.tidy(() => v.assign(tf.tensor(reader.readF32(key), v.shape))); // tidy frees the file tensor; the variable keeps the data
        used.add(key);
      }
    }
    const extra = [...reader.tensors.keys()].filter((k) => !used.has(k));
    if (extra.length) throw new CheckpointError(reader.file, `unexpected tensors ${extra.join(', ')}`);
  } finally {
    reader.close();
  }
}

/** Load PKM / Memory+ layers saved by saveMemory, on their shared pool. */
export function loadMemory(dir: string, opts: { mmap?: boolean } = {}): LoadedMemory {
  const { pool, configs } = openMemory(dir, opts);
  const layers: MemoryLayer[] = [];
  try {
    const parsed: MemoryLayerConfig[] = configs.map((c, i) => parseMemoryLayerConfig(c, `layers.${i}`));
    for (const c of parsed) layers.push(new MemoryLayer(c, { pool }));
    loadMemoryTensors(dir, layers);
  } catch (e) {
    for (const l of layers) l.dispose();
    pool.dispose();
    throw e;
  }
  return { pool, layers };
}

/** JSON with object keys sorted (configs compare equal whatever their key order). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}
