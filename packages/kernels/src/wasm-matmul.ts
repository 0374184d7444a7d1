/**
 * BatchMatMul for the tfjs wasm backend, on one of two paths (the "dense path"):
 *
 *   native  OpenBLAS `cblas_sgemm` through the C++ addon (native/cpu/dense.cc), on both cores,
 *           reading the operands from the wasm heap IN PLACE (each tensor's `memoryOffset` in the
 *           backend's dataIdMap) and writing into an output the backend allocates (`makeOutput`),
 *           so no byte is copied. Transposes are BLAS flags; batch dims broadcast when one side's
 *           batch is 1 or both are equal (other broadcasts, int tensors → the wasm path).
 *   wasm    tfjs-backend-wasm's own kernel (XNNPACK, one thread). It multiplies a transposed
 *           operand far more slowly than a plain one (measured here, [2048,256]·[256,1024]:
 *           plain 40 ms, transposeB 468 ms, transposeA 2489 ms), and every backward pass of a
 *           dense layer asks for both (dW = xᵀ·dy, dx = dy·Wᵀ), so this path transposes
 *           explicitly first (7 ms) and runs the plain kernel.
 *
 * `auto` (default) takes native when the addon loads and finds a BLAS (dlopen of
 * libopenblas.so.0), else wasm; `MNEMO_DENSE=native|wasm` or `setDensePath()` overrides it (an
 * explicit `native` that cannot run is an error). The kernel is registered once, when the wasm
 * backend is activated; switching the path later just flips which branch runs (the throughput
 * bench interleaves both in one process). Other backends are untouched.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, ConfigError } from '@mnemo/core';
import { nativeAddon } from './native';

export type DensePath = 'native' | 'wasm';
export type DenseChoice = DensePath | 'auto';

export interface DenseInfo {
  /** the path BatchMatMul takes now on the wasm backend */
  path: DensePath;
  requested: DenseChoice;
  /** what runs (library, threads), or why native does not */
  reason: string;
}

/** The parts of tfjs-wasm's backend the native overrides use (its heap and tensor offsets). */
export interface WasmBackendLike {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(id: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  disposeData(dataId: object): void;
}

interface DenseAddon {
  denseInfo(): { blas: boolean; blasName: string; blasReason: string; blasThreads: number };
  sgemm(
    heap: Float32Array,
    aOff: number,
    bOff: number,
    cOff: number,
    batch: number,
    aStride: number,
    bStride: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
  ): void;
  fmaPeak(threads: number, seconds: number): number;
  fmaPeakIsa?: string;
}

let installed = false;
let path: DensePath = 'wasm';
let info: DenseInfo | undefined;
let nativeCalls = 0;

/** The addon's dense functions when the addon loaded AND found a BLAS; else the reason why not. */
export function nativeDense(): { addon: DenseAddon; reason: string } | { addon: null; reason: string } {
  const a = nativeAddon() as unknown as DenseAddon | null;
  if (!a) return { addon: null, reason: 'the CPU addon did not load (or MNEMO_NATIVE=0)' };
  if (typeof a.sgemm !== 'function') return { addon: null, reason: 'the CPU addon predates dense math; rebuild it' };
  const d = a.denseInfo();
  if (!d.blas) return { addon: null, reason: `no BLAS: ${d.blasReason} (apt-get install libopenblas0)` };
  return { addon: a, reason: `${d.blasName}, ${d.blasThreads} threads` };
}

export function parseDenseChoice(value: string | undefined, field = 'MNEMO_DENSE'): DenseChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'native' || v === 'wasm') return v;
  throw new ConfigError(field, `unknown dense path '${value}'; use one of auto, native, wasm`);
}

/**
 * Choose the dense path (default: `MNEMO_DENSE`, else auto). Takes effect at once when the wasm
 * kernel is installed, and is remembered for when it is.
 */
export function setDensePath(choice?: DenseChoice | string): DenseInfo {
  const fromEnv = choice === undefined;
  const requested = parseDenseChoice(fromEnv ? process.env.MNEMO_DENSE : choice, fromEnv ? 'MNEMO_DENSE' : 'dense');
  const nat = requested === 'wasm' ? null : nativeDense();
  if (requested === 'native' && !nat?.addon) {
    throw new BackendError(`dense path 'native' cannot run: ${nat?.reason}. Use MNEMO_DENSE=auto or wasm.`);
  }
  if (nat?.addon) {
    path = 'native';
    info = { path, requested, reason: nat.reason };
  } else {
    path = 'wasm';
    info = { path, requested, reason: requested === 'wasm' ? 'requested' : `native unavailable: ${nat?.reason}` };
  }
  return info;
}

/** The dense path chosen last (undefined before the wasm backend or setDensePath ran). */
export function denseInfo(): DenseInfo | undefined {
  return info;
}

/** How many BatchMatMul calls the native path has served (for tests and the bench). */
export function nativeDenseCalls(): number {
  return nativeCalls;
}

/**
 * GFLOP/s of a tight FMA loop on `threads` threads (the peak the bench states): AVX-512 when the
 * CPU has it (OpenBLAS's SkylakeX kernels use it), else AVX2; null without the addon.
 */
export function fmaPeakGflops(threads: number, seconds = 0.5): number | null {
  const a = nativeAddon() as unknown as DenseAddon | null;
  return a && typeof a.fmaPeak === 'function' ? a.fmaPeak(threads, seconds) : null;
}

/** The vector width fmaPeakGflops measures: 'avx512' or 'avx2' (null without the addon). */
export function fmaPeakIsa(): 'avx512' | 'avx2' | null {
  const a = nativeAddon() as unknown as DenseAddon | null;
  if (!a || typeof a.fmaPeak !== 'function') return null;
  return a.fmaPeakIsa === 'avx512' ? 'avx512' : 'avx2';
}

const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/** The native product, or null when this call must take the wasm path. */
function nativeBatchMatMul(
  addon: DenseAddon,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  ta: boolean,
  tb: boolean,
  be: WasmBackendLike,
): tf.TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const m = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = ta ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = tb ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = tb ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb) return null; // the wasm kernel throws tfjs's own error
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const batch = size(outer);
  const batchA = size(outerA);
  const batchB = size(outerB);
  // a side whose batch equals the output's has the output's batch layout (each dim ≤ the
  // broadcast dim and equal product); a side of batch 1 is reused for every element
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  const out = be.makeOutput([...outer, m, n], 'float32');
  nativeCalls++;
  if (batch === 0 || m === 0 || n === 0) return out;
  // offsets are read after makeOutput: an allocation may grow (and replace) the heap
  const off = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset / 4;
  addon.sgemm(be.wasm.HEAPF32, off(a), off(b), off(out), batch, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n, m, n, k, ta, tb);
  return out;
}

/** Register the wasm BatchMatMul override (idempotent) and choose the dense path. */
export function installWasmMatMul(): boolean {
  if (installed) return true;
  const matmul = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!matmul || !transpose) return false;
  const plain = matmul.kernelFunc;
  const tr = transpose.kernelFunc;
  if (!info) setDensePath();
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: matmul.setupFunc,
    disposeFunc: matmul.disposeFunc,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const be = backend as unknown as WasmBackendLike;
      if (path === 'native') {
        const addon = nativeAddon() as unknown as DenseAddon;
        const out = nativeBatchMatMul(addon, a, b, !!transposeA, !!transposeB, be);
        if (out) return out;
      }
      if (!transposeA && !transposeB) return plain({ inputs, backend, attrs });
      const swap = (x: tf.TensorInfo) => {
        const perm = x.shape.map((_, i) => i);
        const r = perm.length;
        [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!]; // [..., m, k] → [..., k, m]
        return tr({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
      };
      const at = transposeA ? swap(a) : a;
      const bt = transposeB ? swap(b) : b;
      const out = plain({ inputs: { a: at, b: bt }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
      if (at !== a) be.disposeData(at.dataId);
      if (bt !== b) be.disposeData(bt.dataId);
      return out;
    },
  });
  installed = true;
  return true;
}
