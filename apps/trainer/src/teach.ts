/**
 * mnemo-train teach --checkpoint DIR --facts FILE.jsonl --out DIR [--t N] [--steps N] [--value-lr X] [--data PATH]
 *
 * Teach a trained checkpoint new facts by sparse memory finetuning (@mnemo/model teachText,
 * issue 18): each line {"text": "..."} of FILE.jsonl is taught in turn, writing only its top-t
 * value rows. The new checkpoint goes to --out atomically (saveCheckpoint: temp dir, then
 * rename), with the background reads beside it (BACKGROUND_READS_FILE, written atomically). The
 * background comes from the checkpoint's own file, else is computed from --data (default: the
 * bundled corpus) and saved. Per fact it prints the slots written, the text loss and the time.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CheckpointError, ConfigError, UsageError, defineFlags, parseFlags, usage } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type BackgroundReads, loadBackgroundReads, saveBackgroundReads } from '@mnemo/memory-layer';
import {
  BACKGROUND_READS_FILE,
  type BpeTokenizer,
  type LanguageModel,
  TEACH_DEFAULTS,
  computeBackgroundReads,
  loadCheckpoint,
  resolveCheckpointDir,
  saveCheckpoint,
  teachText,
} from '@mnemo/model';
import { readCorpus, readJsonlTexts } from './data/corpus';

const FLAGS = defineFlags({
  checkpoint: { type: 'string', placeholder: 'DIR', description: 'the checkpoint to teach' },
  facts: { type: 'string', placeholder: 'FILE', description: 'JSONL, one {"text": ...} per fact' },
  out: { type: 'string', placeholder: 'DIR', description: 'where the taught checkpoint is written (must not exist)' },
  t: { type: 'int', min: 1, description: 'value rows written per fact', defaultText: String(TEACH_DEFAULTS.t) },
  steps: { type: 'int', min: 1, description: 'optimizer steps per fact', defaultText: String(TEACH_DEFAULTS.steps) },
  'value-lr': { type: 'number', description: 'value learning rate while teaching', defaultText: String(TEACH_DEFAULTS.valueLr) },
  data: {
    type: 'string',
    placeholder: 'PATH',
    description: 'background sample when the checkpoint has no background reads',
    defaultText: 'the bundled corpus',
  },
});

const SYNOPSIS = 'usage: mnemo-train teach --checkpoint DIR --facts FILE.jsonl --out DIR [--t N] [--steps N] [--value-lr X] [--data PATH]';

/** windows of the background sample and their length cap */
const BACKGROUND_WINDOWS = 64;
const BACKGROUND_CHARS = 200_000;

/** Background reads of `model` over evenly spaced windows of `text`. */
export function backgroundFromText(model: LanguageModel, tok: BpeTokenizer, text: string): BackgroundReads {
  const ids = tok.encode(text.slice(0, BACKGROUND_CHARS));
  const T = model.config.maxSeqLen;
  if (ids.length < 2) throw new ConfigError('data', 'gives fewer than 2 tokens for the background sample');
  const n = Math.max(1, Math.min(BACKGROUND_WINDOWS, Math.floor(ids.length / T)));
  const stride = Math.max(1, Math.floor((ids.length - T) / n));
  return computeBackgroundReads(
    model,
    Array.from({ length: n }, (_, i) => ids.slice(i * stride, i * stride + T)),
  );
}

/** `mnemo-train teach …`; returns the exit code. */
export async function teachCli(argv: string[]): Promise<number> {
  const { values: f, help } = parseFlags(FLAGS, argv);
  if (help) {
    console.log(`${SYNOPSIS}\n\n${usage(FLAGS)}`);
    return 0;
  }
  if (!f.checkpoint || !f.facts || !f.out) throw new UsageError('teach needs --checkpoint DIR --facts FILE.jsonl --out DIR');
  if (existsSync(f.out)) throw new ConfigError('--out', `${f.out} exists; give a new directory (the source is never overwritten)`);
  const facts = readJsonlTexts(f.facts);
  if (!facts.length) throw new ConfigError('--facts', `${f.facts} holds no facts`);
  await initBackend({ log: false });
  const src = resolveCheckpointDir(f.checkpoint);
  const ck = loadCheckpoint(f.checkpoint);
  try {
    const bgFile = path.join(src, BACKGROUND_READS_FILE);
    const bg = existsSync(bgFile) ? loadBackgroundReads(bgFile) : backgroundFromText(ck.model, ck.tokenizer, readCorpus(f.data).join('\n'));
    if (bg.slots !== ck.model.pool?.rows)
      throw new CheckpointError(bgFile, `counts ${bg.slots} slots, the pool has ${ck.model.pool?.rows}`);
    const opts = { t: f.t, steps: f.steps, valueLr: f['value-lr'] };
    let written = 0;
    for (const [i, text] of facts.entries()) {
      const tokens = ck.tokenizer.encode(text);
      if (tokens.length < 2 || tokens.length > ck.model.config.maxSeqLen + 1) {
        throw new ConfigError(`--facts:${i + 1}: text`, `has ${tokens.length} tokens; must be in [2, ${ck.model.config.maxSeqLen + 1}]`);
      }
      const r = teachText(ck.model, tokens, bg, opts);
      written += r.slots.length;
      console.log(
        `fact ${i + 1}: ${r.slots.length} slots written, loss ${r.lossBefore.toFixed(3)} → ${r.lossAfter.toFixed(3)}, ${r.ms.toFixed(0)} ms`,
      );
    }
    const taught = (typeof ck.extra.taughtFacts === 'number' ? ck.extra.taughtFacts : 0) + facts.length;
    saveCheckpoint(f.out, {
      model: ck.model,
      tokenizer: ck.tokenizer,
      extra: { ...ck.extra, taughtFacts: taught },
      extraTensors: ck.extraTensors,
    });
    saveBackgroundReads(path.join(resolveCheckpointDir(f.out), BACKGROUND_READS_FILE), bg);
    console.log(JSON.stringify({ out: f.out, facts: facts.length, slotsWritten: written }));
    return 0;
  } finally {
    ck.model.dispose();
    for (const t of Object.values(ck.extraTensors)) t.dispose();
  }
}
