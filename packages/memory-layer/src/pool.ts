/**
 * MemoryPool: the value table V ∈ R^{N × dv} that one or several memory layers read
 * ("Memory+": one pool shared by 3 layers, each with its own keys and projections).
 *
 * V lives in a `@mnemo/kernels` ValueTable (the CPU ValueStore by default; a CudaValueTable or a
 * sharded table the same way), outside tfjs: a lookup reads B·H·k rows, and the
 * backward pass updates only those rows with the pool's own sparse optimizer (default Adam,
 * constant lr 1e-3, as in XLM), never the model's dense optimizer.
 *
 * Layers and models talk to a pool only through `ValuePool` (lookup / step / readRows / save), so
 * a pool sharded across workers along dv (docs/design.md §5) can stand in for this one.
 */
import { type OptimizerConfig, type StorageDtype, type ValueTable, ValueStore, embeddingBag } from '@mnemo/kernels';
import { ConfigError } from '@mnemo/core';
import type * as tf from '@tensorflow/tfjs-core';
import { restrictUpdates } from './sparse-update';

export interface ValuePool {
  readonly rows: number; // N
  readonly dim: number; // dv
  /** m[b] = Σ_j w[b, j] · V[ids[b, j]]; ids [B, K] int32 (−1 = padding), w [B, K] → [B, dv] */
  lookup(ids: tf.Tensor2D, weights: tf.Tensor2D): tf.Tensor2D;
  /** apply queued value updates (deferred mode); returns rows touched (0 in fused mode) */
  step(): number;
  /** value rows as float32 [ids.length, dv] (copies; −1 gives a zero row) */
  readRows(ids: Int32Array): Float32Array;
  /** the learning rate of the next value updates (a schedule); undefined = the optimizer's own */
  setLearningRate(lr: number | undefined): void;
  /** write the values and their optimizer state to `file` (atomically) */
  save(file: string): void;
  dispose(): void;
}

export interface MemoryPoolOptions {
  rows: number; // N = n²
  dim: number; // dv
  /** sparse optimizer of the values; default { kind: 'adam', lr: 1e-3 } */
  optimizer?: OptimizerConfig;
  dtype?: StorageDtype;
  /** default N(0, dv^-0.5) (Berges et al. 2024) */
  initStd?: number;
  seed?: number;
  /**
   * Queue value gradients during backward and update in `step()` (default false: the update is
   * fused into backward). Use deferred mode with gradient accumulation, or when several layers
   * share the pool and every layer's weight gradient must see the pre-step values.
   */
  deferred?: boolean;
}

export class MemoryPool implements ValuePool {
  /** the value table (any ValueTable: CPU store, CUDA table, sharded table) */
  readonly store: ValueTable;
  private lr: number | undefined;
  private restricted: ValueTable | undefined;

  constructor(opts: MemoryPoolOptions | { store: ValueTable }) {
    if ('store' in opts) {
      this.store = opts.store;
      return;
    }
    this.store = ValueStore.create({
      rows: opts.rows,
      dim: opts.dim,
      dtype: opts.dtype,
      optimizer: opts.optimizer ?? { kind: 'adam', lr: 1e-3 },
      init: { kind: 'normal', std: opts.initStd ?? opts.dim ** -0.5, seed: opts.seed ?? 0 },
      deferred: opts.deferred ?? false,
    });
  }

  get rows(): number {
    return this.store.rows;
  }

  get dim(): number {
    return this.store.dim;
  }

  lookup(ids: tf.Tensor2D, weights: tf.Tensor2D): tf.Tensor2D {
    return embeddingBag(this.restricted ?? this.store, ids, weights, this.lr === undefined ? {} : { lr: this.lr });
  }

  step(): number {
    return this.store.stats().pending > 0 ? this.store.step(this.lr === undefined ? {} : { lr: this.lr }) : 0;
  }

  /**
   * Until called again with undefined, backward updates only `rows` (sparse memory finetuning,
   * sparse-update.ts); every other row and its optimizer state stays byte-identical.
   */
  onlyUpdateRows(rows: Int32Array | undefined): void {
    this.restricted = rows === undefined ? undefined : restrictUpdates(this.store, rows);
  }

  setLearningRate(lr: number | undefined): void {
    if (lr !== undefined && !(Number.isFinite(lr) && lr >= 0)) throw new ConfigError('lr', `must be a finite number ≥ 0, got ${lr}`);
    this.lr = lr;
  }

  /** Value rows as a Float32Array [ids.length, dv] (copies). */
  readRows(ids: Int32Array): Float32Array {
    return this.store.readRows(ids);
  }

  save(file: string): void {
    this.store.save(file);
  }

  /** A pool over the CPU ValueStore saved in `file`. */
  static load(file: string, opts: { mmap?: boolean; deferred?: boolean; optimizer?: OptimizerConfig } = {}): MemoryPool {
    return new MemoryPool({ store: ValueStore.load(file, opts) });
  }

  dispose(): void {
    this.store.dispose();
  }
}
