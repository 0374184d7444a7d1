/**
 * ValueStore: an N × dv value table held OUTSIDE tfjs (native memory when the addon loaded, else
 * an ArrayBuffer; or a memory-mapped file), with per-row optimizer state, updated sparsely.
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
 */
import path from 'node:path';
import { BackendError, ConfigError, DisposedError, ShapeError, ValueError, checkInt } from '@mnemo/core';
import { bagBackward, bagForward, validateBag } from './embedding-bag';
import { type NativeAddon, nativeAddon } from './native';
import { type OptimizerConfig, type ResolvedOptimizer, packOptimizer, resolveOptimizer } from './optimizers';
import type { KernelImpl } from './pk-topk';
import {
  type StDtype,
  type TensorEntry,
  type TensorSpec,
  checkTensorHash,
  createStoreFile,
  rewriteHeader,
  hashBytes,
  parseStoreFile,
  readInto,
  writeStoreFile,
} from './store-file';
import { DTYPE_CODE, type OptimizerStateArrays, type Storage, readRow, writeRow } from './ts/embedding-bag';
import { f32ToBf16, f32ToF16 } from './ts/half';
import { mulberry32 } from '@mnemo/core';

export type StorageDtype = 'float32' | 'bfloat16' | 'float16';
export type InitConfig = 'zeros' | { kind: 'normal'; std: number; seed?: number };

export interface ValueStoreOptions {
  rows: number; // N
  dim: number; // dv
  /** storage of the table; optimizer state is always float32. Default float32 */
  dtype?: StorageDtype;
  optimizer: OptimizerConfig;
  /** default: normal with std dv^-0.5 (algorithms.md §2.7), seed 0 */
  init?: InitConfig;
  /** kernels: default native when the addon loaded */
  impl?: KernelImpl;
  /** queue gradients in backward() and update in step() (default false: fused update) */
  deferred?: boolean;
  /**
   * Keep the table and state in this new file (a shared memory mapping; tables larger than RAM
   * work, the OS pages rows in and out). flush() records checksums; dispose() flushes. Needs the addon.
   */
  file?: string;
}

export interface LoadOptions {
  /**
   * Map the file instead of reading it (needs the addon). true: copy-on-write, the file is never
   * modified; 'shared': updates go to the file, flush()/dispose() record its checksums.
   */
  mmap?: boolean | 'shared';
  /** check the per-tensor checksums (reads the whole file). Default true */
  verify?: boolean;
  impl?: KernelImpl;
  deferred?: boolean;
  /** replace the saved optimizer config (same kind only: the state must match) */
  optimizer?: OptimizerConfig;
}

export interface BackwardOptions {
  /** learning rate for this update (default: the optimizer's lr) */
  lr?: number;
  /** queue instead of updating (default: the store's mode) */
  deferred?: boolean;
}

export interface ValueStoreStats {
  rows: number;
  dim: number;
  dtype: StorageDtype;
  impl: KernelImpl;
  /** bytes of the table */
  valueBytes: number;
  /** bytes of optimizer state */
  stateBytes: number;
  bytes: number;
  /** optimizer updates applied so far */
  steps: number;
  /** distinct rows updated by the last update */
  touchedRows: number;
  /** Σ over updates of distinct rows updated */
  rowUpdates: number;
  /** batches queued for step() */
  pending: number;
  mapped: boolean;
  /** the file holding the table ('file' stores and mmap: 'shared' loads), else null */
  file: string | null;
}

interface Pending {
  ids: Int32Array;
  weights: Float32Array;
  gOut: Float32Array;
  bagSize: number;
}

const ST_DTYPE: Record<StorageDtype, StDtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };
const DTYPES: readonly StorageDtype[] = ['float32', 'bfloat16', 'float16'];

function chooseImpl(impl: KernelImpl | undefined, field = 'impl'): { impl: KernelImpl; native: NativeAddon | null } {
  if (impl !== undefined && impl !== 'native' && impl !== 'ts') throw new ConfigError(field, `must be 'native' or 'ts', got ${String(impl)}`);
  const native = nativeAddon();
  if (impl === 'native' && !native) {
    throw new BackendError(`${field}: native kernels are not available (${nativeAddonReason()}); use impl: 'ts'`);
  }
  if (impl === 'ts' || !native) return { impl: 'ts', native: null };
  return { impl: 'native', native };
}

function nativeAddonReason(): string {
  return process.env.MNEMO_NATIVE === '0' ? 'MNEMO_NATIVE=0' : 'the addon did not build or load';
}

/**
 * Memory for a table or state array: native (freed by dispose) when the addon is there, committed
 * up front so resident memory does not creep up as training touches new rows.
 */
function allocate(bytes: number): ArrayBuffer {
  const a = nativeAddon();
  return a ? a.allocBuffer(bytes, true) : new ArrayBuffer(bytes);
}

/**
 * Optimizer-state arrays start STATE_SKEW bytes into their page-aligned block. With both the table
 * and the state page aligned, V[r] and A[r] would share their low 12 address bits, and the
 * update loop's stores to one then stall loads of the other on false "4K aliasing" conflicts
 * (measured: the Adagrad backward ran 2.5x slower). 2 KiB + one cache line moves them apart.
 */
const STATE_SKEW = 2048 + 64;

function skewed(bytes: number, buffers: ArrayBuffer[]): Uint8Array {
  const b = allocate(bytes + STATE_SKEW);
  buffers.push(b);
  return new Uint8Array(b, STATE_SKEW, bytes);
}

/** The live table and optimizer state of a store, for the package's own benchmarks (not exported from index.ts). */
const tables = new WeakMap<ValueStore, () => { values: Storage | null; state: OptimizerStateArrays }>();
export function tableOf(store: ValueStore): Storage {
  const t = tables.get(store)?.().values;
  if (!t) throw new DisposedError('ValueStore: used after dispose()');
  return t;
}
/** The store's optimizer-state arrays that exist (Adagrad A; Adam m, v or row-wise m, v_r; steps). */
export function stateArraysOf(store: ValueStore): (Float32Array | Uint16Array | Int32Array)[] {
  tableOf(store); // throws after dispose()
  const s = tables.get(store)!().state;
  return [s.accum, s.moments, s.moments16, s.rowV, s.steps].filter((a) => a != null);
}

export class ValueStore {
  readonly rows: number;
  readonly dim: number;
  readonly dtype: StorageDtype;
  readonly optimizer: ResolvedOptimizer;
  readonly impl: KernelImpl;
  private readonly native: NativeAddon | null;
  private values: Storage | null; // [N, dv]
  private state: OptimizerStateArrays;
  private readonly buffers: ArrayBuffer[];
  private readonly mapped: boolean;
  private readonly deferred: boolean;
  /** set when the arrays are a shared mapping of this file */
  private backing: { file: string; headerLength: number } | null = null;
  private pending: Pending[] = [];
  private nSteps = 0;
  private lastTouched = 0;
  private nRowUpdates = 0;

  private constructor(args: {
    rows: number;
    dim: number;
    dtype: StorageDtype;
    optimizer: ResolvedOptimizer;
    impl: KernelImpl | undefined;
    values: Storage;
    state: OptimizerStateArrays;
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
    this.values = args.values;
    this.state = args.state;
    this.buffers = args.buffers;
    this.mapped = args.mapped;
    this.deferred = args.deferred;
    tables.set(this, () => ({ values: this.values, state: this.state }));
  }

  static create(opts: ValueStoreOptions): ValueStore {
    if (opts === null || typeof opts !== 'object') throw new ConfigError('options', 'pass { rows, dim, optimizer }');
    const rows = checkInt('rows', opts.rows, 1, 2 ** 31 - 1);
    const dim = checkInt('dim', opts.dim, 1, 65536);
    const dtype = opts.dtype ?? 'float32';
    if (!DTYPES.includes(dtype)) throw new ConfigError('dtype', `must be one of ${DTYPES.join(', ')}, got ${String(dtype)}`);
    const optimizer = resolveOptimizer(opts.optimizer);
    chooseImpl(opts.impl); // fail before allocating gigabytes
    if (opts.file !== undefined) return ValueStore.createInFile(opts.file, rows, dim, dtype, optimizer, opts);
    const elemBytes = dtype === 'float32' ? 4 : 2;
    const buffers: ArrayBuffer[] = [];
    const vbuf = allocate(rows * dim * elemBytes);
    buffers.push(vbuf);
    const values: Storage = dtype === 'float32' ? new Float32Array(vbuf) : new Uint16Array(vbuf);
    const state = ValueStore.allocState(optimizer, rows, dim, buffers);
    const store = new ValueStore({
      rows,
      dim,
      dtype,
      optimizer,
      impl: opts.impl,
      values,
      state,
      buffers,
      mapped: false,
      deferred: opts.deferred ?? false,
    });
    store.initialise(opts.init ?? { kind: 'normal', std: dim ** -0.5, seed: 0 });
    return store;
  }

  /** Tensors of a store file, in file order (see store-file.ts). */
  private static layout(opt: ResolvedOptimizer, rows: number, dim: number, dtype: StorageDtype): TensorSpec[] {
    const specs: TensorSpec[] = [];
    const kind = opt.kind;
    if (kind === 'adagrad') specs.push({ name: 'adagrad_accum', dtype: 'F32', shape: [rows, dim], length: rows * dim * 4 });
    if (kind === 'adam' && opt.secondMoment === 'row') {
      // partial row-wise Adam: m [N, dv] (F32 or BF16), v per row [N]
      const mb = opt.momentDtype === 'bfloat16' ? 2 : 4;
      specs.push({ name: 'adam_m', dtype: mb === 2 ? 'BF16' : 'F32', shape: [rows, dim], length: rows * dim * mb });
      specs.push({ name: 'adam_row_v', dtype: 'F32', shape: [rows], length: rows * 4 });
      specs.push({ name: 'adam_step', dtype: 'I32', shape: [rows], length: rows * 4 });
    } else if (kind === 'adam') {
      specs.push({ name: 'adam_moments', dtype: 'F32', shape: [rows, 2, dim], length: rows * 2 * dim * 4 });
      specs.push({ name: 'adam_step', dtype: 'I32', shape: [rows], length: rows * 4 });
    }
    if (specs.length) specs.push({ name: '_skew', dtype: 'U8', shape: [STATE_SKEW], length: STATE_SKEW });
    const eb = dtype === 'float32' ? 4 : 2;
    specs.push({ name: 'values', dtype: ST_DTYPE[dtype], shape: [rows, dim], length: rows * dim * eb });
    return specs;
  }

  private static createInFile(
    file: string,
    rows: number,
    dim: number,
    dtype: StorageDtype,
    optimizer: ResolvedOptimizer,
    opts: ValueStoreOptions,
  ): ValueStore {
    if (typeof file !== 'string' || file === '') throw new ConfigError('file', 'must be a file path');
    const native = nativeAddon();
    if (!native) throw new BackendError(`file: a file-backed store needs the native addon (${nativeAddonReason()}); omit 'file' and save() instead`);
    const store0 = { rows, dim, dtype, optimizer, nSteps: 0, nRowUpdates: 0 };
    const specs = ValueStore.layout(optimizer, rows, dim, dtype);
    const headerLength = createStoreFile(file, ValueStore.metadataOf(store0), specs);
    const store = ValueStore.mapStore(file, headerLength, specs, rows, dim, dtype, optimizer, opts.impl, opts.deferred ?? false);
    store.initialise(opts.init ?? { kind: 'normal', std: dim ** -0.5, seed: 0 });
    return store;
  }

  /** A store over a shared mapping of every tensor of `file` (specs in file order). */
  private static mapStore(
    file: string,
    headerLength: number,
    specs: TensorSpec[],
    rows: number,
    dim: number,
    dtype: StorageDtype,
    optimizer: ResolvedOptimizer,
    impl: KernelImpl | undefined,
    deferred: boolean,
  ): ValueStore {
    const native = nativeAddon()!;
    const buffers: ArrayBuffer[] = [];
    const views: Record<string, ArrayBuffer> = {};
    try {
      let off = headerLength;
      for (const t of specs) {
        if (t.name !== '_skew') {
          views[t.name] = native.mapFile(file, off, t.length, true);
          buffers.push(views[t.name]!);
        }
        off += t.length;
      }
      const state: OptimizerStateArrays = { accum: null, moments: null, steps: null };
      if (views.adagrad_accum) state.accum = new Float32Array(views.adagrad_accum);
      if (views.adam_moments) state.moments = new Float32Array(views.adam_moments);
      if (views.adam_m) {
        if (optimizer.momentDtype === 'bfloat16') state.moments16 = new Uint16Array(views.adam_m);
        else state.moments = new Float32Array(views.adam_m);
      }
      if (views.adam_row_v) state.rowV = new Float32Array(views.adam_row_v);
      if (views.adam_step) state.steps = new Int32Array(views.adam_step);
      const values: Storage = dtype === 'float32' ? new Float32Array(views.values!) : new Uint16Array(views.values!);
      const store = new ValueStore({ rows, dim, dtype, optimizer, impl, values, state, buffers, mapped: true, deferred });
      store.backing = { file, headerLength };
      return store;
    } catch (e) {
      for (const b of buffers) native.release(b);
      throw e;
    }
  }

  private static allocState(opt: ResolvedOptimizer, rows: number, dim: number, buffers: ArrayBuffer[]): OptimizerStateArrays {
    const state: OptimizerStateArrays = { accum: null, moments: null, steps: null };
    const f32 = (u8: Uint8Array) => new Float32Array(u8.buffer, u8.byteOffset, u8.length / 4);
    const kind = opt.kind;
    if (kind === 'adagrad') state.accum = f32(skewed(rows * dim * 4, buffers));
    else if (kind === 'adam') {
      if (opt.secondMoment === 'row') {
        if (opt.momentDtype === 'bfloat16') {
          const u8 = skewed(rows * dim * 2, buffers);
          state.moments16 = new Uint16Array(u8.buffer, u8.byteOffset, u8.length / 2);
        } else state.moments = f32(skewed(rows * dim * 4, buffers));
        const rv = allocate(rows * 4);
        buffers.push(rv);
        state.rowV = new Float32Array(rv);
      } else state.moments = f32(skewed(rows * 2 * dim * 4, buffers));
      const s = allocate(rows * 4);
      buffers.push(s);
      state.steps = new Int32Array(s);
    }
    return state;
  }

  private initialise(init: InitConfig): void {
    if (init === 'zeros') return; // fresh memory is zero
    if (init === null || typeof init !== 'object' || init.kind !== 'normal') {
      throw new ConfigError('init', `must be 'zeros' or { kind: 'normal', std, seed? }, got ${JSON.stringify(init)}`);
    }
    if (typeof init.std !== 'number' || !Number.isFinite(init.std) || init.std < 0) {
      throw new ConfigError('init.std', `must be a finite number ≥ 0, got ${String(init.std)}`);
    }
    const rand = mulberry32(init.seed ?? 0);
    const v = this.values!;
    const conv = this.dtype === 'bfloat16' ? f32ToBf16 : this.dtype === 'float16' ? f32ToF16 : null;
    const n = v.length;
    for (let i = 0; i < n; i += 2) {
      // Box–Muller: two normals per pair of uniforms
      const u1 = 1 - rand();
      const u2 = rand();
      const rad = init.std * Math.sqrt(-2 * Math.log(u1));
      const a = rad * Math.cos(2 * Math.PI * u2);
      const b = rad * Math.sin(2 * Math.PI * u2);
      v[i] = conv ? conv(a) : a;
      if (i + 1 < n) v[i + 1] = conv ? conv(b) : b;
    }
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
    if (out !== undefined && (!(out instanceof Float32Array) || out.length !== B * this.dim)) {
      throw new ShapeError('out', `must be a Float32Array [B=${B}, dv=${this.dim}] = ${B * this.dim} values`);
    }
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
    const lr = this.resolveLr(opts.lr);
    const gw = new Float32Array(ids.length);
    const deferred = opts.deferred ?? this.deferred;
    if (deferred) {
      bagBackward(this.native, values, DTYPE_CODE[this.dtype], this.dim, ids, weights, gOut, bagSize, gw, null, this.state);
      if (ids.length > 0) this.pending.push({ ids: ids.slice(), weights: weights.slice(), gOut: gOut.slice(), bagSize });
      return gw;
    }
    const params = packOptimizer(this.optimizer, lr);
    const touched = bagBackward(this.native, values, DTYPE_CODE[this.dtype], this.dim, ids, weights, gOut, bagSize, gw, params, this.state);
    this.recordStep(touched);
    return gw;
  }

  /** Apply the queued gradients (deferred mode) as ONE optimizer update. Returns touched rows. */
  step(opts: { lr?: number } = {}): number {
    const values = this.live();
    const lr = this.resolveLr(opts.lr);
    if (this.pending.length === 0) return 0;
    // concatenate the queued batches, padding bags to the largest K with id −1
    const K = Math.max(...this.pending.map((p) => p.bagSize));
    const B = this.pending.reduce((s, p) => s + p.gOut.length / this.dim, 0);
    const ids = new Int32Array(B * K).fill(-1); // [ΣB, K]
    const weights = new Float32Array(B * K);
    const gOut = new Float32Array(B * this.dim); // [ΣB, dv]
    let b0 = 0;
    for (const p of this.pending) {
      const pb = p.gOut.length / this.dim;
      for (let b = 0; b < pb; b++) {
        ids.set(p.ids.subarray(b * p.bagSize, (b + 1) * p.bagSize), (b0 + b) * K);
        weights.set(p.weights.subarray(b * p.bagSize, (b + 1) * p.bagSize), (b0 + b) * K);
      }
      gOut.set(p.gOut, b0 * this.dim);
      b0 += pb;
    }
    this.pending = [];
    const params = packOptimizer(this.optimizer, lr);
    const touched = bagBackward(this.native, values, DTYPE_CODE[this.dtype], this.dim, ids, weights, gOut, K, null, params, this.state);
    this.recordStep(touched);
    return touched;
  }

  private resolveLr(lr: number | undefined): number {
    if (lr === undefined) return this.optimizer.lr;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new ConfigError('lr', `must be a finite number ≥ 0, got ${String(lr)}`);
    return lr;
  }

  private recordStep(touched: number): void {
    this.nSteps++;
    this.lastTouched = touched;
    this.nRowUpdates += touched;
  }

  /** Rows as float32 [n, dv]; id −1 gives a zero row. */
  readRows(ids: Int32Array): Float32Array {
    const values = this.live();
    this.checkRowIds(ids);
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
    this.checkRowIds(ids, false);
    if (!(rows instanceof Float32Array) || rows.length !== ids.length * this.dim) {
      throw new ShapeError('rows', `expected a Float32Array [n=${ids.length}, dv=${this.dim}] = ${ids.length * this.dim} values`);
    }
    const row = new Float64Array(this.dim);
    for (let i = 0; i < ids.length; i++) {
      for (let c = 0; c < this.dim; c++) row[c] = rows[i * this.dim + c]!;
      writeRow(values, DTYPE_CODE[this.dtype], this.dim, ids[i]!, row);
    }
  }

  private checkRowIds(ids: Int32Array, allowPadding = true): void {
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array of row ids');
    const lo = allowPadding ? -1 : 0;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < lo || ids[i]! >= this.rows) {
        throw new ValueError('ids', `element ${i} is ${ids[i]}; ids must be in [0, ${this.rows})${allowPadding ? ' or -1' : ''}`);
      }
    }
  }

  stats(): ValueStoreStats {
    const values = this.live();
    const s = this.state;
    const stateBytes =
      (s.accum?.byteLength ?? 0) +
      (s.moments?.byteLength ?? 0) +
      (s.steps?.byteLength ?? 0) +
      (s.moments16?.byteLength ?? 0) +
      (s.rowV?.byteLength ?? 0);
    return {
      rows: this.rows,
      dim: this.dim,
      dtype: this.dtype,
      impl: this.impl,
      valueBytes: values.byteLength,
      stateBytes,
      bytes: values.byteLength + stateBytes,
      steps: this.nSteps,
      touchedRows: this.lastTouched,
      rowUpdates: this.nRowUpdates,
      pending: this.pending.length,
      mapped: this.mapped,
      file: this.backing?.file ?? null,
    };
  }

  private hash(): (b: Uint8Array) => number {
    const a = nativeAddon();
    return a ? (b) => a.checksum(b, 0x811c9dc5) : (b) => hashBytes(b);
  }

  private static metadataOf(st: {
    rows: number;
    dim: number;
    dtype: StorageDtype;
    optimizer: ResolvedOptimizer;
    nSteps: number;
    nRowUpdates: number;
  }): Record<string, string> {
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

  private metadata(): Record<string, string> {
    const { rows, dim, dtype, optimizer, nSteps, nRowUpdates } = this;
    return ValueStore.metadataOf({ rows, dim, dtype, optimizer, nSteps, nRowUpdates });
  }

  /** The store's tensors with their bytes, in file order. */
  private tensorEntries(): (TensorEntry & TensorSpec)[] {
    const values = this.live();
    const s = this.state;
    const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const arrays: Record<string, Uint8Array> = { values: bytes(values), _skew: new Uint8Array(STATE_SKEW) };
    if (s.accum) arrays.adagrad_accum = bytes(s.accum);
    if (s.moments) arrays[this.optimizer.secondMoment === 'row' ? 'adam_m' : 'adam_moments'] = bytes(s.moments);
    if (s.moments16) arrays.adam_m = bytes(s.moments16);
    if (s.rowV) arrays.adam_row_v = bytes(s.rowV);
    if (s.steps) arrays.adam_step = bytes(s.steps);
    return ValueStore.layout(this.optimizer, this.rows, this.dim, this.dtype).map((t) => ({ ...t, bytes: arrays[t.name]! }));
  }

  /** Save table + optimizer state as a safetensors file, atomically (see store-file.ts). */
  save(file: string): void {
    this.live();
    if (typeof file !== 'string' || file === '') throw new ConfigError('file', 'must be a file path');
    if (this.backing && path.resolve(file) === path.resolve(this.backing.file)) {
      this.flush();
      return;
    }
    writeStoreFile(file, this.metadata(), this.tensorEntries(), this.hash());
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
    const entries = this.tensorEntries();
    rewriteHeader(
      this.backing.file,
      this.backing.headerLength,
      this.metadata(),
      entries,
      entries.map((e) => e.bytes),
      this.hash(),
    );
    return true;
  }

  /** Load a file written by save(); refuses corrupt, truncated or foreign files with a ValueError. */
  static load(file: string, opts: LoadOptions = {}): ValueStore {
    const parsed = parseStoreFile(file);
    const md = parsed.metadata;
    const rows = checkInt('file rows', Number(md.rows), 1, 2 ** 31 - 1);
    const dim = checkInt('file dim', Number(md.dim), 1, 65536);
    const dtype = md.dtype as StorageDtype;
    if (!DTYPES.includes(dtype)) throw new ValueError('file', `${file}: unknown dtype '${md.dtype}'`);
    let saved: OptimizerConfig;
    try {
      saved = JSON.parse(md.optimizer ?? '');
    } catch {
      throw new ValueError('file', `${file}: metadata.optimizer is not JSON`);
    }
    const optimizer = resolveOptimizer(opts.optimizer ?? saved);
    if (optimizer.kind !== saved.kind) {
      throw new ConfigError('optimizer.kind', `the file holds ${saved.kind} state; a ${optimizer.kind} optimizer cannot use it`);
    }
    if (optimizer.kind === 'adam') {
      const sm = saved.secondMoment ?? 'element';
      const md2 = saved.momentDtype ?? 'float32';
      if (optimizer.secondMoment !== sm) {
        throw new ConfigError('optimizer.secondMoment', `the file holds Adam state with secondMoment '${sm}'; pass the same (or omit the optimizer)`);
      }
      if (optimizer.momentDtype !== md2) {
        throw new ConfigError('optimizer.momentDtype', `the file holds Adam m as ${md2}; pass the same (or omit the optimizer)`);
      }
    }
    chooseImpl(opts.impl);
    const native = nativeAddon();
    if (opts.mmap && !native) throw new BackendError(`mmap needs the native addon (${nativeAddonReason()}); load without { mmap: true }`);
    const verify = opts.verify ?? true;
    const hash = native ? (b: Uint8Array) => native.checksum(b, 0x811c9dc5) : (b: Uint8Array) => hashBytes(b);
    const checksums = JSON.parse(md.checksums ?? '{}') as Record<string, string>;
    if (opts.mmap === 'shared') {
      const specs: TensorSpec[] = Object.entries(parsed.tensors)
        .sort((a, b) => a[1].offset - b[1].offset)
        .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, length: t.length }));
      const want = ValueStore.layout(optimizer, rows, dim, dtype);
      if (JSON.stringify(specs) !== JSON.stringify(want)) {
        throw new ValueError('file', `${file}: tensor layout differs from this version's; load without mmap: 'shared' and save() again`);
      }
      const store = ValueStore.mapStore(file, parsed.headerLength, specs, rows, dim, dtype, optimizer, opts.impl, opts.deferred ?? false);
      if (verify) {
        for (const e of store.tensorEntries()) if (e.name !== '_skew') checkTensorHash(file, e.name, e.bytes, checksums[e.name], hash);
      }
      store.nSteps = Number(md.steps ?? 0) || 0;
      store.nRowUpdates = Number(md.rowUpdates ?? 0) || 0;
      return store;
    }
    const buffers: ArrayBuffer[] = [];
    const take = (name: string, dt: StDtype, shape: number[], skew = false): Uint8Array => {
      const t = parsed.tensors[name];
      if (!t) throw new ValueError('file', `${file}: tensor '${name}' is missing`);
      if (t.dtype !== dt || t.shape.join(',') !== shape.join(',')) {
        throw new ValueError('file', `${file}: tensor '${name}' is ${t.dtype} [${t.shape}], expected ${dt} [${shape}]`);
      }
      let u8: Uint8Array;
      if (opts.mmap) {
        const buf = native!.mapFile(file, t.offset, t.length, false);
        buffers.push(buf);
        u8 = new Uint8Array(buf);
      } else {
        u8 = skew ? skewed(t.length, buffers) : new Uint8Array(allocate(t.length));
        if (!skew) buffers.push(u8.buffer as ArrayBuffer);
        readInto(file, t.offset, u8);
      }
      if (verify) checkTensorHash(file, name, u8, checksums[name], hash);
      return u8;
    };
    const f32 = (u8: Uint8Array) => new Float32Array(u8.buffer, u8.byteOffset, u8.length / 4);
    try {
      const vbuf = take('values', ST_DTYPE[dtype], [rows, dim]).buffer as ArrayBuffer;
      const values: Storage = dtype === 'float32' ? new Float32Array(vbuf) : new Uint16Array(vbuf);
      const state: OptimizerStateArrays = { accum: null, moments: null, steps: null };
      if (optimizer.kind === 'adagrad') state.accum = f32(take('adagrad_accum', 'F32', [rows, dim], true));
      if (optimizer.kind === 'adam' && optimizer.secondMoment === 'row') {
        if (optimizer.momentDtype === 'bfloat16') {
          const u8 = take('adam_m', 'BF16', [rows, dim], true);
          state.moments16 = new Uint16Array(u8.buffer, u8.byteOffset, u8.length / 2);
        } else state.moments = f32(take('adam_m', 'F32', [rows, dim], true));
        const rv = take('adam_row_v', 'F32', [rows]);
        state.rowV = new Float32Array(rv.buffer, rv.byteOffset, rv.length / 4);
        state.steps = new Int32Array(take('adam_step', 'I32', [rows]).buffer as ArrayBuffer);
      } else if (optimizer.kind === 'adam') {
        state.moments = f32(take('adam_moments', 'F32', [rows, 2, dim], true));
        state.steps = new Int32Array(take('adam_step', 'I32', [rows]).buffer as ArrayBuffer);
      }
      const store = new ValueStore({
        rows,
        dim,
        dtype,
        optimizer,
        impl: opts.impl,
        values,
        state,
        buffers,
        mapped: opts.mmap ?? false,
        deferred: opts.deferred ?? false,
      });
      store.nSteps = Number(md.steps ?? 0) || 0;
      store.nRowUpdates = Number(md.rowUpdates ?? 0) || 0;
      return store;
    } catch (e) {
      if (native) for (const b of buffers) native.release(b);
      throw e;
    }
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
    this.state = { accum: null, moments: null, steps: null };
    this.pending = [];
    const a = nativeAddon();
    if (a) for (const b of this.buffers) a.release(b);
    this.buffers.length = 0;
  }
}
