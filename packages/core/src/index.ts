/**
 * @mnemo/core: what every Mnemo package shares, and nothing else: typed errors, seeded RNG,
 * safetensors files, atomic writes, zod config errors.
 */
export {
  BackendError,
  CheckpointError,
  ConfigError,
  DisposedError,
  MnemoError,
  ShapeError,
  ValueError,
  checkFinite,
  checkInt,
} from './errors';
export { mulberry32, subSeed } from './random';
export {
  DTYPE_BYTES,
  type SafeDtype,
  SafetensorsReader,
  type TensorEntry,
  type TensorInfo,
  writeSafetensors,
} from './safetensors';
export { atomicWrite, tempPath, writeAll, writeFileAtomic } from './atomic';
export { parseConfig, zodToConfigError } from './zod';
export {
  type FlagSpec,
  type FlagValues,
  type FlagsSpec,
  type ParsedArgs,
  UsageError,
  defineFlags,
  parseArgvOrExit,
  parseFlags,
  usage,
} from './cli';
export { Progress } from './progress';
