/**
 * @mnemo/memory-layer: the memory core (addressor → value pool → readout) and the product-key
 * memory layers built from it (PKM, Memory+) for tfjs models.
 */
export type { Address, Addressor } from './addressor';
export { type Readout, IdentityReadout, ProjectionReadout, SiluGateReadout, checkReadout } from './readout';
export { type LookupTrace, Memory, type MemoryParts } from './memory';
export { ProductKeyAddressor, type ProductKeyAddressorOptions } from './product-key-addressor';
export { type UsageReport, UsageTracker, massStats } from './usage';
export {
  type MemoryLayerConfig,
  type MemoryLayerConfigInput,
  memoryLayerConfigSchema,
  parseMemoryLayerConfig,
} from './config';
export { type HistogramBin, readCountBins, usageHistogramSvg } from './plot';
export { logTicks, niceStep, niceTicks, tickLabel } from './ticks';
export { MemoryPool, type MemoryPoolOptions, type ValuePool } from './pool';
export { MemoryLayer, type MemoryLayerOptions } from './memory-layer';
export { type LoadedMemory, type SavableMemory, type SavedMemory, loadMemory, loadMemoryTensors, openMemory, saveMemory } from './io';
export { matchedMlpWidth, memoryLayerFlops } from './flops';
export {
  type BackgroundReads,
  backgroundReads,
  loadBackgroundReads,
  restrictUpdates,
  saveBackgroundReads,
  slotScores,
  topSlots,
} from './sparse-update';
