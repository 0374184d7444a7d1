/**
 * AdamW for dense parameters, and the gradient norm's Σ g², on the dense path (wasm-matmul.ts).
 *
 *   g  ← scale · g                                   (global-norm clipping)
 *   m' ← β1·m + (1 − β1)·g
 *   v' ← β2·v + (1 − β2)·g²
 *   x' ← (1 − lr·wd)·x − lr/(1 − β1^t) · m' / (√(v' / (1 − β2^t)) + eps)
 *
 * Written with tfjs ops this is ~13 elementwise kernels per parameter, each a full pass over it on
 * one thread (the wide model's AdamW read and wrote its 33 M floats ~26 times a step). On the
 * `native` dense path the kernel `MnemoDenseAdamW` does it in one pass on all cores (addon
 * native/cpu/dense_adamw.cc), reading the operands from the wasm heap in place and writing three
 * new outputs (tensors stay immutable); `sumOfSquares` reads gradients in place. On the `wasm`
 * path, other backends, or without the addon, the same math runs as tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeAddon } from './native';
import { denseInfo } from './wasm-matmul';

export interface DenseAdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** the step t ≥ 1 (bias corrections) */
  t: number;
  /** the gradient's clip factor (1 = none) */
  scale: number;
}

interface Addon {
  denseAdamW(heap: Float32Array, ...offsetsThenN: [number, number, number, number, number, number, number, number, Float64Array]): void;
  sumSquares(heap: Float32Array, off: number, n: number): number;
}

interface WasmBackendLike {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(id: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

const KERNEL = 'MnemoDenseAdamW';

function addon(): Addon | null {
  const a = nativeAddon() as unknown as Partial<Addon> | null;
  return a && typeof a.denseAdamW === 'function' && typeof a.sumSquares === 'function' ? (a as Addon) : null;
}

let registered = false;
function register(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const be = backend as unknown as WasmBackendLike;
      const { x, m, v, g } = inputs as Record<string, tf.TensorInfo>;
      const p = attrs as unknown as { params: number[] };
      const outs = [x!, m!, v!].map((t) => be.makeOutput([...t.shape], 'float32'));
      // offsets are read after makeOutput: an allocation may grow (and replace) the heap
      const off = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId).memoryOffset / 4;
      const n = x!.shape.reduce((a, b) => a * b, 1);
      addon()!.denseAdamW(
        be.wasm.HEAPF32,
        off(x!),
        off(m!),
        off(v!),
        off(g!),
        off(outs[0]!),
        off(outs[1]!),
        off(outs[2]!),
        n,
        Float64Array.from(p.params),
      );
      return outs;
    },
  });
}

/**
 * Whether denseAdamW / sumOfSquares run natively now (wasm backend, native dense path, addon with
 * the kernels, and not switched off with `MNEMO_FUSED_ADAMW=0`, read at each call: the
 * dense-losses bench compares the fused update with the tfjs ops on the same native path).
 */
export function fusedDenseOptimizer(): boolean {
  return tf.getBackend() === 'wasm' && denseInfo()?.path === 'native' && process.env.MNEMO_FUSED_ADAMW !== '0' && addon() !== null;
}

const same = (a: tf.Tensor, b: tf.Tensor) => a.dtype === 'float32' && b.dtype === 'float32' && a.shape.join() === b.shape.join();

/** One AdamW step of one parameter: new x, m, v (the inputs are not disposed). */
export function denseAdamW(
  x: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  p: DenseAdamWParams,
): { x: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const step = p.lr / (1 - p.beta1 ** p.t);
  const bc2 = 1 - p.beta2 ** p.t;
  const decay = 1 - p.lr * p.weightDecay;
  if (fusedDenseOptimizer() && same(x, m) && same(x, v) && same(x, g)) {
    register();
    const params = [p.scale, p.beta1, p.beta2, p.eps, step, 1 / bc2, decay];
    const [nx, nm, nv] = tf
      .engine()
      .runKernel(KERNEL, { x, m, v, g } as unknown as tf.NamedTensorMap, { params } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { x: nx!, m: nm!, v: nv! };
  }
  return tf.tidy(() => {
    const gs = tf.mul(g, p.scale);
    const nm = tf.add(tf.mul(m, p.beta1), tf.mul(gs, 1 - p.beta1));
    const nv = tf.add(tf.mul(v, p.beta2), tf.mul(tf.square(gs), 1 - p.beta2));
    const upd = tf.div(nm, tf.add(tf.sqrt(tf.div(nv, bc2)), p.eps));
    const decayed = p.weightDecay > 0 ? tf.mul(x, decay) : x;
    return { x: tf.sub(decayed, tf.mul(upd, step)), m: nm, v: nv };
  });
}

/** Σ over the tensors of Σ t² (the squared global norm), as a number. */
export function sumOfSquares(ts: readonly tf.Tensor[]): number {
  if (!ts.length) return 0;
  if (fusedDenseOptimizer() && ts.every((t) => t.dtype === 'float32')) {
    const be = tf.backend() as unknown as WasmBackendLike;
    const a = addon()!;
    let total = 0;
    for (const t of ts) total += a.sumSquares(be.wasm.HEAPF32, be.dataIdMap.get(t.dataId).memoryOffset / 4, t.size);
    return total;
  }
  return tf.tidy(() => tf.addN(ts.map((g) => tf.sum(tf.square(g)))).dataSync()[0]!);
}
