/**
 * Loader of the C++ CPU addon (build/Release/mnemo_cpu.node or prebuilds/, via node-gyp-build).
 * `MNEMO_NATIVE=0` forces the TypeScript kernels. `productKeyTopK` (pk-topk.ts) and the value
 * store use the addon's kernels whenever it loads.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The functions of native/cpu/addon.cc. Arrays are used in place; no validation inside. */
export interface NativeAddon {
  /** 'avx2' or 'generic': the code path chosen at load time for this CPU */
  simd: string;
  /** threads the kernels use (default: available cores, at most 8) */
  threads(): number;
  setThreads(n: number): void;
  /** software-prefetch distances in rows (forward/roofline, backward); defaults 8 and 12 */
  setPrefetch(forwardRows: number, backwardRows: number): void;
  bagForward(
    values: Float32Array | Uint16Array,
    dtype: number,
    dim: number,
    ids: Int32Array,
    weights: Float32Array,
    bagSize: number,
    out: Float32Array,
  ): void;
  bagBackward(
    values: Float32Array | Uint16Array,
    dtype: number,
    dim: number,
    ids: Int32Array,
    weights: Float32Array,
    gOut: Float32Array,
    bagSize: number,
    gw: Float32Array | null,
    params: Float64Array | null,
    /** Adagrad Σg² [N, dv] */
    accum: Float32Array | null,
    /** full Adam (m, v) [N, 2, dv], or row-wise Adam's float32 m [N, dv] (OptimizerStateArrays.moments ?? .m) */
    moments: Float32Array | null,
    /** Adam per-row step counts [N] */
    steps: Int32Array | null,
    /** row-wise Adam's bfloat16 m [N, dv] */
    moments16?: Uint16Array | null,
    /** row-wise Adam's second moment per row [N] */
    rowV?: Float32Array | null,
  ): number;
  // The two roofline loops below are measurement primitives for bench/index.ts (and their test
  // in native.test.ts); no production code calls them.
  /** roofline: out[b] = Σ_j V[ids[b,j]] — the plain gather-and-sum loop, no weights */
  rooflineGatherSum(values: Float32Array, dim: number, ids: Int32Array, bagSize: number, out: Float32Array, prefetch: boolean): void;
  /**
   * state-traffic roofline: each row of `rows` (sorted, distinct) of every array (rowCount rows
   * each) is read and written back, XOR `mask` (0 keeps the values); no gradient, no optimizer math
   */
  rooflineRowRmw(arrays: (Float32Array | Uint16Array | Int32Array)[], rowCount: number, rows: Int32Array, mask: number): void;
  pkTopK(
    queries: Float32Array,
    subkeys: Float32Array,
    batch: number,
    heads: number,
    n: number,
    dk: number,
    k: number,
    scores: Float32Array,
    ids: Int32Array,
  ): void;
  /** backward of pkTopK: adds into dq [B, H, dk] and dkeys [H, 2, n, dk/2] */
  pkBackward(
    grad: Float32Array,
    ids: Int32Array,
    queries: Float32Array,
    subkeys: Float32Array,
    batch: number,
    heads: number,
    n: number,
    dk: number,
    k: number,
    dq: Float32Array,
    dkeys: Float32Array,
  ): void;
  /** zero-filled native memory (page aligned) owned by the returned ArrayBuffer; `populate` commits it now */
  allocBuffer(bytes: number, populate?: boolean): ArrayBuffer;
  /** memory-map `length` bytes of a file from `offset` (copy-on-write unless `shared`) */
  mapFile(file: string, offset: number, length: number, shared: boolean): ArrayBuffer;
  /** write a shared file mapping's dirty pages to the file (msync) */
  syncBuffer(buf: ArrayBuffer): void;
  /** detach the ArrayBuffer now and free / unmap its memory */
  release(buf: ArrayBuffer): void;
  /** index of the first id outside [-1, rows), or -1 */
  firstBadId(ids: Int32Array, rows: number): number;
  /** index of the first NaN/Inf, or -1 */
  firstNonFinite(x: Float32Array): number;
  /** 32-bit word hash of a byte range (the store file checksum) */
  checksum(bytes: Uint8Array, seed: number): number;
}

let addon: NativeAddon | null | undefined;
let reason = '';

/** The package root: src/ and dist/ both sit one level below it. */
function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
}

/** The addon, or null when it is disabled or did not build (see nativeAvailable()). */
export function nativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  if (process.env.MNEMO_NATIVE === '0') {
    reason = 'disabled by MNEMO_NATIVE=0';
    addon = null;
    return addon;
  }
  try {
    const require_ = createRequire(import.meta.url);
    const load = require_('node-gyp-build') as ((dir: string) => NativeAddon) & { path(dir: string): string };
    const root = packageRoot();
    const file = path.relative(root, load.path(root)); // build/Release/… (compiled here) or prebuilds/… (shipped)
    addon = load(root);
    reason = `loaded ${file} (${file.startsWith('prebuilds') ? 'prebuilt' : 'compiled at install'}; ${addon.simd}, ${addon.threads()} threads)`;
  } catch (e) {
    reason =
      `the CPU addon did not load (${(e as Error).message.split('\n')[0]}); ` +
      'run `npm rebuild @mnemo/kernels` with a C++ toolchain to build it';
    addon = null;
  }
  return addon;
}

export interface NativeStatus {
  available: boolean;
  /** why not, or what loaded */
  reason: string;
}

/** Whether the C++ kernels run here, and why (not). */
export function nativeAvailable(): NativeStatus {
  const a = nativeAddon();
  return { available: a !== null, reason };
}
