/**
 * Kernel override for the tfjs wasm backend: BatchMatMul with a transposed operand.
 *
 * tfjs-backend-wasm multiplies a transposed operand far more slowly than a plain one (measured
 * here, [2048,256]·[256,1024]: plain 40 ms, transposeB 468 ms, transposeA 2489 ms), and every
 * backward pass of a dense layer asks for both (dW = xᵀ·dy, dx = dy·Wᵀ). Transposing explicitly
 * first (7 ms) and running the plain kernel gives the same result at plain speed.
 * Registered once, when the wasm backend is activated; other backends are untouched.
 */
import * as tf from '@tensorflow/tfjs-core';

let installed = false;

export function installWasmMatMul(): boolean {
  if (installed) return true;
  const matmul = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!matmul || !transpose) return false;
  const plain = matmul.kernelFunc;
  const tr = transpose.kernelFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: matmul.setupFunc,
    disposeFunc: matmul.disposeFunc,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB) return plain({ inputs, backend, attrs });
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const swap = (x: tf.TensorInfo) => {
        const perm = x.shape.map((_, i) => i);
        const r = perm.length;
        [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!]; // [..., m, k] → [..., k, m]
        return tr({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
      };
      const at = transposeA ? swap(a) : a;
      const bt = transposeB ? swap(b) : b;
      const out = plain({ inputs: { a: at, b: bt }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
      const be = backend as { disposeData(id: object): void };
      if (at !== a) be.disposeData(at.dataId);
      if (bt !== b) be.disposeData(bt.dataId);
      return out;
    },
  });
  installed = true;
  return true;
}
