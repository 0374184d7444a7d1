/**
 * Save and load memory layers with their shared pool:
 *   <dir>/memory.json         { format, version, pool: { rows, dim }, layers: [config, …] }
 *   <dir>/layers.safetensors  dense tensors, named `layers.<i>.<name>` (wq, bq, subkeys, w1, …)
 *   <dir>/values.safetensors  the pool's value table + optimizer state (kernels ValueStore format)
 * Every file is written to a temp name and renamed; loading checks names, shapes and dtypes and
 * refuses anything missing, extra or corrupt with a CheckpointError naming the file and tensor.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type MemoryLayerConfig, parseMemoryLayerConfig } from './config';
import { MemoryLayer } from './memory-layer';
import { MemoryPool } from './pool';
import { CheckpointError, SafetensorsReader, writeFileAtomic, writeSafetensors } from '@mnemo/core';

const FORMAT = 'mnemo-memory';
const VERSION = 1;

export interface SavedMemory {
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

export function loadMemory(dir: string, opts: { mmap?: boolean } = {}): SavedMemory {
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
  const configs: MemoryLayerConfig[] = meta.layers.map((c, i) => parseMemoryLayerConfig(c, `layers.${i}`));
  const pool = MemoryPool.load(path.join(dir, 'values.safetensors'), opts);
  const layers: MemoryLayer[] = [];
  const reader = new SafetensorsReader(path.join(dir, 'layers.safetensors'));
  try {
    if (pool.rows !== meta.pool.rows || pool.dim !== meta.pool.dim) {
      throw new CheckpointError(dir, `values are ${pool.rows}×${pool.dim}, memory.json says ${meta.pool.rows}×${meta.pool.dim}`);
    }
    const used = new Set<string>();
    for (const [i, c] of configs.entries()) {
      const layer = new MemoryLayer(c, { pool });
      layers.push(layer);
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
  } catch (e) {
    for (const l of layers) l.dispose();
    pool.dispose();
    throw e;
  } finally {
    reader.close();
  }
  return { pool, layers };
}
