/**
 * Teach a model a new text in seconds: sparse memory finetuning (Lin et al. 2025, "Continual
 * Learning via Sparse Memory Finetuning"; issue 18).
 *
 * Where the parts live: the slot side (TF-IDF ranking of slots, background read counts and their
 * file, a value table whose updates are restricted to chosen rows) is in @mnemo/memory-layer
 * (sparse-update.ts, MemoryPool.onlyUpdateRows); the whole-model loop is here, because only the
 * model knows its blocks, where each memory reads, and the LM loss.
 *
 *   1. reads: run the model on the text's inputs (tokens[:-1]) and count, per slot of the shared
 *      pool, how often any memory (every memory block and skip, every head and top-k position)
 *      read it: c_text.
 *   2. rank: score(s) = c_text(s) · log((R_bg + 1) / (c_bg(s) + 1)) against background reads
 *      of a sample of training text (`computeBackgroundReads`, saved beside the checkpoint as
 *      BACKGROUND_READS_FILE); keep the top `t` slots.
 *   3. steps: `steps` passes of the text's next-token loss whose backward reaches the value table
 *      through a view that updates only those t rows, with the pool's own sparse optimizer at
 *      lr `valueLr`. No dense gradient is ever applied: every dense weight and every other value
 *      row (and its optimizer state) stays byte-identical.
 * The slots are ranked once, before the first step (the reads of the taught text can move as the
 * values change, but the rows written are fixed up front: what `slots` reports is what changed).
 * The pool's value LR is set to `valueLr` while teaching and reset to the optimizer's own after
 * (a training LR schedule is not restored: teach a trained model, not one mid-run).
 * Defaults (t 64, steps 20, valueLr 0.01) are set from the tests' small models, not yet measured
 * on the Memory+ preset (docs/benchmarks/teach.md is still to come).
 */
import { ConfigError } from '@mnemo/core';
import { type BackgroundReads, MemoryPool, backgroundReads, topSlots } from '@mnemo/memory-layer';
import * as tf from '@tensorflow/tfjs-core';
import type { LanguageModel } from './model';

/** The background reads' file name inside a checkpoint directory. */
export const BACKGROUND_READS_FILE = 'background-reads.json';

export interface TeachOptions {
  /** how many value rows to update (default 64) */
  t?: number;
  /** optimizer steps on the text's loss (default 20) */
  steps?: number;
  /** learning rate of the pool's value optimizer during teaching (default 0.01) */
  valueLr?: number;
}

export const TEACH_DEFAULTS = { t: 64, steps: 20, valueLr: 0.01 } as const;

export interface TeachResult {
  /** the value rows written, ascending */
  slots: Int32Array;
  /** the text's mean next-token loss before and after */
  lossBefore: number;
  lossAfter: number;
  steps: number;
  ms: number;
}

function poolOf(model: LanguageModel): MemoryPool {
  const pool = model.pool;
  if (!(pool instanceof MemoryPool)) {
    throw new ConfigError(
      'pool',
      pool ? 'is not a local MemoryPool (a sharded pool cannot be taught yet)' : 'missing: the model has no memory to teach',
    );
  }
  return pool;
}

function checkText(model: LanguageModel, tokens: readonly number[], field = 'text'): void {
  if (!Array.isArray(tokens)) throw new ConfigError(field, 'must be an array of token ids');
  const max = model.config.maxSeqLen + 1;
  if (tokens.length < 2 || tokens.length > max) {
    throw new ConfigError(field, `must have between 2 and ${max} tokens (maxSeqLen + 1), got ${tokens.length}`);
  }
  const V = model.config.vocabSize;
  const bad = tokens.findIndex((id) => typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= V);
  if (bad >= 0) throw new ConfigError(field, `token ${bad} is ${String(tokens[bad])}; ids must be whole numbers in [0, ${V})`);
}

/** Per pool slot: how often the model's memories read it while reading `tokens` (all of them as inputs). */
export function slotReadCounts(model: LanguageModel, tokens: readonly number[]): Float64Array {
  const pool = poolOf(model);
  const counts = new Float64Array(pool.rows);
  for (const m of model.inspectMemory([...tokens])) {
    for (const id of m.ids) if (id >= 0) counts[id] = counts[id]! + 1;
  }
  return counts;
}

/** Background reads over a sample of token sequences (each cut to maxSeqLen tokens). */
export function computeBackgroundReads(model: LanguageModel, sample: readonly (readonly number[])[]): BackgroundReads {
  const pool = poolOf(model);
  if (sample.length === 0) throw new ConfigError('sample', 'must hold at least one token sequence');
  const max = model.config.maxSeqLen;
  return backgroundReads(
    pool.rows,
    sample.map((s, i) => {
      if (s.length === 0) throw new ConfigError(`sample.${i}`, 'is empty');
      const cut = s.slice(0, max);
      return { counts: slotReadCounts(model, cut), tokens: cut.length };
    }),
  );
}

function textLoss(model: LanguageModel, ids: tf.Tensor2D): number {
  return tf.tidy(() => model.loss(ids, { aux: false }).dataSync()[0]!);
}

/** Teach `tokens` (one text) to `model` in place; see the file header. */
export function teachText(model: LanguageModel, tokens: readonly number[], bg: BackgroundReads, opts: TeachOptions = {}): TeachResult {
  const t = opts.t ?? TEACH_DEFAULTS.t;
  const steps = opts.steps ?? TEACH_DEFAULTS.steps;
  const valueLr = opts.valueLr ?? TEACH_DEFAULTS.valueLr;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) throw new ConfigError('t', `must be a whole number ≥ 1, got ${t}`);
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1) {
    throw new ConfigError('steps', `must be a whole number ≥ 1, got ${steps}`);
  }
  if (typeof valueLr !== 'number' || !Number.isFinite(valueLr) || valueLr <= 0) {
    throw new ConfigError('valueLr', `must be a finite number > 0, got ${valueLr}`);
  }
  checkText(model, tokens);
  const pool = poolOf(model);
  if (bg.slots !== pool.rows) throw new ConfigError('background', `counts ${bg.slots} slots but the pool has ${pool.rows}`);
  const start = performance.now();
  const slots = topSlots(slotReadCounts(model, tokens.slice(0, -1)), bg, t);
  // gradients reach the value table through the memories' own variables (their lookups' weights);
  // they are computed and dropped, never applied
  const through = model.memoryLayers().flatMap((m) => Object.values(m.variables()));
  const ids = tf.tensor2d(Int32Array.from(tokens), [1, tokens.length], 'int32');
  try {
    const lossBefore = textLoss(model, ids);
    pool.onlyUpdateRows(slots);
    pool.setLearningRate(valueLr);
    try {
      for (let i = 0; i < steps; i++) {
        const { value, grads } = tf.variableGrads(() => model.loss(ids, { aux: false }), through);
        value.dispose();
        for (const g of Object.values(grads)) g.dispose();
        model.stepMemory(); // deferred pools: apply the queued (restricted) update now
      }
    } finally {
      pool.onlyUpdateRows(undefined);
      pool.setLearningRate(undefined);
    }
    const lossAfter = textLoss(model, ids);
    return { slots, lossBefore, lossAfter, steps, ms: performance.now() - start };
  } finally {
    ids.dispose();
  }
}
