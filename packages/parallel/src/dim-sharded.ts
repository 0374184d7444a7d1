/**
 * DimShardedTable: the value table V [N, dv] split by COLUMNS over a ProcessGroup of P ranks
 * (docs/design.md §5.1). Rank p holds all N rows of columns [p·dv/P, (p+1)·dv/P) — a kernels
 * ValueStore [N, dvl = dv/P] with the same optimizer, so its state is sharded the same way. It
 * implements ValueTable for the rank's own tokens; every rank must make the same calls (SPMD).
 *
 *   forward(ids, w [B, K])                                       (every rank the same B and K)
 *     1  all-gather ids, w               → Gi, Gw [P·B, K]          8·B·K·(P−1) bytes sent
 *     2  local bag over my columns       → [P·B, dvl]
 *     3  all-to-all: block q (rank q's tokens) to rank q; concatenate my tokens' column slices → out [B, dv]
 *   backward(ids, w, gOut [B, dv])
 *     1  all-to-all of gOut column slices → [P·B, dvl] (my columns of every token)
 *     2  local backward: partial gw [P·B, K] over my columns, and the FUSED update of my columns
 *        (every rank touches the same rows: it saw the same gathered ids) — no communication
 *     3  reduce-scatter (sum over ranks) of the partial gw → gw [B, K] of my tokens
 * The gathered ids/weights of a forward are kept for its backward (keyed by the ids array that
 * tfjs' embeddingBag passes to both), so step 1 of the forward is not repeated.
 *
 * Exactness: forward values and per-element updates (sgd, adagrad, Adam, weight decay) are the
 * unsharded arithmetic column by column; gw is a sum of P partial dot products (rounding only).
 * Refused (ConfigError): clip (row and global norms need every column) and Adam with
 * secondMoment 'row' (one second moment per row from all columns) — use RowShardedTable for them.
 *
 * readRows / writeRows are collectives too (all-gather of ids, all-to-all of column slices).
 */
import { ConfigError, DisposedError, ShapeError, checkInt } from '@mnemo/core';
import {
  type BackwardOptions,
  type InitConfig,
  type OptimizerConfig,
  type StepOptions,
  type StorageDtype,
  type ValueTable,
  type ValueTableStats,
  ValueStore,
  resolveOptimizer,
} from '@mnemo/kernels';
import type { ProcessGroup } from './process-group';
import { initColumns } from './shard-init';

export interface ShardedTableOptions {
  rows: number; // N
  dim: number; // dv
  optimizer: OptimizerConfig;
  dtype?: StorageDtype;
  /** default normal(std dv^-0.5, seed 0): the same values as an unsharded ValueStore */
  init?: InitConfig;
  deferred?: boolean;
}

/** What a gathered forward leaves for its backward. */
interface Gathered {
  weights: Float32Array; // the caller's [B, K]
  ids: Int32Array; // [P·B, K]
  w: Float32Array; // [P·B, K]
}

export class DimShardedTable implements ValueTable {
  readonly rows: number;
  readonly dim: number;
  /** dvl = dv / P, the columns of this rank */
  readonly localDim: number;
  /** first column of this rank */
  readonly col0: number;
  /** this rank's columns: a ValueStore [N, dv/P] */
  readonly shard: ValueStore;
  private readonly cache = new WeakMap<Int32Array, Gathered>();

  constructor(
    readonly group: ProcessGroup,
    opts: ShardedTableOptions | { shard: ValueStore; dim: number },
  ) {
    const P = group.size;
    if ('shard' in opts) {
      this.shard = opts.shard;
      this.dim = opts.dim;
    } else {
      this.dim = checkInt('dim', opts.dim, 1, 65536);
      checkInt('rows', opts.rows, 1, 2 ** 31 - 1);
      if (this.dim % P !== 0) {
        throw new ConfigError(
          'dim',
          `dv = ${this.dim} must be a multiple of the group size P = ${P} to shard by columns; pick P dividing dv or use scheme 'row'`,
        );
      }
      checkDimOptimizer(opts.optimizer);
      this.shard = ValueStore.create({
        rows: opts.rows,
        dim: this.dim / P,
        dtype: opts.dtype,
        optimizer: opts.optimizer,
        init: 'zeros',
        deferred: opts.deferred,
      });
      initColumns(
        this.shard,
        this.dim,
        (this.dim / P) * group.rank,
        (this.dim / P) * (group.rank + 1),
        opts.init ?? { kind: 'normal', std: this.dim ** -0.5, seed: 0 },
      );
    }
    this.rows = this.shard.rows;
    this.localDim = this.shard.dim;
    if (this.localDim * P !== this.dim)
      throw new ShapeError('shard', `holds ${this.localDim} columns; P = ${P} shards of dv = ${this.dim} need ${this.dim / P}`);
    this.col0 = this.localDim * group.rank;
  }

  get disposed(): boolean {
    return this.shard.disposed;
  }

  private live(): void {
    if (this.shard.disposed) throw new DisposedError('DimShardedTable: used after dispose()');
  }

  /** All ranks' ids and weights [P·B, K]; checks that every rank has the same B. */
  private gather(ids: Int32Array, weights: Float32Array, K: number): Gathered {
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array [B, K]');
    if (!(weights instanceof Float32Array) || weights.length !== ids.length)
      throw new ShapeError('weights', `must be a Float32Array [B, K] of ${ids.length} values`);
    const g = this.group.allGatherV(ids);
    for (const [q, c] of g.counts.entries()) {
      if (c !== ids.length)
        throw new ShapeError(
          'ids',
          `rank ${q} looks up ${c / K} bags of ${K}, this rank ${ids.length / K}: every rank must pass the same [B, K]`,
        );
    }
    const gathered = { weights, ids: g.data, w: this.group.allGather(weights) };
    this.cache.set(ids, gathered);
    return gathered;
  }

  forward(ids: Int32Array, weights: Float32Array, bagSize: number, batch?: number, out?: Float32Array): Float32Array {
    this.live();
    const P = this.group.size;
    const K = bagSize;
    const B = K > 0 ? ids.length / K : (batch ?? 0);
    const g = this.gather(ids, weights, K);
    const local = this.shard.forward(g.ids, g.w, K, P * B); // [P·B, dvl]
    const recv = this.group.allToAll(local); // block q: rank q's columns of my tokens [B, dvl]
    out ??= new Float32Array(B * this.dim); // [B, dv]
    if (out.length !== B * this.dim) throw new ShapeError('out', `must hold B·dv = ${B * this.dim} values`);
    const dl = this.localDim;
    for (let q = 0; q < P; q++)
      for (let b = 0; b < B; b++) out.set(recv.subarray((q * B + b) * dl, (q * B + b + 1) * dl), b * this.dim + q * dl);
    return out;
  }

  backward(ids: Int32Array, weights: Float32Array, gOut: Float32Array, bagSize: number, opts: BackwardOptions = {}): Float32Array {
    this.live();
    const P = this.group.size;
    const K = bagSize;
    const B = K > 0 ? ids.length / K : gOut instanceof Float32Array ? gOut.length / this.dim : 0;
    if (!(gOut instanceof Float32Array) || gOut.length !== B * this.dim)
      throw new ShapeError('gOut', `must be a Float32Array [B=${B}, dv=${this.dim}]`);
    const cached = this.cache.get(ids);
    const g = cached && cached.weights === weights ? cached : this.gather(ids, weights, K);
    this.cache.delete(ids);
    const dl = this.localDim;
    const send = new Float32Array(B * this.dim); // block q = gOut[:, q's columns] [B, dvl]
    for (let q = 0; q < P; q++)
      for (let b = 0; b < B; b++) send.set(gOut.subarray(b * this.dim + q * dl, b * this.dim + (q + 1) * dl), (q * B + b) * dl);
    const gLocal = this.group.allToAll(send); // [P·B, dvl]: my columns of every rank's tokens
    const partial = this.shard.backward(g.ids, g.w, gLocal, K, opts); // [P·B, K]; my columns updated
    return this.group.reduceScatter(partial); // [B, K]
  }

  step(opts: StepOptions = {}): number {
    this.live();
    return this.shard.step(opts);
  }

  /** Collective: rows [n, dv] of this rank's ids (each rank may ask for different rows). */
  readRows(ids: Int32Array): Float32Array {
    this.live();
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array of row ids');
    const P = this.group.size;
    const dl = this.localDim;
    const all = this.group.allGatherV(ids);
    const local = this.shard.readRows(all.data); // [Σn, dvl]
    const recv = this.group.allToAllV(
      local,
      all.counts.map((c) => c * dl),
    ); // block q: my rows, q's columns [n, dvl]
    const n = ids.length;
    const out = new Float32Array(n * this.dim);
    for (let q = 0; q < P; q++)
      for (let i = 0; i < n; i++) out.set(recv.data.subarray((q * n + i) * dl, (q * n + i + 1) * dl), i * this.dim + q * dl);
    return out;
  }

  /** Collective: overwrite rows (float32 [n, dv]) of this rank's ids. */
  writeRows(ids: Int32Array, rows: Float32Array): void {
    this.live();
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array of row ids');
    if (!(rows instanceof Float32Array) || rows.length !== ids.length * this.dim)
      throw new ShapeError('rows', `expected a Float32Array [n=${ids.length}, dv=${this.dim}]`);
    const P = this.group.size;
    const dl = this.localDim;
    const n = ids.length;
    const all = this.group.allGatherV(ids);
    const send = new Float32Array(n * this.dim); // block q: my rows, q's columns
    for (let q = 0; q < P; q++)
      for (let i = 0; i < n; i++) send.set(rows.subarray(i * this.dim + q * dl, i * this.dim + (q + 1) * dl), (q * n + i) * dl);
    const recv = this.group.allToAllV(
      send,
      Array.from({ length: P }, () => n * dl),
    );
    this.shard.writeRows(all.data, recv.data);
  }

  /** This rank's table: rows N, dim dv; valueBytes/stateBytes/bytes are this rank's shard. */
  stats(): ValueTableStats {
    this.live();
    return { ...this.shard.stats(), rows: this.rows, dim: this.dim };
  }

  /** This rank's shard as a store file ([N, dv/P] with its optimizer state). */
  save(file: string): void {
    this.shard.save(file);
  }

  dispose(): void {
    this.shard.dispose();
  }
}

/** The optimizers whose update of a column needs no other column. */
export function checkDimOptimizer(cfg: OptimizerConfig): void {
  const o = resolveOptimizer(cfg);
  if (o.clip) {
    throw new ConfigError(
      'optimizer.clip',
      `'${o.clip.mode}' clipping needs each row's full-dv gradient norm, which a column shard holds only in part (docs/design.md §5.1); drop clip or use scheme 'row'`,
    );
  }
  if (o.kind === 'adam' && o.secondMoment === 'row') {
    throw new ConfigError(
      'optimizer.secondMoment',
      "'row' (row-wise Adam) keeps one second moment from all dv columns of a row, which a column shard holds only in part; use 'element' or scheme 'row'",
    );
  }
}
