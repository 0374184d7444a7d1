/**
 * Batched matmul for attention: a [..., M, K] · b [..., K, N] with equal batch dims.
 *
 * On the wasm backend tfjs runs a batched BatchMatMul through a slow generic loop while a 2-D
 * product goes to XNNPACK (measured: [32,126,63]·[32,63,32] 8.1 ms batched vs ~1 ms for the same
 * FLOPs as one 2-D product). Splitting the batch with tf ops does not help: wasm's Slice reads
 * the WHOLE input per slice (32 slices of a 1 MB tensor: 20 ms). So on wasm this registers a
 * kernel, `MnemoLoopBatchMatMul`, that copies each batch element into a temporary on the wasm
 * heap (memmove), runs the 2-D kernel and copies the result out; its gradient is two more such
 * products. Other backends, and wasm on the native dense path, use tf.matMul. (Belongs next to @mnemo/kernels' wasm BatchMatMul
 * override; kept here until it moves there.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { denseInfo } from '@mnemo/kernels';

const KERNEL = 'MnemoLoopBatchMatMul';
let registered = false;

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  disposeData(dataId: object): void;
}

function register(): boolean {
  if (registered) return true;
  const matmul = tf.getKernel('BatchMatMul', 'wasm');
  if (!matmul) return false;
  const plain = matmul.kernelFunc;
  tf.registerKernel({
    kernelName: KERNEL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo }; // [n, M, K], [n, K, N]
      const be = backend as unknown as WasmBackendLike;
      const [n, M, K] = a.shape as [number, number, number];
      const N = b.shape[2]!;
      const out = be.makeOutput([n, M, N], 'float32');
      for (let i = 0; i < n; i++) {
        const ta = be.makeOutput([M, K], 'float32');
        const tb = be.makeOutput([K, N], 'float32');
        // views are re-read after every allocation: the heap may grow and detach old ones
        be.typedArrayFromHeap(ta).set(be.typedArrayFromHeap(a).subarray(i * M * K, (i + 1) * M * K));
        be.typedArrayFromHeap(tb).set(be.typedArrayFromHeap(b).subarray(i * K * N, (i + 1) * K * N));
        const r = plain({ inputs: { a: ta, b: tb }, backend, attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo;
        be.typedArrayFromHeap(out).set(be.typedArrayFromHeap(r), i * M * N);
        be.disposeData(ta.dataId);
        be.disposeData(tb.dataId);
        be.disposeData(r.dataId);
      }
      return out;
    },
  });
  tf.registerGradient({
    kernelName: KERNEL,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = saved as [tf.Tensor, tf.Tensor];
      return { a: () => bmm(dy as tf.Tensor, b, false, true), b: () => bmm(a, dy as tf.Tensor, true, false) };
    },
  });
  registered = true;
  return true;
}

/** a [..., M, K] (or [..., K, M] with transposeA) · b [..., K, N] (or [..., N, K] with transposeB). */
export function bmm(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  const batch = a.shape.slice(0, -2);
  const n = batch.reduce((x, y) => x * y, 1);
  // the native dense path (OpenBLAS, @mnemo/kernels) runs batched products directly
  if (n === 1 || tf.getBackend() !== 'wasm' || denseInfo()?.path === 'native' || !register()) {
    return tf.matMul(a, b, transposeA, transposeB);
  }
  return tf.tidy(() => {
    const flip = (t: tf.Tensor, yes: boolean) => {
      const t3 = tf.reshape(t, [n, ...t.shape.slice(-2)]);
      return yes ? tf.transpose(t3, [0, 2, 1]) : t3;
    };
    const a3 = flip(a, transposeA); // [n, M, K]
    const b3 = flip(b, transposeB); // [n, K, N]
    const out = tf.engine().runKernel(KERNEL, { a: a3, b: b3 }, {}) as tf.Tensor; // [n, M, N]
    return tf.reshape(out, [...batch, a3.shape[1]!, b3.shape[2]!]);
  });
}
