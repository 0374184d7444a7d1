/**
 * @mnemo/kernels: the hot paths of memory layers and the choice of tensor backend.
 */
export {
  BACKEND_NAMES,
  type BackendChoice,
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
  backendInfo,
  ensureGradients,
  initBackend,
  parseBackendChoice,
} from './backend';
export {
  type KernelImpl,
  type PkBackwardResult,
  type PkDims,
  type PkTopKOptions,
  type PkTopKResult,
  productKeyTopK,
  productKeyTopKBackward,
  validatePkDims,
} from './pk-topk';
export { type CudaStatus, CudaValueTable, cudaAddonPath, cudaPkTopK, cudaStatus } from './cuda';
export { type NativeStatus, nativeAvailable } from './native';
export {
  CLIP_CODE,
  type ClipConfig,
  type ClipMode,
  OPT_CODE,
  type OptimizerConfig,
  type OptimizerKind,
  type ResolvedOptimizer,
  resolveOptimizer,
} from './optimizers';
export type { BackwardOptions, StepOptions, ValueTable, ValueTableStats } from './value-table';
export type { InitConfig, LoadOptions, StorageDtype, ValueStoreOptions } from './table-config';
export { ValueStore, type ValueStoreStats } from './value-store';
export { type StoreFileContents, type StoreTensor, readStoreTensors, writeStoreTensors } from './store-tensors';
export { type BagDims, validateBag } from './embedding-bag';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './ts/half';
export { embeddingBag } from './tfjs-op';
export { gatherRows } from './gather-rows';
export {
  type DenseChoice,
  type DenseInfo,
  type DensePath,
  denseInfo,
  fmaPeakGflops,
  fmaPeakIsa,
  nativeDense,
  nativeDenseCalls,
  parseDenseChoice,
  setDensePath,
} from './wasm-matmul';
export { NATIVE_ELEMENTWISE_MIN, broadcastPeriod, nativeElementwiseCalls } from './wasm-elementwise';
export { fusedOpCalls, fusedOps, maskedSoftmax, rmsNorm, siluMul } from './fused-ops';
export { type DenseAdamWParams, denseAdamW, fusedDenseOptimizer, sumOfSquares } from './dense-adamw';
export { type KernelStat, formatKernelProfile, installKernelProfiler, kernelProfile, resetKernelProfile } from './kernel-profile';
