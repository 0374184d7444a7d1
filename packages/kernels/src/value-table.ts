/**
 * ValueTable: the contract every value table implements — `ValueStore` (CPU memory or a mapped
 * file), `CudaValueTable` (GPU memory) and, later, a table sharded across processes — so memory
 * layers and the tfjs op (`embeddingBag`) take any of them.
 *
 * Shapes. The table V is [N = rows, dv = dim]. A call reads B bags of K = bagSize positions:
 *   ids      Int32Array   [B, K]  row ids in [0, N), or −1 = padding (reads nothing, gets gw 0)
 *   weights  Float32Array [B, K]  finite
 *   gOut     Float32Array [B, dv] finite: dL/dout
 *   forward(ids, weights, K, B?, out?) → out [B, dv], out[b] = Σ_j weights[b,j] · V[ids[b,j]]
 *     (B is needed only when K = 0: then every bag is empty and out is zeros; `out` may be a
 *     caller-owned buffer of B·dv values, which is then returned)
 *   backward(ids, weights, gOut, K, opts?) → gw [B, K], gw[b,j] = <gOut[b], V[ids[b,j]]> where V is
 *     the table BEFORE this call's update; then every touched row r is updated once from
 *     gV[r] = Σ_{(b,j): ids[b,j] = r} weights[b,j] · gOut[b] (optimizers.ts; never stored).
 *   readRows(ids [n]) → float32 [n, dv] (id −1 gives a zero row); writeRows(ids [n], rows [n, dv])
 *     overwrites rows (no padding ids; optimizer state is kept).
 *
 * Fused vs deferred. By default backward() applies the optimizer update to the touched rows in
 * the same pass (fused). In deferred mode (the table's `deferred` option, or `{ deferred: true }`
 * per call) backward() only returns gw and queues a copy of the batch; step() then applies ONE
 * update from the concatenation of every queued batch (bags padded to the largest K with −1) and
 * returns the number of distinct rows it touched (0 when nothing was queued). `lr` per call
 * overrides the optimizer's learning rate (a schedule). stats().steps counts updates applied.
 *
 * Errors name the field: ShapeError (wrong type or length), ValueError (id out of range, NaN/Inf),
 * ConfigError (options, lr), DisposedError (any use after dispose(); dispose() is idempotent),
 * BackendError (the backend cannot run: no addon, no GPU, a device or worker failure). Inputs are
 * validated before anything is changed. save(file) writes the store-file format of store-file.ts
 * (one format for every table: a table trained on a GPU loads with `ValueStore.load`).
 *
 * Every method is SYNCHRONOUS. The tfjs op calls forward() and backward() from inside
 * `tf.customGrad`, whose forward and gradient functions cannot await; a table that returned
 * promises could not back a tfjs layer.
 *
 * Remote tables (decision). A table whose rows live in other workers or processes still
 * implements this interface synchronously: each call blocks the calling thread until the remote
 * part has answered. Two ways, both with a timeout that throws a `BackendError` naming the shard
 * and the call (never a silent hang): (1) worker threads in one process share the rows and a
 * request/response channel in SharedArrayBuffers; the caller writes the request, `Atomics.notify`s
 * and `Atomics.wait`s on the channel's sequence word with the timeout; (2) across processes or
 * machines an N-API addon runs blocking MPI collectives (e.g. an all-to-all of ids, then of rows
 * and gradients) on the calling thread, with the timeout enforced by the addon. No
 * Promise-returning variant of this interface exists.
 */
import type { StorageDtype } from './table-config';

export interface BackwardOptions {
  /** learning rate for this update (default: the optimizer's lr) */
  lr?: number;
  /** queue instead of updating (default: the table's mode) */
  deferred?: boolean;
}

export interface StepOptions {
  /** learning rate for this update (default: the optimizer's lr) */
  lr?: number;
}

/** What every table reports; `ValueStore.stats()` adds impl, mapped and file. */
export interface ValueTableStats {
  rows: number;
  dim: number;
  dtype: StorageDtype;
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
}

export interface ValueTable {
  /** N */
  readonly rows: number;
  /** dv */
  readonly dim: number;
  /** true after dispose() */
  readonly disposed: boolean;
  /** out [B, dv] from ids, weights [B, K]; see the file header. */
  forward(ids: Int32Array, weights: Float32Array, bagSize: number, batch?: number, out?: Float32Array): Float32Array;
  /** gw [B, K] from the table before the update; fused update, or queued in deferred mode. */
  backward(ids: Int32Array, weights: Float32Array, gOut: Float32Array, bagSize: number, opts?: BackwardOptions): Float32Array;
  /** Apply the queued batches as one update; returns the rows touched. */
  step(opts?: StepOptions): number;
  /** float32 [n, dv]; id −1 gives a zero row. */
  readRows(ids: Int32Array): Float32Array;
  /** Overwrite rows (float32 [n, dv]); optimizer state is kept. */
  writeRows(ids: Int32Array, rows: Float32Array): void;
  stats(): ValueTableStats;
  /** Table + optimizer state as a store file (store-file.ts), written atomically. */
  save(file: string): void;
  /** Free the memory now; any later use throws DisposedError. Idempotent. */
  dispose(): void;
}
