/**
 * The trainer's config file (YAML or JSON), validated once here; errors name the field
 * (`train.lr: expected number`). `model` is a @mnemo/model config without `vocabSize`, which
 * comes from the tokenizer trained on the run's data.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '@mnemo/core';
import { zodToConfigError } from '@mnemo/core';
import { type ModelConfig, parseModelConfig, chatTemplateSchema } from '@mnemo/model';
import YAML from 'yaml';
import { z } from 'zod';

const int = z.number().int();

export const trainerConfigSchema = z
  .object({
    name: z.string().min(1).default('run'),
    model: z.record(z.string(), z.unknown()),
    tokenizer: z
      .object({ vocabSize: int.min(258).default(1024) })
      .strict()
      .default({ vocabSize: 1024 }),
    data: z
      .object({
        /** text file, folder or .jsonl; default: the bundled Moby Dick */
        path: z.string().optional(),
        /**
         * characters of the corpus used (train + validation); unset: all of --data (the bundled
         * Moby Dick: its first 400,000). A longer text is cut with a warning saying how much.
         */
        maxChars: int.positive().optional(),
        /** synthetic facts mixed into the training text (0 = none) */
        facts: int.min(0).default(0),
        factsSeed: int.default(1),
        factsMode: z.enum(['seen', 'unseen']).default('seen'),
        /** filler sentences per fact statement */
        fillerRatio: int.min(0).default(1),
        /**
         * facts with a known information content instead of the corpus (data/capacity.ts, the
         * capacity experiment): `entities` made-up entities × the default attributes, or the
         * facts of `factsFile` (JSONL {"entity","attribute","value"}; data/capacity.ts)
         */
        capacity: z
          .object({ entities: int.positive().optional(), seed: int.default(1), factsFile: z.string().min(1).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .default({ facts: 0, factsSeed: 1, factsMode: 'seen', fillerRatio: 1 }),
    train: z
      .object({
        steps: int.positive(),
        batch: int.positive().default(8),
        seqLen: int.min(2).default(64),
        lr: z.number().positive().default(3e-3),
        warmup: int.min(0).default(20),
        /** final lr as a fraction of lr (cosine decay) */
        minLrRatio: z.number().min(0).max(1).default(0.1),
        weightDecay: z.number().min(0).default(0),
        /** global gradient-norm clip of the dense parameters (0 = off) */
        clip: z.number().min(0).default(1),
        logEvery: int.positive().default(10),
        evalEvery: int.positive().default(100),
        checkpointEvery: int.positive().default(100),
        seed: int.default(0),
      })
      .strict(),
    eval: z
      .object({
        /** JSONL {"prompt","answer"} for fact recall (default: the facts generator's questions) */
        qaFile: z.string().optional(),
        maxQuestions: int.positive().default(200),
        /** questions used by the periodic evaluations (the final one uses maxQuestions) */
        periodicQuestions: int.positive().default(50),
        valWindows: int.positive().default(16),
        answerTokens: int.positive().default(8),
      })
      .strict()
      .default({ maxQuestions: 200, periodicQuestions: 50, valWindows: 16, answerTokens: 8 }),
    /**
     * Memory³ stage 2 (docs/design.md §4.7): after step `fromStep`, every `chunk`-token chunk reads
     * the memories of the facts' statements retrieved by its text (needs data.facts > 0)
     */
    memory3: z
      .object({
        fromStep: int.min(0),
        topK: int.positive().default(5),
        refreshEvery: int.positive().default(50),
        maxOverlap: z.number().min(0).max(1).default(0.9),
        chunk: int.positive().default(64),
        embedLayer: int.min(0).default(0),
        /**
         * write the memories a batch reads again with gradient inside each step, so the loss also
         * trains how they are written (without it the read circuit did not form: docs/benchmarks/memory3.md)
         */
        writeGrad: z.boolean().default(true),
      })
      .strict()
      .optional(),
    out: z.string().default('runs/run'),
    /** the chat template stored in the checkpoint for mnemo-serve (default: @mnemo/model's DEFAULT_CHAT_TEMPLATE) */
    chatTemplate: chatTemplateSchema.optional(),
  })
  .strict();

export type TrainerConfigInput = z.input<typeof trainerConfigSchema>;
export type TrainerConfig = z.output<typeof trainerConfigSchema>;

export function parseTrainerConfig(input: unknown): TrainerConfig {
  const r = trainerConfigSchema.safeParse(input);
  if (!r.success) throw zodToConfigError(r.error);
  // the model part is checked now too (with a placeholder vocabulary) so errors show up before any work
  const model = modelConfigFor(r.data, 512);
  if (r.data.data.capacity && r.data.data.facts > 0) {
    throw new ConfigError('data.capacity', 'replaces the synthetic facts: set data.facts to 0 (or drop data.capacity)');
  }
  const cap = r.data.data.capacity;
  if (cap && (cap.entities === undefined) === (cap.factsFile === undefined)) {
    throw new ConfigError(
      'data.capacity.entities',
      'give either entities (generated facts) or factsFile (your facts), not both or neither',
    );
  }
  const m3 = r.data.memory3;
  if (m3) {
    if (r.data.data.facts === 0) throw new ConfigError('memory3', "reads the facts' statements as references: set data.facts > 0");
    if (m3.fromStep >= r.data.train.steps)
      throw new ConfigError('memory3.fromStep', `is ${m3.fromStep}, not before train.steps ${r.data.train.steps}: stage 2 would never run`);
    if (m3.embedLayer > model.layers) throw new ConfigError('memory3.embedLayer', `must be ≤ model.layers ${model.layers}`);
  }
  return r.data;
}

/** The model config of a run, once the tokenizer's vocabulary size is known. */
export function modelConfigFor(cfg: TrainerConfig, vocabSize: number): ModelConfig {
  try {
    return parseModelConfig({ maxSeqLen: cfg.train.seqLen + cfg.eval.answerTokens + 64, ...cfg.model, vocabSize });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`model.${e.field}`, e.message.slice(e.field.length + 2));
    throw e;
  }
}

/** Read a YAML or JSON config file. */
export function readTrainerConfig(file: string): TrainerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('--config', `cannot read ${file}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new ConfigError('--config', `${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return parseTrainerConfig(data);
}
