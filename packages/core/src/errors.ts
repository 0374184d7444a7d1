/**
 * Typed errors shared by every Mnemo package. Each message names the bad field and says what
 * to do next; callers branch on the class, people read the message.
 */
export class MnemoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration value is missing, of the wrong type or out of range. */
export class ConfigError extends MnemoError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A tensor or array has the wrong shape, dtype or length. */
export class ShapeError extends MnemoError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Input values are invalid (NaN, out-of-range ids, ...). */
export class ValueError extends MnemoError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A requested tensor backend or native kernel cannot be used here. */
export class BackendError extends MnemoError {}

/** A native object (value store, handle) was used after it was freed. */
export class DisposedError extends MnemoError {}

/** A file is corrupt, truncated or not what the caller expected. */
export class CheckpointError extends MnemoError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/**
 * A command line is wrong: an unknown flag, a flag's value missing or malformed, a stray
 * argument. CLIs print the message (no stack trace) and exit 2.
 */
export class UsageError extends MnemoError {
  /** the known flag (`--steps`) whose value is missing or wrong; undefined for unknown flags and stray arguments */
  readonly flag: string | undefined;

  constructor(message: string, options?: { flag?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.flag = options?.flag;
  }
}

/** Throw a ConfigError unless `v` is an integer in [min, max]. */
export function checkInt(field: string, v: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new ConfigError(field, `must be an integer, got ${String(v)}`);
  }
  if (v < min || v > max) {
    throw new ConfigError(field, `must be in [${min}, ${max}], got ${v}`);
  }
  return v;
}

/** Throw a ValueError naming `field` if any element is NaN or infinite. */
export function checkFinite(field: string, a: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (!Number.isFinite(x)) {
      throw new ValueError(field, `element ${i} is ${x}; inputs must be finite numbers`);
    }
  }
}
