/**
 * Add, Sub and Multiply of float32 tensors on all cores, on the native dense path of the wasm
 * backend (addon native/cpu/elementwise.cc, on the wasm heap in place).
 *
 * tfjs-wasm runs elementwise kernels on one thread. Profiled in a training step of the wide
 * throughput model (D 512, 8 blocks, 4×256 tokens) after the matmuls went native: Multiply 16%
 * and Add 5% of kernel time (SwiGLU's gate, RMSNorm's scale and gain, RoPE, their gradients).
 *
 * Shapes taken (out = broadcast(a, b), n = |out|): each operand is the whole output, a scalar, or
 * a row that repeats along the leading dims (its shape, leading 1s dropped, is a suffix of out's:
 * a gain [D] against [B, T, D]). Anything else, other dtypes, tensors under 1M elements and the
 * `wasm` dense path run tfjs-wasm's own kernel. Same float32 arithmetic per element, so results
 * are bit-identical to it.
 *
 * The 1M floor is measured (one Multiply, interleaved medians, on 2 cores busy with training):
 * native/wasm 1.13-1.22x at 2M elements on 2 threads, but 0.18x at 64K and 0.56x at 512K, where
 * a thread's start and join (or one native thread against XNNPACK at that size) cost more than
 * they save. On a quiet machine the crossover may sit lower; not measured.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeAddon } from './native';
import { type WasmBackendLike, denseInfo } from './wasm-matmul';

interface ElementwiseAddon {
  binaryF32(heap: Float32Array, op: number, aOff: number, bOff: number, outOff: number, n: number, pa: number, pb: number): void;
}

const OPS = { Add: 0, Sub: 1, Multiply: 2 } as const;
/** Below this many output elements the wasm kernel runs (measured faster there). */
export const NATIVE_ELEMENTWISE_MIN = 1 << 20;
let calls = 0;
let installed = false;

/** How many binary ops the native path has served (for tests and the bench). */
export function nativeElementwiseCalls(): number {
  return calls;
}

const strip = (s: readonly number[]) => {
  let i = 0;
  while (i < s.length - 1 && s[i] === 1) i++;
  return s.slice(i);
};

/**
 * The period of an operand against the output shape: n (same elements), 1 (scalar), the row
 * length p when it repeats along out's leading dims, or null for any other broadcast.
 */
export function broadcastPeriod(shape: readonly number[], out: readonly number[]): number | null {
  const n = out.reduce((a, b) => a * b, 1);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size === 1) return 1;
  const s = strip(shape);
  if (s.length > out.length) return null;
  const tail = out.slice(out.length - s.length);
  if (!s.every((d, i) => d === tail[i])) return null;
  return size === n || n % size === 0 ? size : null;
}

/** Register the overrides once (wasm backend only); the dense path decides per call. */
export function installWasmElementwise(): boolean {
  if (installed) return true;
  const originals = Object.keys(OPS).map((name) => tf.getKernel(name, 'wasm'));
  if (originals.some((k) => !k)) return false;
  for (const k of originals as tf.KernelConfig[]) {
    const op = OPS[k.kernelName as keyof typeof OPS];
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
        if (denseInfo()?.path !== 'native' || a.dtype !== 'float32' || b.dtype !== 'float32') return k.kernelFunc(args);
        const addon = nativeAddon() as unknown as ElementwiseAddon | null;
        if (!addon || typeof addon.binaryF32 !== 'function') return k.kernelFunc(args);
        let out: number[];
        try {
          out = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
        } catch {
          return k.kernelFunc(args); // tfjs's own error
        }
        const n = out.reduce((x, y) => x * y, 1);
        if (n < NATIVE_ELEMENTWISE_MIN) return k.kernelFunc(args);
        const pa = broadcastPeriod(a.shape, out);
        const pb = broadcastPeriod(b.shape, out);
        if (pa === null || pb === null || Math.max(pa, pb) !== n) return k.kernelFunc(args);
        const be = args.backend as unknown as WasmBackendLike;
        const o = be.makeOutput(out, 'float32');
        // offsets are read after makeOutput: an allocation may grow (and replace) the heap
        const off = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset / 4;
        addon.binaryF32(be.wasm.HEAPF32, op, off(a), off(b), off(o), n, pa, pb);
        calls++;
        return o;
      },
    });
  }
  installed = true;
  return true;
}
