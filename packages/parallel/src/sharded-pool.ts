/**
 * ShardedPool: a ValuePool (memory-layer's interface) whose table is sharded over a
 * ProcessGroup — by columns (DimShardedTable, the default) or rows (RowShardedTable). The tfjs
 * side is memory-layer's own MemoryPool over the sharded ValueTable, so the bag op, the fused
 * update and the learning-rate schedule are the unsharded code; only the table moves data.
 *
 *   const group = openGroup();                                  // local worker or MPI rank
 *   const pool = ShardedPool.create(group, { rows: N, dim: dv, optimizer: { kind: 'adam', lr: 1e-3 } });
 *   const m = pool.lookup(ids, w);                              // this rank's tokens [B, dv]
 *
 * Every rank calls lookup / backward / readRows / save in the same order (they are collectives).
 * Checkpoints: save(file) writes this rank's shard to `file.shard-<r>-of-<P>` (a kernels store
 * file) and rank 0 then writes the manifest `file.shards.json` (scheme, P, N, dv); load() reads
 * them back at the same P and refuses another P with a CheckpointError saying why.
 */
import fs from 'node:fs';
import { CheckpointError, ConfigError, writeFileAtomic } from '@mnemo/core';
import { type OptimizerConfig, type ValueTable, ValueStore } from '@mnemo/kernels';
import { MemoryPool, type ValuePool } from '@mnemo/memory-layer';
import type * as tf from '@tensorflow/tfjs-core';
import { type CostReport, costModel } from './cost-model';
import { DimShardedTable, type ShardedTableOptions } from './dim-sharded';
import type { ProcessGroup } from './process-group';
import { type PoolManifest, type ShardScheme, manifestFile, readPoolManifest, shardFile } from './manifest';
import { RowShardedTable } from './row-sharded';

export interface ShardedPoolOptions extends ShardedTableOptions {
  /** 'dim' (default), 'row', or 'auto': the cost model's choice for `shape` */
  scheme?: ShardScheme | 'auto';
  /** the lookup shape per rank, for scheme 'auto' */
  shape?: { B: number; H: number; k: number };
}

/** Rank 0's string on every rank (two broadcasts: its length, then its UTF-16 code units as int32). */
function broadcastString(group: ProcessGroup, s: string): string {
  const units = group.rank === 0 ? Int32Array.from({ length: s.length }, (_, i) => s.charCodeAt(i)) : new Int32Array(0);
  const n = group.broadcast(Int32Array.of(units.length), 0)[0]!;
  const got = group.broadcast(group.rank === 0 ? units : new Int32Array(n), 0);
  return String.fromCharCode(...got);
}

export class ShardedPool implements ValuePool {
  readonly scheme: ShardScheme;
  readonly table: DimShardedTable | RowShardedTable;
  /** the cost model's verdict when scheme 'auto' chose */
  readonly cost: CostReport | null;
  private readonly pool: MemoryPool;

  private constructor(
    readonly group: ProcessGroup,
    table: DimShardedTable | RowShardedTable,
    cost: CostReport | null,
  ) {
    this.table = table;
    this.scheme = table instanceof DimShardedTable ? 'dim' : 'row';
    this.cost = cost;
    this.pool = new MemoryPool({ store: table as ValueTable });
  }

  static create(group: ProcessGroup, opts: ShardedPoolOptions): ShardedPool {
    const requested = opts.scheme ?? 'dim';
    if (requested !== 'dim' && requested !== 'row' && requested !== 'auto')
      throw new ConfigError('scheme', `must be 'dim', 'row' or 'auto', got ${String(requested)}`);
    let cost: CostReport | null = null;
    let scheme: ShardScheme = requested === 'auto' ? 'dim' : requested;
    if (requested === 'auto') {
      if (!opts.shape) throw new ConfigError('shape', "scheme 'auto' needs the lookup shape { B, H, k } per rank");
      cost = costModel({ ...opts.shape, dv: opts.dim, P: group.size });
      scheme = cost.choice;
    }
    const table = scheme === 'dim' ? new DimShardedTable(group, opts) : new RowShardedTable(group, opts);
    return new ShardedPool(group, table, cost);
  }

  get rows(): number {
    return this.table.rows;
  }

  get dim(): number {
    return this.table.dim;
  }

  /** This rank's shard (a kernels ValueStore). */
  get shard(): ValueStore {
    return this.table.shard;
  }

  lookup(ids: tf.Tensor2D, weights: tf.Tensor2D): tf.Tensor2D {
    return this.pool.lookup(ids, weights);
  }

  step(): number {
    return this.pool.step();
  }

  readRows(ids: Int32Array): Float32Array {
    return this.pool.readRows(ids);
  }

  setLearningRate(lr: number | undefined): void {
    this.pool.setLearningRate(lr);
  }

  /**
   * Collective: every rank writes its shard, then rank 0 the manifest. The file is RANK 0's (sent
   * to the others first), so a caller that knows the path only on rank 0 (a checkpoint written by
   * rank 0 into its own temp dir) has the other ranks call save('') at the same point.
   */
  save(file: string): void {
    const P = this.group.size;
    if (P > 1) file = broadcastString(this.group, file);
    this.table.save(shardFile(file, this.group.rank, P));
    this.group.barrier(); // every shard is on disk before the manifest names it
    if (this.group.rank === 0) {
      const m: PoolManifest = {
        format: 'mnemo-sharded-pool',
        version: 1,
        scheme: this.scheme,
        P,
        rows: this.rows,
        dim: this.dim,
        shards: Array.from({ length: P }, (_, r) => shardFile(file, r, P).split('/').pop()!),
      };
      writeFileAtomic(manifestFile(file), `${JSON.stringify(m, null, 2)}\n`);
    }
    this.group.barrier();
  }

  /** Load a pool saved by save(file) at the same P (each rank reads its own shard). */
  static load(group: ProcessGroup, file: string, opts: { deferred?: boolean; optimizer?: OptimizerConfig } = {}): ShardedPool {
    const m = readPoolManifest(file);
    const mf = manifestFile(file);
    if (m.P !== group.size) {
      throw new CheckpointError(
        mf,
        `was saved by ${m.P} ranks (${m.scheme} sharding) and this group has ${group.size}: each shard holds ${m.scheme === 'dim' ? `dv/${m.P} columns` : `rows ≡ rank (mod ${m.P})`} with its optimizer state, and re-deal it first with reshardPool(file, ${group.size}) (or reshardCheckpoint for a model checkpoint), or load it with ${m.P} ranks`,
      );
    }
    const shard = ValueStore.load(shardFile(file, group.rank, m.P), opts);
    const table =
      m.scheme === 'dim' ? new DimShardedTable(group, { shard, dim: m.dim }) : new RowShardedTable(group, { shard, rows: m.rows });
    if (table.rows !== m.rows || table.dim !== m.dim) {
      table.dispose();
      throw new CheckpointError(
        shardFile(file, group.rank, m.P),
        `holds a shard of [${table.rows}, ${table.dim}], the manifest says [${m.rows}, ${m.dim}]`,
      );
    }
    return new ShardedPool(group, table, null);
  }

  dispose(): void {
    this.pool.dispose();
  }
}
