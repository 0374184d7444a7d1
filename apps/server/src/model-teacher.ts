/**
 * ModelTeacher: the EngineTeacher over @mnemo/model's `teachText` (sparse memory finetuning):
 * a text is written into the top-t value rows most specific to it, ranked against the background
 * reads stored with the checkpoint; everything else stays byte-identical. `save` rewrites the
 * checkpoint the server was loaded from, atomically (saveCheckpoint: the old version stays in
 * place until the new one is whole), with the training state it was loaded with.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { type BackgroundReads, MemoryPool, loadBackgroundReads, saveBackgroundReads } from '@mnemo/memory-layer';
import {
  BACKGROUND_READS_FILE,
  type LanguageModel,
  type SerializableTokenizer,
  resolveCheckpointDir,
  saveCheckpoint,
  teachText,
} from '@mnemo/model';
import type * as tf from '@tensorflow/tfjs-core';
import type { EngineTeacher, TaughtText, TeachOptions } from './engine';

export interface ModelTeacherParts {
  model: LanguageModel;
  tokenizer: SerializableTokenizer;
  dir: string;
  extra: Record<string, unknown>;
  extraTensors: Record<string, tf.Tensor>;
  background: BackgroundReads;
}

export class ModelTeacher implements EngineTeacher {
  unsaved = 0;
  constructor(private readonly parts: ModelTeacherParts) {}

  /** A teacher when the model has a local memory pool (a sharded pool cannot be taught yet). */
  static canTeach(model: LanguageModel): boolean {
    return model.pool instanceof MemoryPool;
  }

  /**
   * The background reads the checkpoint stores (mnemo-train teach writes them), else none: slots
   * are then ranked by the text's own reads alone (every background count 0), with a warning.
   */
  static background(dir: string, model: LanguageModel, warn: (msg: string) => void): BackgroundReads {
    const file = path.join(resolveCheckpointDir(dir), BACKGROUND_READS_FILE);
    const rows = model.pool!.rows;
    if (existsSync(file)) return loadBackgroundReads(file);
    warn(
      `${file} is missing: POST /v1/memory/teach ranks slots by the text's own reads alone, not against a background sample (mnemo-train teach writes the file)`,
    );
    return { slots: rows, tokens: 0, reads: 1, counts: new Float64Array(rows) };
  }

  teach(tokens: number[], opts: TeachOptions): TaughtText {
    const { model, background } = this.parts;
    const r = teachText(model, tokens, background, { t: opts.topT, steps: opts.steps });
    this.unsaved++;
    return { tokens: tokens.length, slots: [...r.slots], lossBefore: r.lossBefore, lossAfter: r.lossAfter };
  }

  dispose(): void {
    for (const t of Object.values(this.parts.extraTensors)) t.dispose();
  }

  save(): { path: string; bytes: number } {
    const { model, tokenizer, dir, extra, extraTensors } = this.parts;
    const taught = (typeof extra.taughtFacts === 'number' ? extra.taughtFacts : 0) + this.unsaved;
    saveCheckpoint(dir, { model, tokenizer, extra: { ...extra, taughtFacts: taught }, extraTensors });
    extra.taughtFacts = taught;
    saveBackgroundReads(path.join(resolveCheckpointDir(dir), BACKGROUND_READS_FILE), this.parts.background);
    this.unsaved = 0;
    return { path: path.resolve(dir), bytes: dirBytes(dir) };
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += statSync(path.join(e.parentPath ?? dir, e.name)).size;
  }
  return n;
}
