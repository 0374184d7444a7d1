/**
 * Loader of the CUDA addon `native/cuda/build/Release/mnemo_cuda.node` (native/cuda, docs/cuda.md).
 *
 * The addon is built at install time when `nvcc` is on PATH and loaded lazily, on the first call
 * here. It links cudart statically, so it loads without any CUDA library; `cudaStatus()` then
 * says whether a usable GPU (compute capability ≥ 8.0) is visible. Nothing here throws at
 * import; `requireAddon()` throws a `BackendError` carrying the reason when CUDA is not available.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendError } from '@mnemo/core';

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

/** The addon's exports (native/cuda/addon.cc). */
export interface CudaAddon {
  deviceCount(): { count: number; device: number; reason: string };
  tableCreate(values: Float32Array, rows: number, dv: number): object;
  tableUpload(handle: object, values: Float32Array): void;
  tableDownload(handle: object): Float32Array;
  tableFree(handle: object): void;
  /** bytes of optimizer-state buffer `name` (accum | moment1 | moment2 | steps | moment1_bf16 | row_v), null while unallocated (zeros) */
  tableStateDownload(handle: object, name: string): Uint8Array | null;
  /** allocate (when needed) and fill optimizer-state buffer `name` */
  tableStateUpload(handle: object, name: string, bytes: Uint8Array): void;
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
    rowWise: number,
    momentBf16: number,
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

export function loadAddon(): { addon?: CudaAddon; status: CudaStatus } {
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
    return { ...loadAddon().status };
  } catch (err) {
    return { available: false, built: false, devices: 0, reason: `CUDA status check failed: ${String(err)}` };
  }
}

export function requireAddon(): CudaAddon {
  const { addon, status } = loadAddon();
  if (!addon || !status.available) throw new BackendError(`CUDA kernels are not available: ${status.reason}`);
  return addon;
}

/** Run an addon call, turning its plain Errors into BackendError. */
export function native<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BackendError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new BackendError(`CUDA ${what} failed: ${msg}`, { cause: err });
  }
}
