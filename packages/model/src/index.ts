/**
 * @mnemo/model: decoder-only language models on tfjs whose FFN slots can be dense, MoE, memory
 * (PKM) or Memory+ layers; KV-cache decoding, generation, checkpoints.
 */
export {
  FFN_KINDS,
  type FfnKind,
  type ModelConfig,
  type ModelConfigInput,
  ffnPlan,
  modelConfigSchema,
  parseModelConfig,
} from './config';
export { type ModelCounts, modelCounts } from './counts';
export { type CapturedKV, LanguageModel, type LanguageModelOptions, type MemoryInspection, type MemorySite, type TensorKV } from './model';
export type { KVCache } from './kv-cache';
export type { FfnSlot } from './ffn';
export { EXTERNAL_POSITIONS, type ExternalKV, type SkipLayerMemory } from './extensions';
export { MoeFfn } from './moe';
export { MemoryFfn } from './memory-ffn';
export {
  FFN_REGISTRY,
  type FfnKindSpec,
  type FfnSite,
  MEMORY_KINDS,
  type MemoryKindSpec,
  ffnKind,
  isMemoryKind,
  memoryKind,
  memoryLayerConfigFor,
  poolShapeOf,
  usesMemoryPool,
} from './ffn-kinds';
export { type GenerateMemory, type GenerateOptions, type GenerateResult, type TextCodec, generate, sampleToken } from './generate';
export {
  CHECKPOINT_WRITE_STEPS,
  type CheckpointParts,
  type CheckpointWriteStep,
  type LoadOptions as CheckpointLoadOptions,
  type LoadedCheckpoint,
  type SaveOptions,
  type SerializableTokenizer,
  loadCheckpointWith,
  resolveCheckpointDir,
  saveCheckpoint,
} from './checkpoint';
export { BpeTokenizer, type TrainOptions } from './tokenizer';
export { loadCheckpoint } from './load';
export {
  CHAT_ROLES,
  type ChatMessage,
  type ChatRole,
  type ChatTemplate,
  DEFAULT_CHAT_TEMPLATE,
  chatTemplateSchema,
  parseChatTemplate,
  renderChat,
} from './chat-template';
export {
  BACKGROUND_READS_FILE,
  TEACH_DEFAULTS,
  type TeachOptions,
  type TeachResult,
  computeBackgroundReads,
  slotReadCounts,
  teachText,
} from './teach';
