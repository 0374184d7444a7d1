/**
 * A value table's arrays in memory and in store files (store-file.ts), driven by the layout of
 * state-layout.ts: allocate, map a file, read a file, list the tensors to save or flush, and the
 * store-file metadata. Used by ValueStore (value-store.ts) and, for the file side, by the CUDA
 * table (cuda.ts), so both write and read the same files.
 */
import { ConfigError, ValueError, checkInt } from '@mnemo/core';
import { nativeAddon } from './native';
import { type OptimizerConfig, type ResolvedOptimizer, resolveOptimizer } from './optimizers';
import { type LayoutRow, STATE_SKEW, bytesOf, emptyState, setState, specOf, stateRows, valuesRow, viewOf } from './state-layout';
import {
  type ParsedStoreFile,
  type TensorEntry,
  type TensorInfo,
  type TensorSpec,
  checkTensorHash,
  hashBytes,
  parseStoreFile,
  readInto,
} from './store-file';
import { STORAGE_DTYPES, type StorageDtype } from './table-config';
import type { OptimizerStateArrays, Storage } from './ts/embedding-bag';

/** The table [N, dv] and its optimizer state. */
export interface TableArrays {
  values: Storage;
  state: OptimizerStateArrays;
}

export function nativeAddonReason(): string {
  return process.env.MNEMO_NATIVE === '0' ? 'MNEMO_NATIVE=0' : 'the addon did not build or load';
}

/**
 * Memory for a table or state array: native (freed by dispose) when the addon is there, committed
 * up front so resident memory does not creep up as training touches new rows.
 */
export function allocate(bytes: number): ArrayBuffer {
  const a = nativeAddon();
  return a ? a.allocBuffer(bytes, true) : new ArrayBuffer(bytes);
}

/** `bytes` bytes STATE_SKEW bytes into a fresh block (see STATE_SKEW). */
function skewed(bytes: number, buffers: ArrayBuffer[]): Uint8Array {
  const b = allocate(bytes + STATE_SKEW);
  buffers.push(b);
  return new Uint8Array(b, STATE_SKEW, bytes);
}

/** A fresh zeroed block for a layout row (skewed when the row says so). */
function place(r: LayoutRow, buffers: ArrayBuffer[]): Uint8Array {
  if (r.skew) return skewed(r.bytes, buffers);
  const b = allocate(r.bytes);
  buffers.push(b);
  return new Uint8Array(b);
}

/** Zeroed arrays for every tensor of `layout`: the table first, then the state in layout order. */
export function allocArrays(layout: readonly LayoutRow[], buffers: ArrayBuffer[]): TableArrays {
  const vr = valuesRow(layout);
  const values = viewOf(vr, place(vr, buffers)) as Storage;
  const state = emptyState();
  for (const r of stateRows(layout)) setState(state, r, viewOf(r, place(r, buffers)));
  return { values, state };
}

/** Shared (read-write) mappings of every tensor of `file`, whose tensors are `layout` from `headerLength`. */
export function mapArrays(file: string, headerLength: number, layout: readonly LayoutRow[], buffers: ArrayBuffer[]): TableArrays {
  const native = nativeAddon()!;
  const views = new Map<LayoutRow, Uint8Array>();
  let off = headerLength;
  for (const r of layout) {
    if (r.field !== null) {
      const b = native.mapFile(file, off, r.bytes, true);
      buffers.push(b);
      views.set(r, new Uint8Array(b));
    }
    off += r.bytes;
  }
  const state = emptyState();
  for (const r of stateRows(layout)) setState(state, r, viewOf(r, views.get(r)!));
  const vr = valuesRow(layout);
  return { values: viewOf(vr, views.get(vr)!) as Storage, state };
}

/** The tensors of a table with their bytes, in file order (the _skew pad as zeros). */
export function tensorEntries(layout: readonly LayoutRow[], arrays: TableArrays): (TensorEntry & TensorSpec)[] {
  return layout.map((r) => {
    const a = r.field === null ? new Uint8Array(STATE_SKEW) : r.field === 'values' ? arrays.values : arrays.state[r.field];
    if (!a) throw new Error(`internal: the ${r.field} array of tensor '${r.name}' is missing`);
    return { ...specOf(r), bytes: bytesOf(a) };
  });
}

/** The store-file checksum, natively when the addon is there. */
export function storeHash(): (b: Uint8Array) => number {
  const a = nativeAddon();
  return a ? (b) => a.checksum(b, 0x811c9dc5) : (b) => hashBytes(b);
}

export interface TableCounters {
  rows: number;
  dim: number;
  dtype: StorageDtype;
  optimizer: ResolvedOptimizer;
  nSteps: number;
  nRowUpdates: number;
}

/** The store-file metadata of a table (store-file.ts adds format, version and checksums). */
export function metadataOf(st: TableCounters): Record<string, string> {
  const o = st.optimizer;
  const optimizer: OptimizerConfig = {
    kind: o.kind,
    lr: o.lr,
    betas: [o.beta1, o.beta2],
    eps: o.eps,
    weightDecay: o.weightDecay,
    ...(o.clip ? { clip: o.clip } : {}),
    ...(o.kind === 'adam' && o.secondMoment !== 'element' ? { secondMoment: o.secondMoment } : {}),
    ...(o.kind === 'adam' && o.momentDtype !== 'float32' ? { momentDtype: o.momentDtype } : {}),
  };
  return {
    rows: String(st.rows),
    dim: String(st.dim),
    dtype: st.dtype,
    optimizer: JSON.stringify(optimizer),
    steps: String(st.nSteps),
    rowUpdates: String(st.nRowUpdates),
  };
}

export interface StoreHeader {
  parsed: ParsedStoreFile;
  rows: number;
  dim: number;
  dtype: StorageDtype;
  optimizer: ResolvedOptimizer;
  checksums: Record<string, string>;
  steps: number;
  rowUpdates: number;
}

/**
 * Read and check a store file's header and metadata; `override` replaces the saved optimizer
 * config (same kind and Adam state variant only, else ConfigError).
 */
export function readStoreHeader(file: string, override: OptimizerConfig | undefined): StoreHeader {
  const parsed = parseStoreFile(file);
  const md = parsed.metadata;
  const rows = checkInt('file rows', Number(md.rows), 1, 2 ** 31 - 1);
  const dim = checkInt('file dim', Number(md.dim), 1, 65536);
  const dtype = md.dtype as StorageDtype;
  if (!STORAGE_DTYPES.includes(dtype)) throw new ValueError('file', `${file}: unknown dtype '${md.dtype}'`);
  let saved: OptimizerConfig;
  try {
    saved = JSON.parse(md.optimizer ?? '');
  } catch {
    throw new ValueError('file', `${file}: metadata.optimizer is not JSON`);
  }
  const optimizer = resolveOptimizer(override ?? saved);
  if (optimizer.kind !== saved.kind) {
    throw new ConfigError('optimizer.kind', `the file holds ${saved.kind} state; a ${optimizer.kind} optimizer cannot use it`);
  }
  if (optimizer.kind === 'adam') {
    const sm = saved.secondMoment ?? 'element';
    const md2 = saved.momentDtype ?? 'float32';
    if (optimizer.secondMoment !== sm) {
      throw new ConfigError(
        'optimizer.secondMoment',
        `the file holds Adam state with secondMoment '${sm}'; pass the same (or omit the optimizer)`,
      );
    }
    if (optimizer.momentDtype !== md2) {
      throw new ConfigError('optimizer.momentDtype', `the file holds Adam m as ${md2}; pass the same (or omit the optimizer)`);
    }
  }
  return {
    parsed,
    rows,
    dim,
    dtype,
    optimizer,
    checksums: JSON.parse(md.checksums ?? '{}') as Record<string, string>,
    steps: Number(md.steps ?? 0) || 0,
    rowUpdates: Number(md.rowUpdates ?? 0) || 0,
  };
}

/** Refuse a file whose tensors (names, order, dtypes, shapes, sizes) are not `layout`. */
export function checkFileLayout(file: string, parsed: ParsedStoreFile, layout: readonly LayoutRow[]): void {
  const specs: TensorSpec[] = Object.entries(parsed.tensors)
    .sort((a, b) => a[1].offset - b[1].offset)
    .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, length: t.length }));
  if (JSON.stringify(specs) !== JSON.stringify(layout.map(specOf))) {
    throw new ValueError('file', `${file}: tensor layout differs from this version's; load without mmap: 'shared' and save() again`);
  }
}

/**
 * The arrays of a store file: for each tensor of `layout` (the table first, then the state),
 * check it, get its memory from `placeRow` (mapped: already holding the file's bytes; else
 * filled from the file here) and verify its checksum.
 */
export function readArrays(
  file: string,
  header: StoreHeader,
  layout: readonly LayoutRow[],
  opts: { verify: boolean; mapped: boolean },
  placeRow: (r: LayoutRow, t: TensorInfo) => Uint8Array,
): TableArrays {
  const hash = storeHash();
  const take = (r: LayoutRow): Uint8Array => {
    const t = header.parsed.tensors[r.name];
    if (!t) throw new ValueError('file', `${file}: tensor '${r.name}' is missing`);
    if (t.dtype !== r.dtype || t.shape.join(',') !== r.shape.join(',')) {
      throw new ValueError('file', `${file}: tensor '${r.name}' is ${t.dtype} [${t.shape}], expected ${r.dtype} [${r.shape}]`);
    }
    const u8 = placeRow(r, t);
    if (!opts.mapped) readInto(file, t.offset, u8);
    if (opts.verify) checkTensorHash(file, r.name, u8, header.checksums[r.name], hash);
    return u8;
  };
  const vr = valuesRow(layout);
  const values = viewOf(vr, take(vr)) as Storage;
  const state = emptyState();
  for (const r of stateRows(layout)) setState(state, r, viewOf(r, take(r)));
  return { values, state };
}

/** placeRow for readArrays into table memory: fresh blocks (skewed state), or copy-on-write mappings. */
export function tableMemory(file: string, mmap: boolean, buffers: ArrayBuffer[]): (r: LayoutRow, t: TensorInfo) => Uint8Array {
  if (!mmap) return (r) => place(r, buffers);
  const native = nativeAddon()!;
  return (_r, t) => {
    const b = native.mapFile(file, t.offset, t.length, false);
    buffers.push(b);
    return new Uint8Array(b);
  };
}
