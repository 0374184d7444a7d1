/**
 * @mnemo/memory3: Memory³ explicit memory (Yang et al. 2024): sparse attention K/V of reference
 * texts, written by the model, kept on disk, retrieved every 64 tokens and prepended to the
 * attention of the memory-reading blocks.
 */
export type { ExplicitMemory, MemoryEntry, MemoryInfo, MemoryShape, StoredMemory } from './types';
export type { MemoryBank, MemoryHit } from './types';
export { InMemoryBank, checkEntry, cosine, memoryLength } from './in-memory-bank';
export {
  type CapturedBlock,
  type Memory3Options,
  type MemoryHost,
  type MemoryKV,
  REFERENCE_POSITIONS,
  type ResolvedMemory3,
  memoryShapeOf,
  resolveOptions,
} from './host';
export { tokenImportance, topPositions, writeEntry, writeMemory } from './writer';
export { type TrainableHost, TrainableMemories } from './writer-grad';
export { embedTokens, meanPool } from './embed';
export { MemoryReader, MemorySession, type ReaderOptions, batchExternal } from './reader';
export { KnowledgeBase, type ReferenceCodec, bankShapeFor, defaultOptions, splitReferences } from './knowledge';
export {
  type CodecKind,
  type CodecSpec,
  type KvCodec,
  type KvQuantizer,
  type KvQuantizerOptions,
  codecError,
  makeCodec,
  trainKvQuantizer,
} from './codec';
export { type ModelKvShape, fullKvBytes, pqKvBytes, sparseKvBytes } from './codec-size';
export {
  type PqTrainOptions,
  ProductQuantizer,
  deserializeQuantizer,
  relativeError,
  serializeQuantizer,
  trainProductQuantizer,
} from './pq';
export { anisotropicGaussian } from './pq-synthetic';
export { type AnnOptions, AnnIndex } from './ann-index';
export { CorruptMemoryError } from './store-record';
export { type BankEvent, type IndexRecovery, LmdbMemoryBank, type MemoryBankOptions, openMemoryBank } from './lmdb-bank';
export { BANK_FORMAT } from './store-meta';
