/**
 * @mnemo/kernels: the hot paths of memory layers and the choice of tensor backend.
 */
export * from './errors';
export {
  BACKEND_NAMES,
  type BackendChoice,
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
  backendInfo,
  initBackend,
  parseBackendChoice,
} from './backend';
export {
  type KernelImpl,
  type PkDims,
  type PkTopKOptions,
  type PkTopKResult,
  productKeyTopK,
  validatePkDims,
} from './pk-topk';
export * from './cuda';
