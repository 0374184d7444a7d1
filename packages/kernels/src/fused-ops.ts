/**
 * Fused ops of the model's elementwise chains, forward and backward (math in
 * native/cpu/fused.cc):
 *
 *   siluMul(g, u)            silu(g) ⊙ u = g·σ(g)·u              SwiGLU's gate, Memory+'s gating
 *   maskedSoftmax(x, mask)   softmax(x + mask, −1)                attention; mask [B | 1, 1, R, S]
 *   rmsNorm(x, g, eps)       x / √(mean(x²) + eps) · g            over the last axis, g [D]
 *
 * Written with tfjs ops they are 3 / 2 / 6 kernels forward and ~7 / 4 / ~12 backward, each a full
 * pass over an activation on one thread (tfjs-wasm): profiled in a training step of the wide
 * throughput model (D 512, 8 blocks, 4×256 tokens) on the native dense path, their kernels took
 * ~480 ms of a ~2.7 s step. On the `native` dense path each op is one kernel forward and one
 * backward (a `tf.customGrad`), on all cores, on the wasm heap in place; elsewhere (the `wasm`
 * dense path, other backends, no addon, shapes outside the contract, `MNEMO_FUSED_OPS=0`) the
 * same math runs as the tfjs ops below, unchanged, so the wasm path stays bit-identical to what it
 * was. The fused kernels round differently (one exp, other sums): agreement with the tfjs ops is
 * tested to float32 tolerance, not bits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeAddon } from './native';
import { type WasmBackendLike, denseInfo } from './wasm-matmul';

interface FusedAddon {
  fusedF32(heap: Float32Array, op: number, args: Float64Array): void;
}

let calls = 0;
/** How many fused kernels (forward or backward) have run natively (for tests and the bench). */
export function fusedOpCalls(): number {
  return calls;
}

function addon(): FusedAddon | null {
  const a = nativeAddon() as unknown as Partial<FusedAddon> | null;
  return a && typeof a.fusedF32 === 'function' ? (a as FusedAddon) : null;
}

/**
 * Whether the fused ops run natively now: the wasm backend on the native dense path, an addon with
 * the kernels, and not switched off by `MNEMO_FUSED_OPS=0` (read at each call, so one process can
 * compare both).
 */
export function fusedOps(): boolean {
  return tf.getBackend() === 'wasm' && denseInfo()?.path === 'native' && process.env.MNEMO_FUSED_OPS !== '0' && addon() !== null;
}

/**
 * One wasm kernel per fused op. Inputs in order, outputs shaped like the named inputs; `args`
 * builds the addon's argument list from the heap offsets (inputs then outputs) and the attrs.
 */
interface KernelSpec {
  /** the addon's op code (native/cpu/fused_napi.cc) */
  op: number;
  inputs: string[];
  /** for each output, the input whose shape it takes */
  outputs: string[];
  args(off: number[], shapes: number[][], attrs: Record<string, number>): number[];
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const last = (s: readonly number[]) => s[s.length - 1]!;

const SPECS = {
  MnemoSiluMul: {
    op: 0,
    inputs: ['g', 'u'],
    outputs: ['g'],
    args: (o, s) => [o[0]!, o[1]!, o[2]!, size(s[0]!)],
  },
  MnemoSiluMulGrad: {
    op: 1,
    inputs: ['g', 'u', 'dy'],
    outputs: ['g', 'u'],
    args: (o, s) => [o[0]!, o[1]!, o[2]!, o[3]!, o[4]!, size(s[0]!)],
  },
  MnemoMaskedSoftmax: {
    op: 2,
    inputs: ['x', 'mask'],
    outputs: ['x'],
    args: (o, s, a) => {
      const [B, H, R, S] = s[0]!;
      const perBatch = a.hasMask && s[1]![0] === B && B !== 1 ? 1 : 0;
      return [o[0]!, a.hasMask ? o[1]! : -1, o[2]!, B!, H!, R!, S!, perBatch];
    },
  },
  MnemoSoftmaxGrad: {
    op: 3,
    inputs: ['y', 'dy'],
    outputs: ['y'],
    args: (o, s) => [o[0]!, o[1]!, o[2]!, size(s[0]!) / last(s[0]!), last(s[0]!)],
  },
  MnemoRmsNorm: {
    op: 4,
    inputs: ['x', 'g'],
    outputs: ['x'],
    args: (o, s, a) => [o[0]!, o[1]!, o[2]!, size(s[0]!) / last(s[0]!), last(s[0]!), a.eps!],
  },
  MnemoRmsNormGrad: {
    op: 5,
    inputs: ['x', 'g', 'dy'],
    outputs: ['x', 'g'],
    args: (o, s, a) => [o[0]!, o[1]!, o[2]!, o[3]!, o[4]!, size(s[0]!) / last(s[0]!), last(s[0]!), a.eps!],
  },
} satisfies Record<string, KernelSpec>;
type KernelName = keyof typeof SPECS;

let registered = false;
function register(): void {
  if (registered) return;
  registered = true;
  for (const [name, spec] of Object.entries(SPECS) as [KernelName, KernelSpec][]) {
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const be = backend as unknown as WasmBackendLike;
        const ins = spec.inputs.map((k) => (inputs as Record<string, tf.TensorInfo>)[k]!);
        const outs = spec.outputs.map((k) => be.makeOutput([...(inputs as Record<string, tf.TensorInfo>)[k]!.shape], 'float32'));
        // offsets are read after makeOutput: an allocation may grow (and replace) the heap
        const off = [...ins, ...outs].map((t) => be.dataIdMap.get(t.dataId).memoryOffset / 4);
        const args = spec.args(
          off,
          ins.map((t) => [...t.shape]),
          (attrs ?? {}) as Record<string, number>,
        );
        addon()!.fusedF32(be.wasm.HEAPF32, spec.op, Float64Array.from(args));
        calls++;
        return outs.length === 1 ? outs[0]! : outs;
      },
    });
  }
}

function run(name: KernelName, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor[] {
  register();
  const out = tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
}

type Forward = (
  ins: tf.Tensor[],
  save: tf.GradSaveFunc,
) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };
/** tf.customGrad over n tensor inputs (the save function comes last). */
const withGrad = (n: number, f: Forward) =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => f(args.slice(0, n) as tf.Tensor[], args[n] as tf.GradSaveFunc));

const f32 = (...ts: tf.Tensor[]) => ts.every((t) => t.dtype === 'float32');
const sameShape = (a: tf.Tensor, b: tf.Tensor) => a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);

/** silu(g) ⊙ u = g·σ(g)·u, elementwise; g and u of one shape. */
export function siluMul<T extends tf.Tensor>(g: T, u: T): T {
  if (!fusedOps() || !f32(g, u) || !sameShape(g, u) || g.size === 0) {
    return tf.tidy(() => tf.mul(tf.mul(g, tf.sigmoid(g)), u)) as T;
  }
  const op = withGrad(2, ([gi, ui], save) => {
    save([gi!, ui!]);
    return {
      value: run('MnemoSiluMul', { g: gi!, u: ui! })[0]!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run('MnemoSiluMulGrad', { g: saved[0]!, u: saved[1]!, dy }),
    };
  });
  return op(g, u) as T;
}

/**
 * softmax(x + mask) over the last axis. x [B, H, R, S]; mask [1 | B, 1, R, S] (a constant: no
 * gradient flows to it) or null.
 */
export function maskedSoftmax(x: tf.Tensor4D, mask: tf.Tensor | null): tf.Tensor4D {
  const [B, , R, S] = x.shape;
  const fits =
    mask === null ||
    (f32(mask) &&
      mask.rank === 4 &&
      (mask.shape[0] === 1 || mask.shape[0] === B) &&
      mask.shape[1] === 1 &&
      mask.shape[2] === R &&
      mask.shape[3] === S);
  if (!fusedOps() || !f32(x) || !fits || x.size === 0) {
    return tf.tidy(() => tf.softmax(mask ? tf.add(x, mask) : x, -1)) as tf.Tensor4D;
  }
  const op = withGrad(1, ([xi], save) => {
    const y = run('MnemoMaskedSoftmax', { x: xi!, mask: mask ?? xi! }, { hasMask: mask ? 1 : 0 })[0]!;
    save([y]);
    return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run('MnemoSoftmaxGrad', { y: saved[0]!, dy })[0]! };
  });
  return op(x) as tf.Tensor4D;
}

/** RMSNorm (Zhang & Sennrich 2019) over the last axis: x / √(mean(x²) + eps) · g, g [D]. */
export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, eps: number): T {
  const D = last(x.shape);
  if (!fusedOps() || !f32(x, g) || g.rank !== 1 || g.shape[0] !== D || x.size === 0) {
    return tf.tidy(() => {
      const ms = tf.mean(tf.square(x), -1, true); // [..., 1]
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g) as T;
    });
  }
  const op = withGrad(2, ([xi, gi], save) => {
    save([xi!, gi!]);
    return {
      value: run('MnemoRmsNorm', { x: xi!, g: gi! }, { eps })[0]!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run('MnemoRmsNormGrad', { x: saved[0]!, g: saved[1]!, dy }, { eps }),
    };
  });
  return op(x, g) as T;
}
