/**
 * Identity and same-dtype Cast without a copy, on the native dense path of the wasm backend.
 *
 * tfjs-wasm's Identity (every `clone()`, many gradients) and Cast (also to the dtype the tensor
 * already has: the Mul gradient casts its other operand to float32) allocate an output and copy
 * the input into it. tfjs tensors are immutable, so the output can share the input's buffer,
 * reference-counted, as tfjs-wasm's own Reshape does. Measured in a training step of the wide
 * throughput model: 659 Identity calls, 8% of kernel time. On the `wasm` dense path (or a Cast
 * that changes the dtype) the original kernels run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { denseInfo } from './wasm-matmul';

interface SharingBackend {
  incRef(dataId: object): void;
}

let installed = false;

/** Register the overrides once (wasm backend only); the dense path decides per call. */
export function installWasmNoCopy(): boolean {
  if (installed) return true;
  const originals = ['Identity', 'Cast'].map((name) => tf.getKernel(name, 'wasm'));
  if (originals.some((k) => !k)) return false;
  for (const k of originals as tf.KernelConfig[]) {
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        const x = (args.inputs as { x: tf.TensorInfo }).x;
        const to = (args.attrs as { dtype?: tf.DataType } | undefined)?.dtype ?? x.dtype;
        if (denseInfo()?.path !== 'native' || to !== x.dtype || x.dtype === 'string') return k.kernelFunc(args);
        (args.backend as unknown as SharingBackend).incRef(x.dataId);
        return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
      },
    });
  }
  installed = true;
  return true;
}
