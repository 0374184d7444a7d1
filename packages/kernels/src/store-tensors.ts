/**
 * A value-store file's tensors as raw bytes, for tools that re-lay tables out without a live store
 * (@mnemo/parallel re-shards a checkpoint: concatenates column shards, re-deals rows). Reading
 * checks the header, the layout of the file's optimizer and every checksum; writing checks the
 * tensors against the layout of the metadata's optimizer and writes atomically with checksums, so
 * ValueStore.load accepts the result.
 *
 *   const c = readStoreTensors(file);          // { rows, dim, metadata, tensors: { values, adam_moments, … } }
 *   writeStoreTensors(out, { ...c, rows: 2 * c.rows, tensors });
 */
import { ValueError } from '@mnemo/core';
import { resolveOptimizer } from './optimizers';
import { STATE_SKEW, storeLayout } from './state-layout';
import { type StDtype, checkTensorHash, readInto, writeStoreFile } from './store-file';
import type { StorageDtype } from './table-config';
import { readStoreHeader, storeHash } from './value-store-io';

export interface StoreTensor {
  dtype: StDtype;
  shape: number[];
  bytes: Uint8Array;
}

export interface StoreFileContents {
  rows: number; // N
  dim: number; // dv
  /** the file's metadata (dtype, optimizer JSON, steps, rowUpdates), without format/version/checksums */
  metadata: Record<string, string>;
  /** every tensor of the layout but the _skew pad, by name */
  tensors: Record<string, StoreTensor>;
}

/** Read every tensor of a store file (checksums verified); a ValueError names the file on anything wrong. */
export function readStoreTensors(file: string): StoreFileContents {
  const h = readStoreHeader(file, undefined);
  const layout = storeLayout(h.optimizer, h.rows, h.dim, h.dtype);
  const hash = storeHash();
  const tensors: Record<string, StoreTensor> = {};
  for (const r of layout) {
    if (r.field === null) continue; // the _skew pad
    const t = h.parsed.tensors[r.name];
    if (!t) throw new ValueError('file', `${file}: tensor '${r.name}' is missing`);
    if (t.dtype !== r.dtype || t.shape.join(',') !== r.shape.join(',')) {
      throw new ValueError('file', `${file}: tensor '${r.name}' is ${t.dtype} [${t.shape}], expected ${r.dtype} [${r.shape}]`);
    }
    const bytes = new Uint8Array(t.length);
    readInto(file, t.offset, bytes);
    checkTensorHash(file, r.name, bytes, h.checksums[r.name], hash);
    tensors[r.name] = { dtype: r.dtype, shape: r.shape, bytes };
  }
  const { format: _f, version: _v, checksums: _c, ...metadata } = h.parsed.metadata;
  return { rows: h.rows, dim: h.dim, metadata, tensors };
}

/** Write a store file from raw tensors (the layout of metadata.optimizer at [rows, dim]), atomically. */
export function writeStoreTensors(file: string, c: StoreFileContents): void {
  const opt = resolveOptimizer(JSON.parse(c.metadata.optimizer ?? '{}'));
  const layout = storeLayout(opt, c.rows, c.dim, c.metadata.dtype as StorageDtype);
  const entries = layout.map((r) => {
    if (r.field === null) return { name: r.name, dtype: r.dtype, shape: r.shape, bytes: new Uint8Array(STATE_SKEW) };
    const t = c.tensors[r.name];
    if (!t || t.dtype !== r.dtype || t.shape.join(',') !== r.shape.join(',') || t.bytes.length !== r.bytes) {
      throw new ValueError(
        'tensors',
        `${file}: tensor '${r.name}' must be ${r.dtype} [${r.shape}], got ${t ? `${t.dtype} [${t.shape}]` : 'none'}`,
      );
    }
    return { name: r.name, dtype: r.dtype, shape: r.shape, bytes: t.bytes };
  });
  writeStoreFile(file, { ...c.metadata, rows: String(c.rows), dim: String(c.dim) }, entries, storeHash());
}
