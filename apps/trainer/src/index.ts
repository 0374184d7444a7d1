/** apps/trainer: train memory-augmented LMs and measure what they recall. */
export { AdamW } from './adamw';
export { type CompareRow, compare, compareRow, compareTable } from './compare';
export {
  modelConfigFor,
  parseTrainerConfig,
  readTrainerConfig,
  type TrainerConfig,
  type TrainerConfigInput,
  trainerConfigSchema,
} from './config';
export { Batcher, evalWindows } from './data/batcher';
export {
  type AnswerCounts,
  type Attribute,
  type AttributeBits,
  type AttributeStats,
  type CapacityFact,
  type CapacityFacts,
  DEFAULT_ATTRIBUTES,
  answerCounts,
  bitsFromCounts,
  empiricalStats,
  generateCapacityFacts,
  readCapacityFactsFile,
  stepsForExposures,
  storedBits,
  uniformStats,
} from './data/capacity';
export {
  CAPACITY_MEMORY,
  CAPACITY_MODELS,
  CAPACITY_TRUNK,
  type CapacityModel,
  type CapacityPoint,
  type CapacityRunSpec,
  type MemoryKnobs,
  bestLr,
  capacityConfig,
  capacityFacts,
  capacityPoint,
  capacitySteps,
  curveOf,
  isMemoryModel,
  knee,
  knobsLabel,
  knobsTag,
  parseKnobs,
  parseModelKnobs,
  parseModelRates,
} from './capacity';
export { mobyDick, readCorpus, readJsonlTexts } from './data/corpus';
export {
  type Fact,
  type FactsData,
  type FactsOptions,
  RELATION_NAMES,
  generateFacts,
  randomFact,
  sentences,
  statementOf,
} from './data/facts';
export { type EpisodeBatch, type EpisodeOptions, episodeBatch } from './data/episodes';
export { type QaPair, readQaFile } from './data/qa';
export { barChartSvg, lossCurveSvg } from './plot';
export { finishedRun, resumePoint, sameRun, trainOrResume } from './reuse';
export { MEMORY_BLOCKS, PRESET_SEED, PRESETS, type PresetName, preset } from './presets';
export { type EvalResult, type RunSummary, type TrainOptions, factRecall, prepareData, runTraining, sequencesLoss } from './train';
export { type Rung, ladder } from './ladder';
export { type Memory3TrainOptions, ReferenceMemory, tokenOverlap } from './memory3';
export { type ParallelBackend, type ParallelFlags, checkParallel, runParallelTraining } from './parallel';
