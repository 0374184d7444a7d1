/**
 * PoolService: a value pool held by P local worker threads (a `local` ProcessGroup, each rank one
 * shard of a ShardedPool) and read from the calling thread as a plain `ValuePool` — so a process
 * that serves a model (mnemo-serve --memory-parallel P) keeps the dense model where it is and the
 * table split across workers. Inference only: lookups and readRows; no backward, no save.
 *
 *   const svc = await PoolService.start('ckpt/memory/values.safetensors', 2); // plain or sharded file
 *   const m = svc.lookup(ids, w);                                           // [B, dv], as MemoryPool's
 *   svc.dispose();                                                          // the workers exit
 *
 * One call at a time: the caller writes ids and weights into a SharedArrayBuffer and blocks
 * (Atomics.wait) while rank 0 hands them to every rank (broadcast); each rank forwards its
 * ⌈B/P⌉ bags (dim or row sharded table: the collectives of pool-worker's tests), rank 0 gathers
 * the outputs and wakes the caller. Shard files: the pool saved at P ranks is used as is; another
 * P (or an unsharded file) is re-dealt first into a temp dir (reshardPool), removed on dispose.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendError, ConfigError, UsageError, ValueError } from '@mnemo/core';
import type { ValuePool } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { LocalGroup, type LocalRankResult } from './local-launch';
import { type ShardScheme, isShardedPool, readPoolManifest } from './manifest';
import { reshardPool } from './reshard';

/** ctl[0] states */
export const IDLE = 0;
export const REQUEST = 1;
export const DONE = 2;
export const FAILED = 3;
/** ctl[1] ops */
export const OP_LOOKUP = 1;
export const OP_READ = 2;
export const OP_CLOSE = 3;
/** ctl: [state, op, B, K, n, errorLength, ready ranks], then the error message as UTF-16 units from ERR_AT */
export const READY = 6;
export const LOAD_FAILED = 7;
export const ERR_AT = 8;
const ERR_UNITS = 1024;

export interface PoolServiceOptions {
  /** scheme of the shards when the file must be re-dealt (default: the saved one, else dim) */
  scheme?: ShardScheme;
  /** bytes of the request buffer (ids, weights and outputs of one lookup; default 64 MiB) */
  bufferBytes?: number;
  /** ms the caller waits for one call before a BackendError (default 120 000) */
  timeoutMs?: number;
}

export class PoolService implements ValuePool {
  private closed = false;

  private constructor(
    readonly rows: number,
    readonly dim: number,
    readonly P: number,
    private readonly ctl: Int32Array,
    private readonly data: SharedArrayBuffer,
    private readonly done: Promise<LocalRankResult<unknown>[]>,
    private readonly tmp: string | null,
    private readonly timeoutMs: number,
  ) {}

  static async start(file: string, P: number, opts: PoolServiceOptions = {}): Promise<PoolService> {
    if (!Number.isInteger(P) || P < 2)
      throw new ConfigError('--memory-parallel', `must be an integer ≥ 2 to shard the pool, got ${P} (serve without it for one process)`);
    let shards = file;
    let tmp: string | null = null;
    const saved = isShardedPool(file) ? readPoolManifest(file) : null;
    if (!saved || saved.P !== P || (opts.scheme && opts.scheme !== saved.scheme)) {
      // another P, another scheme or an unsharded file: re-deal it for P ranks into a temp dir
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-pool-service-'));
      shards = path.join(tmp, 'values.safetensors');
      try {
        reshardPool(file, P, { out: shards, scheme: opts.scheme ?? saved?.scheme ?? 'dim' });
      } catch (e) {
        fs.rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
    }
    const m = readPoolManifest(shards);
    const bufferBytes = opts.bufferBytes ?? 64 << 20;
    const ctl = new Int32Array(new SharedArrayBuffer(4 * (ERR_AT + ERR_UNITS)));
    const data = new SharedArrayBuffer(bufferBytes);
    const here = fileURLToPath(import.meta.url);
    const worker = here.replace(/[^/\\]*$/, here.endsWith('.ts') ? 'pool-service-worker.ts' : 'pool-service-worker.js');
    // idle ranks wait in a broadcast for the next call: a day, not the default 30 s (a rank that exits still fails the others at once)
    const done = LocalGroup.run(P, worker, { data: { file: shards, ctl: ctl.buffer, data }, timeoutMs: 86_400_000 });
    // every rank counts itself in ctl[READY] once its shard is loaded; a rank that fails exits (event loop free meanwhile)
    let failed: LocalRankResult<unknown> | undefined;
    void done.then((res) => {
      failed = res.find((r) => r.error || r.exitCode !== 0) ?? res[0];
    });
    while (Atomics.load(ctl, READY) < P && !failed && !Atomics.load(ctl, LOAD_FAILED)) await new Promise((r) => setTimeout(r, 10));
    if (failed || Atomics.load(ctl, LOAD_FAILED)) {
      const msg = String.fromCharCode(...ctl.subarray(ERR_AT, ERR_AT + Atomics.load(ctl, 5)));
      // stop the ranks that did load: rank 0 wakes, its broadcast to the failed rank fails, every rank exits
      Atomics.store(ctl, 1, OP_CLOSE);
      Atomics.store(ctl, 0, REQUEST);
      Atomics.notify(ctl, 0);
      await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
      if (msg || !failed?.error) throw new BackendError(`PoolService: a pool worker could not load its shard: ${msg}`);
      throw failed.error;
    }
    return new PoolService(m.rows, m.dim, P, ctl, data, done, tmp, opts.timeoutMs ?? 120_000);
  }

  /** One call to rank 0; blocks until it is done. */
  private call(op: number, B: number, K: number, n: number): void {
    if (this.closed) throw new UsageError('PoolService: used after dispose()');
    const c = this.ctl;
    Atomics.store(c, 1, op);
    Atomics.store(c, 2, B);
    Atomics.store(c, 3, K);
    Atomics.store(c, 4, n);
    Atomics.store(c, 0, REQUEST);
    Atomics.notify(c, 0);
    const deadline = Date.now() + this.timeoutMs;
    while (Atomics.load(c, 0) === REQUEST) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new BackendError(
          `PoolService: the ${this.P} pool workers did not answer within ${this.timeoutMs} ms (a worker failed or is stuck)`,
        );
      Atomics.wait(c, 0, REQUEST, Math.min(left, 1000));
    }
    const state = Atomics.load(c, 0);
    Atomics.store(c, 0, IDLE);
    if (state === FAILED) {
      const len = Atomics.load(c, 5);
      const msg = String.fromCharCode(...c.subarray(ERR_AT, ERR_AT + len));
      throw new BackendError(`PoolService: a pool worker failed: ${msg}`);
    }
  }

  lookup(ids: tf.Tensor2D, weights: tf.Tensor2D): tf.Tensor2D {
    const [B, K] = ids.shape;
    const need = 8 * B * K + 4 * B * this.dim;
    if (need > this.data.byteLength)
      throw new ValueError('bufferBytes', `a lookup of [${B}, ${K}] needs ${need} bytes; start the PoolService with bufferBytes ≥ ${need}`);
    new Int32Array(this.data, 0, B * K).set(ids.dataSync() as Int32Array);
    new Float32Array(this.data, 4 * B * K, B * K).set(weights.dataSync() as Float32Array);
    this.call(OP_LOOKUP, B, K, 0);
    const out = new Float32Array(this.data, 8 * B * K, B * this.dim).slice();
    return tf.tensor2d(out, [B, this.dim]);
  }

  readRows(ids: Int32Array): Float32Array {
    const n = ids.length;
    if (4 * n * (1 + this.dim) > this.data.byteLength)
      throw new ValueError('bufferBytes', `reading ${n} rows needs a larger request buffer`);
    new Int32Array(this.data, 0, n).set(ids);
    this.call(OP_READ, 0, 0, n);
    return new Float32Array(this.data, 4 * n, n * this.dim).slice();
  }

  step(): number {
    return 0; // inference only: nothing is queued
  }

  setLearningRate(_lr: number | undefined): void {}

  save(_file: string): void {
    throw new UsageError('PoolService serves a pool (inference only); it does not save one');
  }

  /** Stop the workers (they exit) and remove the re-dealt shard files. Idempotent. */
  dispose(): void {
    if (this.closed) return;
    try {
      this.call(OP_CLOSE, 0, 0, 0);
    } catch {
      // a failed worker: the others fail with it
    }
    this.closed = true;
    if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Resolves when every worker has exited (after dispose). */
  exited(): Promise<LocalRankResult<unknown>[]> {
    return this.done;
  }
}
