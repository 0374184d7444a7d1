/**
 * @mnemo/memory-layer: product-key memory layers (PKM, Memory+) for tfjs models.
 */
export { type UsageReport, UsageTracker, massStats } from './usage';
export {
  type MemoryLayerConfig,
  type MemoryLayerConfigInput,
  memoryLayerConfigSchema,
  parseMemoryLayerConfig,
} from './config';
export { type HistogramBin, readCountBins, usageHistogramSvg } from './plot';
export { MemoryPool, type MemoryPoolOptions, type ValuePool } from './pool';
export { type LookupTrace, MemoryLayer, type MemoryLayerOptions } from './memory-layer';
export { type SavedMemory, loadMemory, saveMemory } from './io';
export { matchedMlpWidth, memoryLayerFlops } from './flops';
