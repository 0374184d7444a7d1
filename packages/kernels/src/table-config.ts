/**
 * Options every value table takes (ValueStore, CudaValueTable) and their validation: one set of
 * field names and messages, so a bad option reads the same whatever table refuses it. Also the
 * initial values (seeded normal or zeros) and the checks of row ids / row arrays used by
 * readRows / writeRows.
 */
import { ConfigError, ShapeError, ValueError, checkInt, mulberry32 } from '@mnemo/core';
import { type OptimizerConfig, type ResolvedOptimizer, resolveOptimizer } from './optimizers';
import type { KernelImpl } from './pk-topk';
import type { Storage } from './ts/embedding-bag';
import { f32ToBf16, f32ToF16 } from './ts/half';

export type StorageDtype = 'float32' | 'bfloat16' | 'float16';
export const STORAGE_DTYPES: readonly StorageDtype[] = ['float32', 'bfloat16', 'float16'];
export type InitConfig = 'zeros' | { kind: 'normal'; std: number; seed?: number };

export interface ValueStoreOptions {
  rows: number; // N
  dim: number; // dv
  /** storage of the table; optimizer state is always float32. Default float32 */
  dtype?: StorageDtype;
  optimizer: OptimizerConfig;
  /** default: normal with std dv^-0.5 (docs/design.md §2.7), seed 0 */
  init?: InitConfig;
  /** kernels: default native when the addon loaded (CPU tables only) */
  impl?: KernelImpl;
  /** queue gradients in backward() and update in step() (default false: fused update) */
  deferred?: boolean;
  /**
   * Keep the table and state in this new file (a shared memory mapping; tables larger than RAM
   * work, the OS pages rows in and out). flush() records checksums; dispose() flushes. Needs the
   * addon (CPU tables only).
   */
  file?: string;
}

export interface LoadOptions {
  /**
   * Map the file instead of reading it (needs the addon; CPU tables only). true: copy-on-write,
   * the file is never modified; 'shared': updates go to the file, flush()/dispose() record its
   * checksums.
   */
  mmap?: boolean | 'shared';
  /** check the per-tensor checksums (reads the whole file). Default true */
  verify?: boolean;
  impl?: KernelImpl;
  deferred?: boolean;
  /** replace the saved optimizer config (same kind only: the state must match) */
  optimizer?: OptimizerConfig;
}

/** Validated, defaulted options. */
export interface TableConfig {
  rows: number;
  dim: number;
  dtype: StorageDtype;
  optimizer: ResolvedOptimizer;
  init: InitConfig;
  deferred: boolean;
}

/** Check and default the options every table shares; throws ConfigError naming the field. */
export function resolveTableOptions(opts: ValueStoreOptions): TableConfig {
  if (opts === null || typeof opts !== 'object') throw new ConfigError('options', 'pass { rows, dim, optimizer }');
  const rows = checkInt('rows', opts.rows, 1, 2 ** 31 - 1);
  const dim = checkInt('dim', opts.dim, 1, 65536);
  const dtype = opts.dtype ?? 'float32';
  if (!STORAGE_DTYPES.includes(dtype)) throw new ConfigError('dtype', `must be one of ${STORAGE_DTYPES.join(', ')}, got ${String(dtype)}`);
  const optimizer = resolveOptimizer(opts.optimizer);
  const init = checkInit(opts.init ?? { kind: 'normal', std: dim ** -0.5, seed: 0 });
  return { rows, dim, dtype, optimizer, init, deferred: checkDeferred(opts.deferred) };
}

export function checkDeferred(deferred: unknown, field = 'deferred'): boolean {
  if (deferred !== undefined && typeof deferred !== 'boolean')
    throw new ConfigError(field, `must be true or false, got ${String(deferred)}`);
  return deferred ?? false;
}

export function checkInit(init: InitConfig): InitConfig {
  if (init === 'zeros') return init;
  if (init === null || typeof init !== 'object' || init.kind !== 'normal') {
    throw new ConfigError('init', `must be 'zeros' or { kind: 'normal', std, seed? }, got ${JSON.stringify(init)}`);
  }
  if (typeof init.std !== 'number' || !Number.isFinite(init.std) || init.std < 0) {
    throw new ConfigError('init.std', `must be a finite number ≥ 0, got ${String(init.std)}`);
  }
  return init;
}

/** Fill fresh (zeroed) storage [N, dv] with the initial values: Box–Muller normals from mulberry32(seed). */
export function fillInit(values: Storage, dtype: StorageDtype, init: InitConfig): void {
  if (init === 'zeros') return; // fresh memory is zero
  const rand = mulberry32(init.seed ?? 0);
  const conv = dtype === 'bfloat16' ? f32ToBf16 : dtype === 'float16' ? f32ToF16 : null;
  const n = values.length;
  for (let i = 0; i < n; i += 2) {
    // Box–Muller: two normals per pair of uniforms
    const u1 = 1 - rand();
    const u2 = rand();
    const rad = init.std * Math.sqrt(-2 * Math.log(u1));
    const a = rad * Math.cos(2 * Math.PI * u2);
    const b = rad * Math.sin(2 * Math.PI * u2);
    values[i] = conv ? conv(a) : a;
    if (i + 1 < n) values[i + 1] = conv ? conv(b) : b;
  }
}

/** A per-call learning rate, or the optimizer's when undefined. */
export function checkLr(lr: number | undefined, dflt: number): number {
  if (lr === undefined) return dflt;
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)
    throw new ConfigError('lr', `must be a finite number ≥ 0, got ${String(lr)}`);
  return lr;
}

/** Row ids of readRows (−1 allowed: a zero row) or writeRows (no padding). */
export function checkRowIds(rows: number, ids: Int32Array, allowPadding = true): void {
  if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array of row ids');
  const lo = allowPadding ? -1 : 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i]! < lo || ids[i]! >= rows) {
      throw new ValueError('ids', `element ${i} is ${ids[i]}; ids must be in [0, ${rows})${allowPadding ? ' or -1' : ''}`);
    }
  }
}

/** writeRows' rows: float32 [n, dv]. */
export function checkRowValues(values: unknown, n: number, dim: number): asserts values is Float32Array {
  if (!(values instanceof Float32Array) || values.length !== n * dim) {
    throw new ShapeError('rows', `expected a Float32Array [n=${n}, dv=${dim}] = ${n * dim} values`);
  }
}

/** forward's optional output buffer [B, dv]. */
export function checkOut(out: Float32Array | undefined, batch: number, dim: number): void {
  if (out !== undefined && (!(out instanceof Float32Array) || out.length !== batch * dim)) {
    throw new ShapeError('out', `must be a Float32Array [B=${batch}, dv=${dim}] = ${batch * dim} values`);
  }
}
