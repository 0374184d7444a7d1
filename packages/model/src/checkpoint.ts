/**
 * Model checkpoints: one directory
 *   config.json         { format, version, model: ModelConfig, extra, files: { <path>: { bytes, sha256 } } }
 *   model.safetensors   dense tensors by their stable names (memory layers' tensors excluded)
 *   memory/             saveMemory of @mnemo/memory-layer: every memory (memory blocks, then
 *                       config.skips) + the value pool WITH its optimizer state (only when the
 *                       model reads a pool)
 *   tokenizer.json      the tokenizer's toJSON()
 *   extra.safetensors   caller tensors (e.g. the trainer's optimizer moments), F32/I32
 *
 * Saving is crash-safe through an atomic pointer. Every save fills `<dir>.tmp-<pid>` and fsyncs
 * it, renames it to a new version `<dir>.v-<N>`, then points `<dir>` at it by renaming a fresh
 * symlink over `<dir>` (rename(2) replaces the link in one step), fsyncs the parent and only then
 * removes what is left of earlier saves: older versions and any `.tmp-*`, `.old-*`, `.link-*`
 * leftovers of a crashed save (today's two-rename layout included). So `<dir>` always names a
 * complete checkpoint once one was saved, and readers that open `<dir>/config.json` (every
 * earlier loader) keep working. A legacy `<dir>` that is a real directory is moved to
 * `<dir>.v-0` just before the first swap. If `<dir>` is missing (a crash during that one
 * migration, or a pre-pointer save killed between its two renames), loading recovers the newest
 * COMPLETE leftover (`.v-*` newest first, then `.tmp-*`, then `.old-*`; complete = config.json and
 * every file it lists verify). The steps, in order, are `CHECKPOINT_WRITE_STEPS`; the
 * crash-injection test stops a save before each of them.
 *
 * Loading checks every file's size and sha256 against config.json, then names, shapes and dtypes
 * of every tensor, and throws a CheckpointError naming the file (and tensor) on anything missing,
 * extra or corrupt.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  lstatSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { CheckpointError, MnemoError, type SafeDtype, SafetensorsReader, type TensorEntry, writeSafetensors } from '@mnemo/core';
import { type ValuePool, loadMemoryTensors, openMemory, saveMemory } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import { type ModelConfig, parseModelConfig } from './config';
import { usesMemoryPool } from './ffn-kinds';
import { LanguageModel } from './model';

const FORMAT = 'mnemo-model';
const VERSION = 1;

/** What a checkpoint needs of a tokenizer (BpeTokenizer has it). */
export interface SerializableTokenizer {
  toJSON(): object;
}

export interface CheckpointParts<Tok extends SerializableTokenizer = SerializableTokenizer> {
  model: LanguageModel;
  tokenizer: Tok;
  /** JSON metadata stored in config.json (training step, data position, …) */
  extra?: Record<string, unknown>;
  /** tensors stored in extra.safetensors (float32 or int32) */
  extraTensors?: Record<string, tf.Tensor>;
}

export interface LoadedCheckpoint<Tok> {
  model: LanguageModel;
  tokenizer: Tok;
  extra: Record<string, unknown>;
  extraTensors: Record<string, tf.Tensor>;
}

interface FileRecord {
  bytes: number;
  sha256: string;
}

/** The steps of a save, in order; `SaveOptions.beforeStep` is called before each one. */
export const CHECKPOINT_WRITE_STEPS = [
  'tmp-dir', // create <dir>.tmp-<pid>
  'model', // model.safetensors
  'memory', // memory/ (models that read a value pool)
  'tokenizer', // tokenizer.json
  'extra', // extra.safetensors
  'config', // config.json (sizes and sha256 of every file)
  'fsync', // fsync every file and directory
  'version', // rename the temp dir to <dir>.v-<N>
  'link', // a symlink <dir>.link-<pid> → <dir>.v-<N>
  'legacy-aside', // only when <dir> is a real directory (written before the pointer): move it to <dir>.v-0
  'swap', // rename the symlink over <dir>: the new checkpoint is in place
  'sync-parent', // fsync the parent directory
  'cleanup', // remove older versions and leftovers of crashed saves
] as const;
export type CheckpointWriteStep = (typeof CHECKPOINT_WRITE_STEPS)[number];

export interface SaveOptions {
  /**
   * Called before each step of the write sequence (tests: throwing here stops the save at that
   * point as a crash would, leaving everything it wrote so far in place).
   */
  beforeStep?: (step: CheckpointWriteStep) => void;
}

/**
 * Write a checkpoint atomically (replacing `dir` if it exists): `dir` names the old checkpoint or
 * the new one at every moment, never a partial one. An error or a crash part-way leaves `dir` as
 * it was; the leftovers are removed by the next successful save.
 */
export function saveCheckpoint(dir: string, parts: CheckpointParts, opts: SaveOptions = {}): void {
  const { model, tokenizer } = parts;
  const at = opts.beforeStep ?? (() => {});
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const name = path.basename(target);
  const tmp = `${target}.tmp-${process.pid}`;
  at('tmp-dir');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const memoryNames = memoryTensorNames(model);
  const dense = Object.entries(model.namedVariables()).filter(([n]) => !memoryNames.has(n));
  at('model');
  writeSafetensors(
    path.join(tmp, 'model.safetensors'),
    dense.map(([n, v]) => ({ name: n, dtype: 'F32' as const, shape: v.shape, data: v.dataSync() as Float32Array })),
    { format: FORMAT },
  );
  at('memory');
  if (model.pool) saveMemory(path.join(tmp, 'memory'), { pool: model.pool, layers: model.memoryLayers() });
  at('tokenizer');
  writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(tokenizer.toJSON()));
  at('extra');
  writeSafetensors(path.join(tmp, 'extra.safetensors'), extraEntries(parts.extraTensors ?? {}, tmp), { format: FORMAT });
  at('config');
  const files: Record<string, FileRecord> = {};
  for (const rel of listFiles(tmp)) files[rel] = { bytes: statSync(path.join(tmp, rel)).size, sha256: sha256(path.join(tmp, rel)) };
  const meta = { format: FORMAT, version: VERSION, model: model.config, extra: parts.extra ?? {}, files };
  writeFileSync(path.join(tmp, 'config.json'), `${JSON.stringify(meta, null, 2)}\n`);
  at('fsync');
  for (const rel of [...listFiles(tmp), ...listDirs(tmp), '.']) fsyncPath(path.join(tmp, rel));

  const siblings = readdirSync(parent);
  const versions = siblings.map((f) => versionOf(name, f)).filter((n) => n !== null);
  const n = Math.max(0, ...versions) + 1; // v-0 is kept for a legacy directory
  const version = `${target}.v-${n}`;
  at('version');
  renameSync(tmp, version);
  fsyncPath(parent);
  const link = `${target}.link-${process.pid}`;
  at('link');
  rmSync(link, { force: true });
  if (process.platform === 'win32') symlinkSync(version, link, 'junction');
  else symlinkSync(path.basename(version), link, 'dir');
  const st = lstatOrNull(target);
  if (st && !st.isSymbolicLink()) {
    at('legacy-aside');
    const aside = versions.includes(0) ? `${target}.old-${process.pid}` : `${target}.v-0`;
    rmSync(aside, { recursive: true, force: true });
    renameSync(target, aside);
  }
  at('swap');
  renameSync(link, target);
  at('sync-parent');
  fsyncPath(parent);
  at('cleanup');
  const current = path.basename(version);
  for (const f of readdirSync(parent)) {
    if (f !== current && isLeftover(name, f)) rmSync(path.join(parent, f), { recursive: true, force: true });
  }
}

/** N of `<name>.v-N`, else null. */
function versionOf(name: string, file: string): number | null {
  if (!file.startsWith(`${name}.v-`)) return null;
  const rest = file.slice(name.length + 3);
  return /^\d{1,15}$/.test(rest) ? Number(rest) : null;
}

/** A version or a leftover of a save of `<name>` (never `<name>` itself). */
function isLeftover(name: string, file: string): boolean {
  if (!file.startsWith(`${name}.`)) return false;
  return /^(?:v|tmp|old|link)-\d+$/.test(file.slice(name.length + 1));
}

function lstatOrNull(p: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * The directory a load of `dir` reads: `dir` itself when it exists (a symlink to the current
 * version, or a directory saved before the pointer), else the newest complete leftover of a save
 * that crashed (`.v-*` newest first, then `.tmp-*`, then `.old-*`). Throws CheckpointError when
 * there is none.
 */
export function resolveCheckpointDir(dir: string): string {
  if (existsSync(dir)) return dir;
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const name = path.basename(target);
  let siblings: string[] = [];
  try {
    siblings = readdirSync(parent);
  } catch {
    // no parent: nothing to recover
  }
  const rank = (f: string): number => {
    const v = versionOf(name, f);
    if (v !== null) return 3e15 + v;
    if (!isLeftover(name, f)) return -1;
    const kind = f.slice(name.length + 1).split('-')[0];
    return kind === 'tmp' ? 2e15 : kind === 'old' ? 1e15 : -1;
  };
  const candidates = siblings
    .map((f) => ({ f, r: rank(f) }))
    .filter((c) => c.r >= 0)
    .sort((a, b) => b.r - a.r || (a.f < b.f ? 1 : -1));
  for (const { f } of candidates) {
    const p = path.join(parent, f);
    if (isComplete(p)) return p;
  }
  const seen = candidates.length ? ` (incomplete leftovers: ${candidates.map((c) => c.f).join(', ')})` : '';
  throw new CheckpointError(path.join(dir, 'config.json'), `cannot read: no checkpoint at ${dir}${seen}`);
}

/** config.json parses as this format and every file it lists has its size and sha256. */
function isComplete(dir: string): boolean {
  try {
    const configFile = path.join(dir, 'config.json');
    const meta = readJson(configFile) as { format?: unknown; version?: unknown; files?: unknown };
    if (meta?.format !== FORMAT || meta.version !== VERSION) return false;
    verifyFiles(dir, meta.files, configFile);
    return true;
  } catch {
    return false;
  }
}

/**
 * Load and validate a checkpoint. `tokenizerFromJSON` rebuilds the tokenizer from tokenizer.json
 * (BpeTokenizer.fromJSON); its errors are reported as CheckpointErrors naming the file.
 */
export interface LoadOptions {
  /**
   * Opens the value pool of memory/ instead of memory-layer's openMemory (same result: the pool and
   * memory.json's layer configs), e.g. @mnemo/parallel's ShardedPool.load on one rank of a group.
   */
  openPool?: (memoryDir: string) => { pool: ValuePool; configs: unknown[] };
}

export function loadCheckpointWith<Tok>(
  at: string,
  tokenizerFromJSON: (json: unknown) => Tok,
  opts: LoadOptions = {},
): LoadedCheckpoint<Tok> {
  const dir = resolveCheckpointDir(at);
  const configFile = path.join(dir, 'config.json');
  const meta = readJson(configFile) as { format?: unknown; version?: unknown; model?: unknown; extra?: unknown; files?: unknown };
  if (meta?.format !== FORMAT || meta.version !== VERSION) {
    throw new CheckpointError(
      configFile,
      `not a ${FORMAT} v${VERSION} checkpoint (format ${String(meta?.format)}, version ${String(meta?.version)})`,
    );
  }
  let config: ModelConfig;
  try {
    config = parseModelConfig(meta.model);
  } catch (e) {
    throw new CheckpointError(configFile, `model config: ${(e as Error).message}`);
  }
  const extra = meta.extra ?? {};
  if (typeof extra !== 'object' || Array.isArray(extra)) throw new CheckpointError(configFile, 'extra: must be a JSON object');
  verifyFiles(dir, meta.files, configFile);

  let model: LanguageModel | undefined;
  const extraTensors: Record<string, tf.Tensor> = {};
  try {
    if (usesMemoryPool(config)) {
      const memoryDir = path.join(dir, 'memory');
      const { pool, configs } = (opts.openPool ?? openMemory)(memoryDir);
      try {
        model = new LanguageModel(config, { pool }); // builds every memory on the loaded pool
      } catch (e) {
        pool.dispose();
        throw new CheckpointError(memoryDir, `does not match the model config: ${(e as Error).message}`);
      }
      loadMemoryTensors(memoryDir, model.memoryLayers(), configs);
    } else {
      model = new LanguageModel(config);
    }
    loadDense(model, path.join(dir, 'model.safetensors'));
    const tokFile = path.join(dir, 'tokenizer.json');
    let tokenizer: Tok;
    try {
      tokenizer = tokenizerFromJSON(readJson(tokFile));
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(tokFile, (e as Error).message);
    }
    readExtra(path.join(dir, 'extra.safetensors'), extraTensors);
    return { model, tokenizer, extra: extra as Record<string, unknown>, extraTensors };
  } catch (e) {
    model?.dispose();
    for (const t of Object.values(extraTensors)) t.dispose();
    if (e instanceof MnemoError) throw e;
    throw new CheckpointError(dir, (e as Error).message);
  }
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────

/** Names (in model.namedVariables()) of the memories' tensors: they live in memory/. */
function memoryTensorNames(model: LanguageModel): Set<string> {
  const prefixes = model.memorySites().map((s) => `${s.site}.`);
  return new Set(Object.keys(model.namedVariables()).filter((n) => prefixes.some((p) => n.startsWith(p))));
}

function loadDense(model: LanguageModel, file: string): void {
  const reader = new SafetensorsReader(file);
  try {
    const memoryNames = memoryTensorNames(model);
    const used = new Set<string>();
    for (const [name, v] of Object.entries(model.namedVariables())) {
      if (memoryNames.has(name)) continue;
      if (!reader.tensors.has(name)) throw new CheckpointError(file, `missing tensor '${name}' [${v.shape}]`);
      const info = reader.info(name);
      if (info.dtype !== 'F32' || info.shape.join() !== v.shape.join()) {
        throw new CheckpointError(file, `tensor '${name}' is ${info.dtype} [${info.shape}], the config needs F32 [${v.shape}]`);
      }
      tf.tidy(() => v.assign(tf.tensor(reader.readF32(name), v.shape))); // tidy frees the file tensor; the variable keeps the data
      used.add(name);
    }
    const unexpected = [...reader.tensors.keys()].filter((k) => !used.has(k));
    if (unexpected.length) throw new CheckpointError(file, `unexpected tensors ${unexpected.join(', ')} (not in the model config)`);
  } finally {
    reader.close();
  }
}

const TF_TO_SAFE: Partial<Record<tf.DataType, SafeDtype>> = { float32: 'F32', int32: 'I32' };

function extraEntries(tensors: Record<string, tf.Tensor>, where: string): TensorEntry[] {
  return Object.entries(tensors).map(([name, t]) => {
    const dtype = TF_TO_SAFE[t.dtype];
    if (!dtype) throw new CheckpointError(where, `extra tensor '${name}' has dtype ${t.dtype}; only float32 and int32 are stored`);
    return { name, dtype, shape: t.shape, data: t.dataSync() as Float32Array | Int32Array };
  });
}

function readExtra(file: string, out: Record<string, tf.Tensor>): void {
  const reader = new SafetensorsReader(file);
  try {
    for (const [name, info] of reader.tensors) {
      const bytes = reader.readBytes(name);
      if (info.dtype === 'F32')
        out[name] = tf.tensor(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), info.shape, 'float32');
      else if (info.dtype === 'I32')
        out[name] = tf.tensor(new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), info.shape, 'int32');
      else throw new CheckpointError(file, `tensor '${name}' is ${info.dtype}; extra tensors are F32 or I32`);
    }
  } finally {
    reader.close();
  }
}

function verifyFiles(dir: string, files: unknown, configFile: string): void {
  if (!files || typeof files !== 'object' || Array.isArray(files)) throw new CheckpointError(configFile, 'files: missing the file list');
  const listed = files as Record<string, FileRecord>;
  for (const need of ['model.safetensors', 'tokenizer.json', 'extra.safetensors']) {
    if (!(need in listed)) throw new CheckpointError(configFile, `files: '${need}' is not listed`);
  }
  for (const [rel, rec] of Object.entries(listed)) {
    const file = path.join(dir, rel);
    if (rel.split(/[\\/]/).includes('..') || path.isAbsolute(rel)) throw new CheckpointError(configFile, `files: bad path '${rel}'`);
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      throw new CheckpointError(file, 'missing (listed in config.json)');
    }
    if (size !== rec?.bytes) {
      throw new CheckpointError(file, `${size < rec?.bytes ? 'truncated' : 'wrong size'}: ${size} bytes, config.json says ${rec?.bytes}`);
    }
    if (sha256(file) !== rec.sha256) throw new CheckpointError(file, 'corrupt: sha256 differs from config.json');
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckpointError(file, `cannot read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `not valid JSON: ${(e as Error).message}`);
  }
}

function sha256(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    let pos = 0;
    for (;;) {
      const r = readSync(fd, buf, 0, buf.length, pos);
      if (r === 0) break;
      h.update(buf.subarray(0, r));
      pos += r;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Files under `root`, relative, with '/' separators, sorted. */
function listFiles(root: string, rel = ''): string[] {
  return readdirSync(path.join(root, rel), { withFileTypes: true })
    .flatMap((e) => {
      const p = rel ? `${rel}/${e.name}` : e.name;
      return e.isDirectory() ? listFiles(root, p) : [p];
    })
    .sort();
}

function listDirs(root: string, rel = ''): string[] {
  return readdirSync(path.join(root, rel), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => {
      const p = rel ? `${rel}/${e.name}` : e.name;
      return [p, ...listDirs(root, p)];
    });
}

/** fsync a file or directory (directories: best effort; not every platform allows it). */
function fsyncPath(p: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(p, 'r');
    fsyncSync(fd);
  } catch {
    // directories cannot be opened for fsync on some platforms; the data files were synced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
