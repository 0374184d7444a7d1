/**
 * CUDA kernels (native/cuda, docs/cuda.md): `CudaValueTable`, a value table in GPU memory that
 * implements the ValueTable contract (value-table.ts) with the same options, validation, deferred
 * queue and store files as ValueStore, and the fused product-key top-k `cudaPkTopK`.
 *
 *   const t = CudaValueTable.create({ rows: N, dim: dv, optimizer: { kind: 'adam', lr: 1e-3 } });
 *   const out = t.forward(ids, w, K);         // [B, dv]
 *   const gw = t.backward(ids, w, gOut, K);   // [B, K]; fused update on the GPU
 *   t.save('values.safetensors');             // ValueStore.load reads it on the CPU
 *
 * What the CUDA kernels do: float32 storage; SGD, Adagrad, Adam (per element, or partial row-wise
 * with float32 or bfloat16 m). Refused with a ConfigError naming the field: `dtype` other than
 * float32, `optimizer.clip`, `optimizer.weightDecay` ≠ 0, `file`, `impl` (CPU kernel choice) and,
 * on load, `mmap`. Options are validated BEFORE the GPU is looked for, so bad options read the
 * same on any machine; only then does a missing GPU throw a BackendError with the reason.
 */
import { ConfigError, DisposedError, ShapeError, checkFinite, checkInt } from '@mnemo/core';
import { type CudaAddon, cudaAddonPath, cudaStatus, loadAddon, native, requireAddon } from './cuda-addon';
import type { CudaStatus } from './cuda-addon';
import { GradientQueue } from './deferred';
import { validateBag } from './embedding-bag';
import { OPT_CODE, type ResolvedOptimizer } from './optimizers';
import { type PkDims, type PkTopKResult, validatePkDims } from './pk-topk';
import {
  type LayoutRow,
  type StateField,
  type StateRow,
  bytesOf,
  emptyState,
  setState,
  stateBytes,
  stateRows,
  storeLayout,
  viewOf,
} from './state-layout';
import { writeStoreFile } from './store-file';
import {
  type LoadOptions,
  type TableConfig,
  type ValueStoreOptions,
  checkDeferred,
  checkLr,
  checkOut,
  checkRowIds,
  checkRowValues,
  fillInit,
  resolveTableOptions,
} from './table-config';
import type { BackwardOptions, StepOptions, ValueTable, ValueTableStats } from './value-table';
import { type TableArrays, metadataOf, readArrays, readStoreHeader, storeHash, tensorEntries } from './value-store-io';

export { cudaAddonPath, cudaStatus, type CudaStatus };

/** Refuse what the CUDA kernels cannot do (see the file header). */
function checkCudaConfig(cfg: TableConfig): void {
  if (cfg.dtype !== 'float32')
    throw new ConfigError('dtype', `CudaValueTable stores float32 only, got ${cfg.dtype}; use a ValueStore for 16-bit tables`);
  checkInt('rows', cfg.rows, 1, 2 ** 31 - 2);
  checkCudaOptimizer(cfg.optimizer);
}

function checkCudaOptimizer(o: ResolvedOptimizer): void {
  if (o.clip) throw new ConfigError('optimizer.clip', 'the CUDA kernels have no gradient clipping; remove it or use a ValueStore');
  if (o.weightDecay !== 0) {
    throw new ConfigError('optimizer.weightDecay', `the CUDA kernels have no weight decay (got ${o.weightDecay}); use 0 or a ValueStore`);
  }
}

function refuse(field: string, value: unknown, why: string): void {
  if (value !== undefined) throw new ConfigError(field, why);
}

/**
 * The addon's device buffers behind each state field. Full Adam's `moments` [N, 2, dv] (m, v per
 * row, the store-file layout) is two device buffers m [N, dv] and v [N, dv] on the GPU.
 */
const DEVICE_STATE: Record<StateField, readonly string[]> = {
  accum: ['accum'],
  moments: ['moment1', 'moment2'],
  m: ['moment1'],
  m16: ['moment1_bf16'],
  rowV: ['row_v'],
  steps: ['steps'],
};

/** (m [N, dv], v [N, dv]) → (m, v) per row [N, 2, dv], or back with `split`. */
function interleave(m: Float32Array, v: Float32Array, mv: Float32Array, dim: number, split: boolean): void {
  const n = m.length / dim;
  for (let r = 0; r < n; r++) {
    const a = r * dim;
    const o = 2 * a;
    if (split) {
      m.set(mv.subarray(o, o + dim), a);
      v.set(mv.subarray(o + dim, o + 2 * dim), a);
    } else {
      mv.set(m.subarray(a, a + dim), o);
      mv.set(v.subarray(a, a + dim), o + dim);
    }
  }
}

const f32 = (u8: Uint8Array) => new Float32Array(u8.buffer, u8.byteOffset, u8.length / 4);

/**
 * A value table V [rows, dim] in GPU memory with its optimizer state (allocated on the GPU at the
 * first update, zeros until then). Implements ValueTable: see value-table.ts for the contract.
 */
export class CudaValueTable implements ValueTable {
  readonly rows: number;
  readonly dim: number;
  readonly dtype = 'float32' as const;
  readonly optimizer: ResolvedOptimizer;
  #handle: object | undefined;
  readonly #layout: LayoutRow[];
  readonly #deferred: boolean;
  readonly #queue: GradientQueue;
  #nSteps = 0;
  #lastTouched = 0;
  #nRowUpdates = 0;

  private constructor(cfg: { rows: number; dim: number; optimizer: ResolvedOptimizer; deferred: boolean }, handle: object) {
    this.rows = cfg.rows;
    this.dim = cfg.dim;
    this.optimizer = cfg.optimizer;
    this.#deferred = cfg.deferred;
    this.#layout = storeLayout(cfg.optimizer, cfg.rows, cfg.dim, 'float32');
    this.#queue = new GradientQueue(cfg.dim);
    this.#handle = handle;
  }

  /** A new table (ValueStore's options; see the file header for what is refused). */
  static create(opts: ValueStoreOptions): CudaValueTable {
    const cfg = resolveTableOptions(opts);
    checkCudaConfig(cfg);
    refuse('impl', opts.impl, 'selects CPU kernels; a CudaValueTable always runs the CUDA kernels, remove it');
    refuse('file', opts.file, 'file-backed tables are CPU only (ValueStore); create the table, then save() it');
    const addon = requireAddon();
    const values = new Float32Array(cfg.rows * cfg.dim); // [N, dv]
    fillInit(values, 'float32', cfg.init);
    const handle = native('table create', () => addon.tableCreate(values, cfg.rows, cfg.dim));
    return new CudaValueTable(cfg, handle);
  }

  /** Load a store file (written by ValueStore or CudaValueTable save()) onto the GPU. */
  static load(file: string, opts: LoadOptions = {}): CudaValueTable {
    const h = readStoreHeader(file, opts.optimizer);
    if (h.dtype !== 'float32')
      throw new ConfigError('dtype', `${file} holds ${h.dtype} values; CudaValueTable stores float32 only (load it with ValueStore.load)`);
    checkInt('rows', h.rows, 1, 2 ** 31 - 2);
    checkCudaOptimizer(h.optimizer);
    refuse('mmap', opts.mmap, 'memory-mapped tables are CPU only (ValueStore.load); remove it');
    refuse('impl', opts.impl, 'selects CPU kernels; a CudaValueTable always runs the CUDA kernels, remove it');
    const deferred = checkDeferred(opts.deferred);
    const addon = requireAddon();
    const layout = storeLayout(h.optimizer, h.rows, h.dim, 'float32');
    const arrays = readArrays(file, h, layout, { verify: opts.verify ?? true, mapped: false }, (r) => new Uint8Array(r.bytes));
    const handle = native('table create', () => addon.tableCreate(arrays.values as Float32Array, h.rows, h.dim));
    const table = new CudaValueTable({ rows: h.rows, dim: h.dim, optimizer: h.optimizer, deferred }, handle);
    try {
      for (const r of stateRows(layout)) table.#uploadState(addon, handle, r, arrays);
    } catch (e) {
      table.dispose();
      throw e;
    }
    table.#nSteps = h.steps;
    table.#nRowUpdates = h.rowUpdates;
    return table;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  #live(): { addon: CudaAddon; handle: object } {
    if (this.#handle === undefined) throw new DisposedError('CudaValueTable: used after dispose()');
    return { addon: requireAddon(), handle: this.#handle };
  }

  /** out[b] = Σ_j weights[b, j] · V[ids[b, j]]: ids, weights [B, K] → out [B, dv] (see ValueTable). */
  forward(ids: Int32Array, weights: Float32Array, bagSize: number, batch?: number, out?: Float32Array): Float32Array {
    const { addon, handle } = this.#live();
    const B = validateBag(this.rows, this.dim, ids, weights, bagSize, batch);
    checkOut(out, B, this.dim);
    checkPositions(ids);
    const result = native('embedding-bag forward', () => addon.tableForward(handle, ids, weights, B, bagSize)); // [B, dv]
    if (out === undefined) return result;
    out.set(result);
    return out;
  }

  /**
   * gw[b, j] = <gOut[b], V[ids[b, j]]> (V before the update; 0 for padding) → [B, K], and in the
   * same kernel gV[r] = Σ_{ids[b,j] = r} weights[b, j] · gOut[b]; V[r] ← optimizer(V[r], gV[r]).
   * Adam is lazy: moments and the step count t of bias correction are per row and advance only
   * when the row is touched. In deferred mode the batch is queued for step() instead.
   */
  backward(ids: Int32Array, weights: Float32Array, gOut: Float32Array, bagSize: number, opts: BackwardOptions = {}): Float32Array {
    const { addon, handle } = this.#live();
    const B = validateBag(this.rows, this.dim, ids, weights, bagSize, undefined, gOut);
    const lr = checkLr(opts.lr, this.optimizer.lr);
    checkPositions(ids);
    if (opts.deferred ?? this.#deferred) {
      // gw only: the kernel always updates, so run it as SGD with lr 0 (V − 0·g = V, state untouched)
      const r = native('embedding-bag backward', () =>
        addon.tableBackwardStep(handle, ids, weights, gOut, B, bagSize, OPT_CODE.sgd, 0, 0, 0, 0, 0, 0),
      );
      this.#queue.push(ids, weights, gOut, bagSize);
      return r.gradWeights;
    }
    return this.#update(addon, handle, ids, weights, gOut, B, bagSize, lr).gradWeights;
  }

  /** Apply the queued batches (deferred mode) as ONE optimizer update. Returns touched rows. */
  step(opts: StepOptions = {}): number {
    const { addon, handle } = this.#live();
    const lr = checkLr(opts.lr, this.optimizer.lr);
    const q = this.#queue.take(); // [ΣB, K] bags, padded with −1
    if (q === null) return 0;
    return this.#update(addon, handle, q.ids, q.weights, q.gOut, q.batch, q.bagSize, lr).touchedRows;
  }

  /** The fused kernel with this table's optimizer: gw [B, K] and the rows it touched. */
  #update(addon: CudaAddon, handle: object, ids: Int32Array, w: Float32Array, gOut: Float32Array, B: number, K: number, lr: number) {
    const o = this.optimizer;
    const rowWise = o.secondMoment === 'row' ? 1 : 0;
    const bf16 = o.momentDtype === 'bfloat16' ? 1 : 0;
    const r = native('embedding-bag backward step', () =>
      addon.tableBackwardStep(handle, ids, w, gOut, B, K, OPT_CODE[o.kind], lr, o.beta1, o.beta2, o.eps, rowWise, bf16),
    );
    this.#nSteps++;
    this.#lastTouched = r.touchedRows;
    this.#nRowUpdates += r.touchedRows;
    return r;
  }

  /** Rows as float32 [n, dv]; id −1 gives a zero row. (Copies the whole table to the host.) */
  readRows(ids: Int32Array): Float32Array {
    this.#live();
    checkRowIds(this.rows, ids);
    const all = this.download();
    const out = new Float32Array(ids.length * this.dim);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= 0) out.set(all.subarray(ids[i]! * this.dim, (ids[i]! + 1) * this.dim), i * this.dim);
    }
    return out;
  }

  /** Overwrite rows (float32 [n, dv]); optimizer state is kept. (Round-trips the whole table.) */
  writeRows(ids: Int32Array, rows: Float32Array): void {
    this.#live();
    checkRowIds(this.rows, ids, false);
    checkRowValues(rows, ids.length, this.dim);
    const all = this.download();
    for (let i = 0; i < ids.length; i++) all.set(rows.subarray(i * this.dim, (i + 1) * this.dim), ids[i]! * this.dim);
    this.upload(all);
  }

  /** Replace the whole table [rows, dim] (optimizer state is kept). */
  upload(values: Float32Array): void {
    const { addon, handle } = this.#live();
    if (!(values instanceof Float32Array) || values.length !== this.rows * this.dim) {
      throw new ShapeError('values', `expected a Float32Array [rows=${this.rows}, dim=${this.dim}] = ${this.rows * this.dim} values`);
    }
    native('table upload', () => addon.tableUpload(handle, values));
  }

  /** Copy the whole table [rows, dim] to the host. */
  download(): Float32Array {
    const { addon, handle } = this.#live();
    return native('table download', () => addon.tableDownload(handle));
  }

  /** stateBytes: the optimizer state's size (allocated on the GPU at the first update). */
  stats(): ValueTableStats {
    this.#live();
    const valueBytes = this.rows * this.dim * 4;
    const state = stateBytes(this.#layout);
    return {
      rows: this.rows,
      dim: this.dim,
      dtype: 'float32',
      valueBytes,
      stateBytes: state,
      bytes: valueBytes + state,
      steps: this.#nSteps,
      touchedRows: this.#lastTouched,
      rowUpdates: this.#nRowUpdates,
      pending: this.#queue.length,
    };
  }

  /** Table + optimizer state as a store file (the ValueStore format), atomically. */
  save(file: string): void {
    const { addon, handle } = this.#live();
    if (typeof file !== 'string' || file === '') throw new ConfigError('file', 'must be a file path');
    const arrays: TableArrays = { values: this.download(), state: emptyState() };
    for (const r of stateRows(this.#layout)) setState(arrays.state, r, viewOf(r, this.#downloadState(addon, handle, r)));
    const { rows, dim, dtype, optimizer } = this;
    const meta = metadataOf({ rows, dim, dtype, optimizer, nSteps: this.#nSteps, nRowUpdates: this.#nRowUpdates });
    writeStoreFile(file, meta, tensorEntries(this.#layout, arrays), storeHash());
  }

  /** The bytes of a state row in the store-file layout (zeros while the GPU has not allocated it). */
  #downloadState(addon: CudaAddon, handle: object, r: StateRow): Uint8Array {
    const get = (name: string) => native('state download', () => addon.tableStateDownload(handle, name));
    const out = new Uint8Array(r.bytes);
    const [a, b] = DEVICE_STATE[r.field].map(get);
    if (r.field === 'moments') {
      if (a || b) {
        const half = r.bytes / 2;
        interleave(f32(a ?? new Uint8Array(half)), f32(b ?? new Uint8Array(half)), f32(out), this.dim, false);
      }
    } else if (a) out.set(a);
    return out;
  }

  #uploadState(addon: CudaAddon, handle: object, r: StateRow, arrays: TableArrays): void {
    const src = bytesOf(arrays.state[r.field]!);
    const put = (name: string, bytes: Uint8Array) => native('state upload', () => addon.tableStateUpload(handle, name, bytes));
    const names = DEVICE_STATE[r.field];
    if (r.field !== 'moments') {
      put(names[0]!, src);
      return;
    }
    const m = new Float32Array(this.rows * this.dim);
    const v = new Float32Array(this.rows * this.dim);
    interleave(m, v, f32(src), this.dim, true);
    put(names[0]!, bytesOf(m));
    put(names[1]!, bytesOf(v));
  }

  /** Free the GPU memory now (also freed when the object is garbage collected). Idempotent. */
  dispose(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    this.#queue.clear();
    const { addon } = loadAddon();
    if (addon) native('table free', () => addon.tableFree(handle));
  }
}

/** The kernels index positions with int32. */
function checkPositions(ids: Int32Array): void {
  if (ids.length > 2 ** 31 - 2) throw new ShapeError('ids', `at most 2^31 - 2 positions per call, got ${ids.length}`);
}

/**
 * Product-key top-k on the GPU; same contract as `productKeyTopK` (queries [B, H, dk], subkeys
 * [H, 2, n, dk/2] → scores, ids [B, H, k], descending, ties → lower slot id). Scores are
 * accumulated in fp32 (the TS kernel uses float64), so near-ties may order differently.
 */
export function cudaPkTopK(queries: Float32Array, subkeys: Float32Array, dims: PkDims): PkTopKResult {
  validatePkDims(dims);
  const { batch, heads, n, dk, k } = dims;
  if (!(queries instanceof Float32Array)) throw new ShapeError('queries', 'must be a Float32Array');
  if (!(subkeys instanceof Float32Array)) throw new ShapeError('subkeys', 'must be a Float32Array');
  if (queries.length !== batch * heads * dk) {
    throw new ShapeError('queries', `expected [B=${batch}, H=${heads}, dk=${dk}] = ${batch * heads * dk} values, got ${queries.length}`);
  }
  if (subkeys.length !== heads * n * dk) {
    throw new ShapeError('subkeys', `expected [H=${heads}, 2, n=${n}, dk/2=${dk / 2}] = ${heads * n * dk} values, got ${subkeys.length}`);
  }
  checkFinite('queries', queries);
  checkFinite('subkeys', subkeys);
  const addon = requireAddon();
  return native('product-key top-k', () => addon.pkTopK(queries, subkeys, batch, heads, n, dk, k));
}
