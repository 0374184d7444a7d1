/**
 * Reading back finished runs (the benchmarks' --reuse): a run directory whose checkpoint was trained with exactly
 * the wanted config (every field but `out`, compared with keys sorted; the `model.memory` and
 * `model.moe` sections only when a block uses them, as the model ignores them otherwise) and whose metrics.jsonl
 * holds the final evaluation is read back instead of trained again. Training is deterministic
 * (seeded init, batches by (seed, step)), so the result is the one a new run would print.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { usesMemoryPool } from '@mnemo/model';
import { type CompareRow, compareRow, evalExtras } from './compare';
import type { TrainerConfig } from './config';
import { type EvalResult, readLines, runTraining } from './train';

const canonical = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(canonical)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
        )
      : v;

/** The config as far as it decides the trained model: no `out`, no sections no block uses. */
function effective(cfg: unknown): unknown {
  const { model: m, ...rest } = cfg as Record<string, unknown>;
  const model = { ...(m as Record<string, unknown> | undefined) };
  const ffn = Array.isArray(model.ffn) ? (model.ffn as string[]) : [];
  if (!usesMemoryPool({ ffn, skips: Array.isArray(model.skips) ? model.skips : [] })) delete model.memory;
  if (!ffn.includes('moe')) delete model.moe;
  return canonical({ ...rest, out: '', model });
}

/** Same run config, `out` and unused model sections aside. */
export function sameRun(a: TrainerConfig, b: unknown): boolean {
  if (!b || typeof b !== 'object') return false;
  return JSON.stringify(effective(a)) === JSON.stringify(effective(b));
}

/** The finished run in `dir` (default cfg.out) when its checkpoint was trained with cfg; else null. */
export function finishedRun(cfg: TrainerConfig, dir: string = cfg.out): CompareRow | null {
  const ckFile = path.join(dir, 'checkpoint', 'config.json');
  const metricsFile = path.join(dir, 'metrics.jsonl');
  if (!existsSync(ckFile) || !existsSync(metricsFile)) return null;
  const saved = (JSON.parse(readFileSync(ckFile, 'utf8')) as { extra?: { trainer?: unknown } }).extra?.trainer;
  if (!sameRun(cfg, saved)) return null;
  type Line = { final?: EvalResult; tokensPerSec: number; counts: { denseParams: number; memoryParams: number; flopsPerToken: number } };
  const fin = (readLines(metricsFile) as Line[]).find((m) => m.final);
  if (!fin?.final) return null;
  return {
    name: cfg.name,
    denseParams: fin.counts.denseParams,
    memoryParams: fin.counts.memoryParams,
    flopsPerToken: fin.counts.flopsPerToken,
    tokensPerSec: fin.tokensPerSec,
    valLoss: fin.final.valLoss,
    factLoss: fin.final.factLoss ?? null,
    recall: fin.final.recall ?? null,
    questions: fin.final.questions ?? null,
    ...evalExtras(fin.final),
  };
}

/**
 * The checkpoint of an unfinished run of exactly cfg in cfg.out (a run killed after a checkpoint),
 * to resume from; null when there is none or it was trained with another config.
 */
export function resumePoint(cfg: TrainerConfig): string | null {
  const ckFile = path.join(cfg.out, 'checkpoint', 'config.json');
  if (!existsSync(ckFile) || finishedRun(cfg)) return null;
  const saved = (JSON.parse(readFileSync(ckFile, 'utf8')) as { extra?: { trainer?: unknown } }).extra?.trainer;
  return sameRun(cfg, saved) ? path.join(cfg.out, 'checkpoint') : null;
}

/**
 * One run of an experiment that can be killed and started again: a finished run is read back,
 * an interrupted one resumes from its last checkpoint (the trainer continues it bit for bit),
 * anything else trains from scratch.
 */
export async function trainOrResume(cfg: TrainerConfig, opts: { quiet?: boolean } = {}): Promise<CompareRow> {
  const done = finishedRun(cfg);
  if (done) return done;
  const resume = resumePoint(cfg) ?? undefined;
  const s = await runTraining(cfg, { quiet: opts.quiet, ...(resume ? { resume } : {}) });
  return compareRow(cfg, s);
}
