/**
 * ValueStore: an N × dv value table held OUTSIDE tfjs (native memory when the addon loaded, else
 * an ArrayBuffer; or a memory-mapped file), with per-row optimizer state, updated sparsely. It
 * implements the ValueTable contract (value-table.ts: shapes, −1 padding, fused vs deferred).
 *
 *   const store = ValueStore.create({ rows: N, dim: dv, optimizer: { kind: 'adam', lr: 1e-3 },
 *                                     init: { kind: 'normal', std: dv ** -0.5, seed: 1 } });
 *   const out = store.forward(ids, w, K);            // [B, dv]  ids/w: [B, K]
 *   const gw = store.backward(ids, w, gOut, K);      // [B, K]; touched rows updated in place
 *   store.save('values.safetensors'); store.dispose();
 *
 * Modes: by default backward() applies the fused optimizer update to the touched rows at once.
 * With `deferred: true` (store option or per call) backward() only returns gw and queues the
 * batch; step() then applies one update from the sum of all queued gradients.
 * The arrays follow state-layout.ts; files and mappings are value-store-io.ts.
 */
import path from 'node:path';
import { BackendError, ConfigError, DisposedError } from '@mnemo/core';
import { GradientQueue } from './deferred';
import { bagBackward, bagForward, validateBag } from './embedding-bag';
import { registerStoreAccess } from './internal';
import { type NativeAddon, nativeAddon } from './native';
import { type ResolvedOptimizer, packOptimizer } from './optimizers';
import type { KernelImpl } from './pk-topk';
import { type LayoutRow, emptyState, specOf, stateBytes, storeLayout } from './state-layout';
import { checkTensorHash, createStoreFile, rewriteHeader, writeStoreFile } from './store-file';
import {
  type LoadOptions,
  type StorageDtype,
  type ValueStoreOptions,
  checkDeferred,
  checkLr,
  checkOut,
  checkRowIds,
  checkRowValues,
  fillInit,
  resolveTableOptions,
} from './table-config';
import { DTYPE_CODE, type OptimizerStateArrays, type Storage, readRow, writeRow } from './ts/embedding-bag';
import type { BackwardOptions, StepOptions, ValueTable, ValueTableStats } from './value-table';
import {
  type TableArrays,
  allocArrays,
  checkFileLayout,
  mapArrays,
  metadataOf,
  nativeAddonReason,
  readArrays,
  readStoreHeader,
  storeHash,
  tableMemory,
  tensorEntries,
} from './value-store-io';

export type { InitConfig, LoadOptions, StorageDtype, ValueStoreOptions } from './table-config';
export type { BackwardOptions } from './value-table';

export interface ValueStoreStats extends ValueTableStats {
  impl: KernelImpl;
  mapped: boolean;
  /** the file holding the table ('file' stores and mmap: 'shared' loads), else null */
  file: string | null;
}

function chooseImpl(impl: KernelImpl | undefined, field = 'impl'): { impl: KernelImpl; native: NativeAddon | null } {
  if (impl !== undefined && impl !== 'native' && impl !== 'ts')
    throw new ConfigError(field, `must be 'native' or 'ts', got ${String(impl)}`);
  const native = nativeAddon();
  if (impl === 'native' && !native) {
    throw new BackendError(`${field}: native kernels are not available (${nativeAddonReason()}); use impl: 'ts'`);
  }
  if (impl === 'ts' || !native) return { impl: 'ts', native: null };
  return { impl: 'native', native };
}

function releaseAll(buffers: ArrayBuffer[]): void {
  const a = nativeAddon();
  if (a) for (const b of buffers) a.release(b);
  buffers.length = 0;
}

export class ValueStore implements ValueTable {
  readonly rows: number;
  readonly dim: number;
  readonly dtype: StorageDtype;
  readonly optimizer: ResolvedOptimizer;
  readonly impl: KernelImpl;
  private readonly native: NativeAddon | null;
  private readonly layout: LayoutRow[];
  private values: Storage | null; // [N, dv]
  private state: OptimizerStateArrays;
  private readonly buffers: ArrayBuffer[];
  private readonly mapped: boolean;
  private readonly deferred: boolean;
  /** set when the arrays are a shared mapping of this file */
  private backing: { file: string; headerLength: number } | null = null;
  private readonly queue: GradientQueue;
  private nSteps = 0;
  private lastTouched = 0;
  private nRowUpdates = 0;

  static {
    // the one hook of internal.ts (the package's benchmarks and tests): read the live arrays
    registerStoreAccess((s: ValueStore) => ({ values: s.values, state: s.state, layout: s.layout }));
  }

  private constructor(args: {
    rows: number;
    dim: number;
    dtype: StorageDtype;
    optimizer: ResolvedOptimizer;
    impl: KernelImpl | undefined;
    layout: LayoutRow[];
    arrays: TableArrays;
    buffers: ArrayBuffer[];
    mapped: boolean;
    deferred: boolean;
  }) {
    this.rows = args.rows;
    this.dim = args.dim;
    this.dtype = args.dtype;
    this.optimizer = args.optimizer;
    const { impl, native } = chooseImpl(args.impl);
    this.impl = impl;
    this.native = native;
    this.layout = args.layout;
    this.values = args.arrays.values;
    this.state = args.arrays.state;
    this.buffers = args.buffers;
    this.mapped = args.mapped;
    this.deferred = args.deferred;
    this.queue = new GradientQueue(args.dim);
  }

  static create(opts: ValueStoreOptions): ValueStore {
    const cfg = resolveTableOptions(opts);
    const { rows, dim, dtype, optimizer, deferred } = cfg;
    chooseImpl(opts.impl); // fail before allocating gigabytes
    const layout = storeLayout(optimizer, rows, dim, dtype);
    const buffers: ArrayBuffer[] = [];
    let store: ValueStore;
    if (opts.file !== undefined) {
      const file = opts.file;
      if (typeof file !== 'string' || file === '') throw new ConfigError('file', 'must be a file path');
      if (!nativeAddon())
        throw new BackendError(`file: a file-backed store needs the native addon (${nativeAddonReason()}); omit 'file' and save() instead`);
      const headerLength = createStoreFile(
        file,
        metadataOf({ rows, dim, dtype, optimizer, nSteps: 0, nRowUpdates: 0 }),
        layout.map(specOf),
      );
      try {
        const arrays = mapArrays(file, headerLength, layout, buffers);
        store = new ValueStore({ rows, dim, dtype, optimizer, impl: opts.impl, layout, arrays, buffers, mapped: true, deferred });
      } catch (e) {
        releaseAll(buffers);
        throw e;
      }
      store.backing = { file, headerLength };
    } else {
      const arrays = allocArrays(layout, buffers);
      store = new ValueStore({ rows, dim, dtype, optimizer, impl: opts.impl, layout, arrays, buffers, mapped: false, deferred });
    }
    fillInit(store.values!, dtype, cfg.init);
    return store;
  }

  private live(): Storage {
    if (this.values === null) throw new DisposedError('ValueStore: used after dispose(); create or load a new store');
    return this.values;
  }

  get disposed(): boolean {
    return this.values === null;
  }

  /**
   * out[b] = Σ_j w[b,j] · V[ids[b,j]]. ids, weights [B, K] (K = bagSize); −1 ids are skipped.
   * `batch` is needed only when K = 0; `out` [B, dv] may be passed to reuse a buffer.
   */
  forward(ids: Int32Array, weights: Float32Array, bagSize: number, batch?: number, out?: Float32Array): Float32Array {
    const values = this.live();
    const B = validateBag(this.rows, this.dim, ids, weights, bagSize, batch);
    checkOut(out, B, this.dim);
    out ??= new Float32Array(B * this.dim); // [B, dv]
    bagForward(this.native, values, DTYPE_CODE[this.dtype], this.dim, ids, weights, bagSize, out);
    return out;
  }

  /**
   * gw[b,j] = <gOut[b], V[ids[b,j]]> (the table BEFORE this update) // [B, K]
   * and the optimizer update of every touched row (or queue it, in deferred mode).
   */
  backward(ids: Int32Array, weights: Float32Array, gOut: Float32Array, bagSize: number, opts: BackwardOptions = {}): Float32Array {
    const values = this.live();
    validateBag(this.rows, this.dim, ids, weights, bagSize, undefined, gOut);
    const lr = checkLr(opts.lr, this.optimizer.lr);
    const gw = new Float32Array(ids.length);
    const deferred = opts.deferred ?? this.deferred;
    if (deferred) {
      bagBackward(this.native, values, DTYPE_CODE[this.dtype], this.dim, ids, weights, gOut, bagSize, gw, null, this.state);
      this.queue.push(ids, weights, gOut, bagSize);
      return gw;
    }
    const params = packOptimizer(this.optimizer, lr);
    const touched = bagBackward(this.native, values, DTYPE_CODE[this.dtype], this.dim, ids, weights, gOut, bagSize, gw, params, this.state);
    this.recordStep(touched);
    return gw;
  }

  /** Apply the queued gradients (deferred mode) as ONE optimizer update. Returns touched rows. */
  step(opts: StepOptions = {}): number {
    const values = this.live();
    const lr = checkLr(opts.lr, this.optimizer.lr);
    const q = this.queue.take(); // [ΣB, K] bags, padded with −1
    if (q === null) return 0;
    const params = packOptimizer(this.optimizer, lr);
    const touched = bagBackward(
      this.native,
      values,
      DTYPE_CODE[this.dtype],
      this.dim,
      q.ids,
      q.weights,
      q.gOut,
      q.bagSize,
      null,
      params,
      this.state,
    );
    this.recordStep(touched);
    return touched;
  }

  private recordStep(touched: number): void {
    this.nSteps++;
    this.lastTouched = touched;
    this.nRowUpdates += touched;
  }

  /** Rows as float32 [n, dv]; id −1 gives a zero row. */
  readRows(ids: Int32Array): Float32Array {
    const values = this.live();
    checkRowIds(this.rows, ids);
    const out = new Float32Array(ids.length * this.dim);
    const row = new Float64Array(this.dim);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < 0) continue;
      readRow(values, DTYPE_CODE[this.dtype], this.dim, ids[i]!, row);
      out.set(row, i * this.dim);
    }
    return out;
  }

  /** Overwrite rows (optimizer state is kept). rows: float32 [n, dv]. */
  writeRows(ids: Int32Array, rows: Float32Array): void {
    const values = this.live();
    checkRowIds(this.rows, ids, false);
    checkRowValues(rows, ids.length, this.dim);
    const row = new Float64Array(this.dim);
    for (let i = 0; i < ids.length; i++) {
      for (let c = 0; c < this.dim; c++) row[c] = rows[i * this.dim + c]!;
      writeRow(values, DTYPE_CODE[this.dtype], this.dim, ids[i]!, row);
    }
  }

  stats(): ValueStoreStats {
    const values = this.live();
    const state = stateBytes(this.layout);
    return {
      rows: this.rows,
      dim: this.dim,
      dtype: this.dtype,
      impl: this.impl,
      valueBytes: values.byteLength,
      stateBytes: state,
      bytes: values.byteLength + state,
      steps: this.nSteps,
      touchedRows: this.lastTouched,
      rowUpdates: this.nRowUpdates,
      pending: this.queue.length,
      mapped: this.mapped,
      file: this.backing?.file ?? null,
    };
  }

  private metadata(): Record<string, string> {
    const { rows, dim, dtype, optimizer, nSteps, nRowUpdates } = this;
    return metadataOf({ rows, dim, dtype, optimizer, nSteps, nRowUpdates });
  }

  private entries() {
    return tensorEntries(this.layout, { values: this.live(), state: this.state });
  }

  /** Save table + optimizer state as a safetensors file, atomically (see store-file.ts). */
  save(file: string): void {
    this.live();
    if (typeof file !== 'string' || file === '') throw new ConfigError('file', 'must be a file path');
    if (this.backing && path.resolve(file) === path.resolve(this.backing.file)) {
      this.flush();
      return;
    }
    writeStoreFile(file, this.metadata(), this.entries(), storeHash());
  }

  /**
   * File-backed stores ('file' option, mmap: 'shared'): write dirty pages to the file and record
   * checksums and counters in its header, so load() accepts it. Returns false for other stores.
   */
  flush(): boolean {
    this.live();
    if (!this.backing) return false;
    const native = nativeAddon()!;
    for (const b of this.buffers) native.syncBuffer(b);
    const entries = this.entries();
    rewriteHeader(
      this.backing.file,
      this.backing.headerLength,
      this.metadata(),
      entries,
      entries.map((e) => e.bytes),
      storeHash(),
    );
    return true;
  }

  /** Load a file written by save(); refuses corrupt, truncated or foreign files with a ValueError. */
  static load(file: string, opts: LoadOptions = {}): ValueStore {
    const h = readStoreHeader(file, opts.optimizer);
    const { rows, dim, dtype, optimizer } = h;
    chooseImpl(opts.impl);
    if (opts.mmap && !nativeAddon())
      throw new BackendError(`mmap needs the native addon (${nativeAddonReason()}); load without { mmap: true }`);
    const verify = opts.verify ?? true;
    const deferred = checkDeferred(opts.deferred);
    const layout = storeLayout(optimizer, rows, dim, dtype);
    const buffers: ArrayBuffer[] = [];
    let store: ValueStore;
    try {
      if (opts.mmap === 'shared') {
        checkFileLayout(file, h.parsed, layout);
        const arrays = mapArrays(file, h.parsed.headerLength, layout, buffers);
        store = new ValueStore({ rows, dim, dtype, optimizer, impl: opts.impl, layout, arrays, buffers, mapped: true, deferred });
        store.backing = { file, headerLength: h.parsed.headerLength };
        if (verify) {
          const hash = storeHash();
          for (const e of store.entries()) if (e.name !== '_skew') checkTensorHash(file, e.name, e.bytes, h.checksums[e.name], hash);
        }
      } else {
        const mapped = Boolean(opts.mmap);
        const arrays = readArrays(file, h, layout, { verify, mapped }, tableMemory(file, mapped, buffers));
        store = new ValueStore({ rows, dim, dtype, optimizer, impl: opts.impl, layout, arrays, buffers, mapped, deferred });
      }
    } catch (e) {
      releaseAll(buffers);
      throw e;
    }
    store.nSteps = h.steps;
    store.nRowUpdates = h.rowUpdates;
    return store;
  }

  /** Free the table and state now (file-backed stores flush first); any later use throws DisposedError. Idempotent. */
  dispose(): void {
    if (this.values === null) return;
    try {
      if (this.backing) this.flush();
    } finally {
      this.release();
    }
  }

  private release(): void {
    this.values = null;
    this.state = emptyState();
    this.queue.clear();
    releaseAll(this.buffers);
  }
}
