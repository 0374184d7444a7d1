/**
 * @mnemo/ultramem: UltraMem memory layers (Huang et al., ICLR 2025) on the Mnemo memory core:
 * TDQKR retrieval with a Tucker core and its auxiliary loss, multi-core scoring, implicit value
 * expansion, value-LR decay.
 */
export {
  type UltraMemConfig,
  type UltraMemConfigInput,
  parseUltraMemConfig,
  ultraMemConfigSchema,
  ultraMemShape,
  ultraMemValueStd,
} from './config';
export { TdqkrAddressor, type TdqkrOptions } from './tdqkr';
export { ExpandedAddressor, expand, permutation } from './ive';
export { rank1, summedCores, tuckerAuxLoss } from './tucker';
export { type Svd, svd } from './svd';
export { UltraMemLayer, type UltraMemLayerOptions } from './layer';
export { hasProjection, ultraMemFlops, ultraMemParams } from './flops';
export { valueLrMultiplier } from './value-lr';
