/**
 * CUDA kernels (native/cuda, docs/cuda.md): a value table in GPU memory with embedding-bag
 * forward, backward + fused optimizer step, and the fused product-key top-k.
 *
 * The addon `native/cuda/build/Release/mnemo_cuda.node` is built at install time when `nvcc`
 * is on PATH and loaded lazily, on the first call here. It links cudart statically, so it
 * loads without any CUDA library; `cudaStatus()` then says whether a usable GPU (compute
 * capability ≥ 8.0) is visible. Nothing here throws at import; every entry point other than
 * `cudaStatus()` throws a `BackendError` carrying the reason when CUDA is not available.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendError, ConfigError, DisposedError, ShapeError, ValueError, checkFinite, checkInt } from '@mnemo/core';
import { type PkDims, type PkTopKResult, validatePkDims } from './pk-topk';

export interface CudaStatus {
  /** a GPU the kernels can run on is visible and the addon loaded */
  available: boolean;
  /** the addon file exists and loads */
  built: boolean;
  /** why not available (or which device runs, when available) */
  reason: string;
  /** usable devices (compute capability ≥ 8.0) */
  devices: number;
}

export type CudaOptimizerKind = 'sgd' | 'adagrad' | 'adam';

/** Optimizer applied to the touched value rows inside the backward kernel. */
export interface CudaOptimizerConfig {
  kind: CudaOptimizerKind;
  /** learning rate, ≥ 0 */
  lr: number;
  /** Adam first-moment decay in [0, 1); default 0.9 */
  beta1?: number;
  /** Adam second-moment decay in [0, 1); default 0.999 */
  beta2?: number;
  /** Adagrad / Adam denominator epsilon, > 0; default 1e-8 */
  eps?: number;
}

const OPTIMIZER_CODES: Record<CudaOptimizerKind, number> = { sgd: 0, adagrad: 1, adam: 2 };

/** The addon's exports (native/cuda/addon.cc). */
interface CudaAddon {
  deviceCount(): { count: number; device: number; reason: string };
  tableCreate(values: Float32Array, rows: number, dv: number): object;
  tableUpload(handle: object, values: Float32Array): void;
  tableDownload(handle: object): Float32Array;
  tableFree(handle: object): void;
  tableForward(handle: object, ids: Int32Array, weights: Float32Array, batch: number, bagSize: number): Float32Array;
  tableBackwardStep(
    handle: object,
    ids: Int32Array,
    weights: Float32Array,
    gradOut: Float32Array,
    batch: number,
    bagSize: number,
    kind: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
  ): { gradWeights: Float32Array; touchedRows: number };
  pkTopK(
    queries: Float32Array,
    subkeys: Float32Array,
    batch: number,
    heads: number,
    n: number,
    dk: number,
    k: number,
  ): { scores: Float32Array; ids: Int32Array };
}

/** Where the install step puts the addon (same relative place from src/ and dist/). */
export function cudaAddonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, '..', 'native', 'cuda', 'build', 'Release', 'mnemo_cuda.node');
}

let loaded: { addon?: CudaAddon; status: CudaStatus } | undefined;

function load(): { addon?: CudaAddon; status: CudaStatus } {
  if (loaded) return loaded;
  const file = cudaAddonPath();
  if (!existsSync(file)) {
    loaded = {
      status: {
        available: false,
        built: false,
        devices: 0,
        reason: `CUDA addon not built (${file} is missing: nvcc was not on PATH at install, or its build failed; run \`node native/cuda/build.cjs\` in @mnemo/kernels)`,
      },
    };
    return loaded;
  }
  let addon: CudaAddon;
  try {
    addon = createRequire(import.meta.url)(file) as CudaAddon;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    loaded = { status: { available: false, built: false, devices: 0, reason: `CUDA addon failed to load: ${msg}` } };
    return loaded;
  }
  try {
    const probe = addon.deviceCount();
    const available = probe.count > 0;
    loaded = {
      addon,
      status: {
        available,
        built: true,
        devices: probe.count,
        reason: available ? `CUDA device ${probe.device} (${probe.count} usable)` : probe.reason,
      },
    };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    loaded = { addon, status: { available: false, built: true, devices: 0, reason: `CUDA device query failed: ${msg}` } };
  }
  return loaded;
}

/** Whether the CUDA kernels can run here, and why not. Never throws. */
export function cudaStatus(): CudaStatus {
  try {
    return { ...load().status };
  } catch (err) {
    return { available: false, built: false, devices: 0, reason: `CUDA status check failed: ${String(err)}` };
  }
}

function requireAddon(): CudaAddon {
  const { addon, status } = load();
  if (!addon || !status.available) throw new BackendError(`CUDA kernels are not available: ${status.reason}`);
  return addon;
}

/** Run an addon call, turning its plain Errors into BackendError. */
function native<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BackendError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new BackendError(`CUDA ${what} failed: ${msg}`, { cause: err });
  }
}

function checkIds(ids: Int32Array, rows: number): void {
  for (let p = 0; p < ids.length; p++) {
    const id = ids[p]!;
    if (id < -1 || id >= rows) {
      throw new ValueError('ids', `element ${p} is ${id}; ids must be in [0, ${rows}) or -1 (padding)`);
    }
  }
}

/**
 * A value table V [rows, dv] in GPU memory, with its optimizer state (allocated on the first
 * step of each kind). Bags are fixed-size: ids/weights [B, bagSize]; id -1 is padding.
 */
export class CudaValueTable {
  readonly rows: number;
  readonly dv: number;
  #handle: object | undefined;

  /** Copy `values` [rows, dv] to the GPU. */
  constructor(values: Float32Array, rows: number, dv: number) {
    checkInt('rows', rows, 1, 2 ** 31 - 2);
    checkInt('dv', dv, 1, 2 ** 29);
    if (!(values instanceof Float32Array)) throw new ShapeError('values', 'must be a Float32Array');
    if (values.length !== rows * dv) {
      throw new ShapeError('values', `expected [rows=${rows}, dv=${dv}] = ${rows * dv} values, got ${values.length}`);
    }
    const addon = requireAddon();
    this.rows = rows;
    this.dv = dv;
    this.#handle = native('table create', () => addon.tableCreate(values, rows, dv));
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  #live(): { addon: CudaAddon; handle: object } {
    if (this.#handle === undefined) throw new DisposedError('CudaValueTable: used after dispose()');
    return { addon: requireAddon(), handle: this.#handle };
  }

  /** Validates ids/weights [B, bagSize] and returns B. */
  #bags(ids: Int32Array, weights: Float32Array, bagSize: number, batch: number | undefined): number {
    checkInt('bagSize', bagSize, 0);
    if (!(ids instanceof Int32Array)) throw new ShapeError('ids', 'must be an Int32Array');
    if (!(weights instanceof Float32Array)) throw new ShapeError('weights', 'must be a Float32Array');
    if (weights.length !== ids.length) {
      throw new ShapeError('weights', `must match ids: ${ids.length} values [B, bagSize], got ${weights.length}`);
    }
    let b: number;
    if (bagSize === 0) {
      if (ids.length !== 0) throw new ShapeError('ids', `bagSize is 0, so ids must be empty, got ${ids.length}`);
      if (batch === undefined) throw new ConfigError('batch', 'required when bagSize is 0');
      b = checkInt('batch', batch, 0);
    } else {
      if (ids.length % bagSize !== 0) {
        throw new ShapeError('ids', `length ${ids.length} is not a multiple of bagSize ${bagSize}`);
      }
      b = ids.length / bagSize;
      if (batch !== undefined && batch !== b) {
        throw new ShapeError('ids', `expected [B=${batch}, bagSize=${bagSize}] = ${batch * bagSize} values, got ${ids.length}`);
      }
    }
    if (ids.length > 2 ** 31 - 2) throw new ShapeError('ids', `at most 2^31 - 2 positions per call, got ${ids.length}`);
    checkIds(ids, this.rows);
    checkFinite('weights', weights);
    return b;
  }

  /**
   * out[b] = Σ_j weights[b, j] · V[ids[b, j]].  ids, weights [B, bagSize] → out [B, dv].
   * `batch` is needed only when bagSize is 0 (then every bag is empty and out is zeros).
   */
  forward(ids: Int32Array, weights: Float32Array, bagSize: number, batch?: number): Float32Array {
    const { addon, handle } = this.#live();
    const b = this.#bags(ids, weights, bagSize, batch);
    return native('embedding-bag forward', () => addon.tableForward(handle, ids, weights, b, bagSize));
  }

  /**
   * Backward of `forward` and an optimizer step on the touched rows, in one pass:
   *   gw[b, j] = <gradOut[b], V[ids[b, j]]>   (V before the step; 0 for padding)
   *   gV[r] = Σ_{ids[b,j] = r} weights[b, j] · gradOut[b];  V[r] ← step(V[r], gV[r])
   * gradOut [B, dv] → gw [B, bagSize]. Adam is lazy: moments and the step count t used for bias
   * correction are per row and advance only when the row is touched.
   */
  backwardStep(
    ids: Int32Array,
    weights: Float32Array,
    gradOut: Float32Array,
    bagSize: number,
    optimizer: CudaOptimizerConfig,
  ): Float32Array {
    const { addon, handle } = this.#live();
    if (!(gradOut instanceof Float32Array)) throw new ShapeError('gradOut', 'must be a Float32Array');
    if (gradOut.length % this.dv !== 0) {
      throw new ShapeError('gradOut', `expected [B, dv=${this.dv}], got ${gradOut.length} values`);
    }
    const b = this.#bags(ids, weights, bagSize, gradOut.length / this.dv);
    checkFinite('gradOut', gradOut);
    const opt = resolveOptimizer(optimizer);
    const out = native('embedding-bag backward step', () =>
      addon.tableBackwardStep(handle, ids, weights, gradOut, b, bagSize, opt.code, opt.lr, opt.beta1, opt.beta2, opt.eps),
    );
    return out.gradWeights;
  }

  /** Replace the values [rows, dv] (optimizer state is kept). */
  upload(values: Float32Array): void {
    const { addon, handle } = this.#live();
    if (!(values instanceof Float32Array) || values.length !== this.rows * this.dv) {
      throw new ShapeError('values', `expected a Float32Array [rows=${this.rows}, dv=${this.dv}]`);
    }
    native('table upload', () => addon.tableUpload(handle, values));
  }

  /** Copy the values [rows, dv] back to the host. */
  download(): Float32Array {
    const { addon, handle } = this.#live();
    return native('table download', () => addon.tableDownload(handle));
  }

  /** Free the GPU memory now (also freed when the object is garbage collected). Idempotent. */
  dispose(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    const { addon } = load();
    if (addon) native('table free', () => addon.tableFree(handle));
  }
}

function resolveOptimizer(o: CudaOptimizerConfig): {
  code: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
} {
  if (o === null || typeof o !== 'object') throw new ConfigError('optimizer', 'must be an object { kind, lr, ... }');
  const code = OPTIMIZER_CODES[o.kind];
  if (code === undefined) {
    throw new ConfigError('optimizer.kind', `must be 'sgd', 'adagrad' or 'adam', got ${String(o.kind)}`);
  }
  const lr = o.lr;
  const beta1 = o.beta1 ?? 0.9;
  const beta2 = o.beta2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) {
    throw new ConfigError('optimizer.lr', `must be a finite number ≥ 0, got ${String(lr)}`);
  }
  for (const [field, v] of [
    ['optimizer.beta1', beta1],
    ['optimizer.beta2', beta2],
  ] as const) {
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ConfigError(field, `must be in [0, 1), got ${String(v)}`);
  }
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
    throw new ConfigError('optimizer.eps', `must be a finite number > 0, got ${String(eps)}`);
  }
  return { code, lr, beta1, beta2, eps };
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
