/**
 * The knowledge-capacity experiment (issue 16): tiny trunks trained on facts of known information
 * content (data/capacity.ts), each fact seen a fixed number of times, so that the dense model is
 * capacity-bound on 2 CPU cores; stored bits measured per model against the number of facts.
 *
 *   models     dense | moe | memory (PKM) | memoryPlus at matched FLOPs/token (±10%, capacity.test.ts):
 *              D 32, 2 blocks, 2/1 heads, vocab 512, T 64; the memory models' block-1 FFN reads a
 *              pool of 256² = 65,536 slots × dv 32 (2.1 M values) with 2 heads × top-8, keyDim 16
 *   exposures  steps = exposures × text tokens / templates / tokens per step (stepsForExposures)
 *   bits       f · facts · bits per fact per attribute, f estimated on the questions asked
 *              (eval.maxQuestions of them, random entities: facts are in random entity order)
 *   per param  bits / dense params (embedding included: it stores names too), / memory values,
 *              / training FLOPs (3 × forward FLOPs/token × tokens trained)
 *
 * The bench (bench/capacity.ts) sweeps each model's learning rate at one fact count, then trains
 * every (model, fact count, seed) at its best rate; runs are resumable (reuse.ts trainOrResume).
 */
import { ConfigError } from '@mnemo/core';
import type { UsageReport } from '@mnemo/memory-layer';
import { BpeTokenizer } from '@mnemo/model';
import type { CompareRow } from './compare';
import { type TrainerConfig, parseTrainerConfig } from './config';
import { type CapacityFacts, bitsFromCounts, generateCapacityFacts, readCapacityFactsFile, stepsForExposures } from './data/capacity';

export const CAPACITY_MODELS = ['dense', 'moe', 'memory', 'memoryPlus'] as const;
export type CapacityModel = (typeof CAPACITY_MODELS)[number];

/** The tiny trunk shared by every model, and what each model puts in its FFN slots. */
export const CAPACITY_TRUNK = { dim: 32, layers: 2, heads: 2, kvHeads: 1, vocab: 512, batch: 32, seqLen: 64 } as const;
export const CAPACITY_MEMORY = { numKeys: 256, heads: 2, topK: 8, keyDim: 16 } as const;

export interface CapacityRunSpec {
  model: CapacityModel;
  /** generated entities (× the default attributes), or a facts file */
  entities?: number;
  factsFile?: string;
  /** facts' seed (data.capacity.seed): the same facts for every model and training seed */
  dataSeed?: number;
  /** model init s, data order s + 4 */
  seed: number;
  lr: number;
  steps: number;
  /** questions asked at the end (default 1,200) */
  questions?: number;
  /** the memory models' layer changed from CAPACITY_MEMORY (bench --knobs) */
  knobs?: MemoryKnobs;
  out: string;
}

/**
 * What limits the memory model (issue 16): its layer's knobs, changed one run at a time.
 * valueLrScale multiplies the values' rate (default 1: the trunk's lr; PKM's 2× stays on top).
 */
export interface MemoryKnobs {
  valueLrScale?: number;
  topK?: number;
  heads?: number;
  /** query / product-key width (halves per sub-key): heads 4 at keyDim 8 costs what heads 2 at 16 does */
  keyDim?: number;
}
const KNOB_NAMES = ['valueLrScale', 'topK', 'heads', 'keyDim'] as const;

/** The models with a memory layer (the ones --knobs can change). */
export const isMemoryModel = (m: CapacityModel): boolean => m === 'memory' || m === 'memoryPlus';

/** A flag's list items: split by `sep`, trimmed, empty ones dropped. */
const items = (text: string, sep: string): string[] =>
  text
    .split(sep)
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * `--knobs "valueLrScale=10;topK=32;heads=4,topK=4"`: knob sets split by ';', each a comma list of
 * name=value. Unknown names, non-positive values and fractional topK / heads are refused by name.
 */
export function parseKnobs(text: string): MemoryKnobs[] {
  return items(text, ';').map((set) => {
    const k: MemoryKnobs = {};
    for (const part of set.split(',').map((s) => s.trim())) {
      const [name, value, ...rest] = part.split('=');
      if (rest.length || value === undefined) throw new Error(`--knobs: expected name=value, got '${part}'`);
      if (!(KNOB_NAMES as readonly string[]).includes(name!))
        throw new Error(`--knobs: unknown knob '${name}' (one of ${KNOB_NAMES.join(', ')})`);
      const x = Number(value);
      if (!Number.isFinite(x) || x <= 0) throw new Error(`--knobs: ${name} must be a positive number, got '${value}'`);
      if (name !== 'valueLrScale' && !Number.isInteger(x)) throw new Error(`--knobs: ${name} must be an integer, got '${value}'`);
      k[name as (typeof KNOB_NAMES)[number]] = x;
    }
    return k;
  });
}

/**
 * `--curve-knobs "memoryPlus:valueLrScale=10,topK=32;memory:topK=32"`: one knob set per memory
 * model, applied to its LR sweep and curve runs (the layer it is measured at, not a variant).
 * Models split by ';'; a model without a memory layer, or named twice, is refused by name.
 */
export function parseModelKnobs(text: string): Partial<Record<CapacityModel, MemoryKnobs>> {
  const out: Partial<Record<CapacityModel, MemoryKnobs>> = {};
  for (const part of items(text, ';')) {
    const at = part.indexOf(':');
    if (at < 0) throw new Error(`--curve-knobs: expected model:name=value,..., got '${part}'`);
    const model = part.slice(0, at).trim();
    if (!(CAPACITY_MODELS as readonly string[]).includes(model) || !isMemoryModel(model as CapacityModel))
      throw new Error(`--curve-knobs: '${model}' is not a memory model (one of ${CAPACITY_MODELS.filter(isMemoryModel).join(', ')})`);
    if (out[model as CapacityModel]) throw new Error(`--curve-knobs: ${model} is named twice`);
    let sets: MemoryKnobs[];
    try {
      sets = parseKnobs(part.slice(at + 1));
    } catch (e) {
      throw new Error((e as Error).message.replace('--knobs:', `--curve-knobs (${model}):`));
    }
    if (sets.length !== 1) throw new Error(`--curve-knobs: ${model} needs one knob set, got '${part.slice(at + 1)}'`);
    out[model as CapacityModel] = sets[0]!;
  }
  return out;
}

/** Each knob as words for tables (`valueLr ×10, topK 32`) and as a run-directory tag (`vlr10-k32`). */
const KNOB_WORDS: Record<(typeof KNOB_NAMES)[number], [label: string, tag: string]> = {
  valueLrScale: ['valueLr ×', 'vlr'],
  topK: ['topK ', 'k'],
  heads: ['heads ', 'h'],
  keyDim: ['keyDim ', 'kd'],
};
const knobWords = (k: MemoryKnobs, which: 0 | 1) =>
  KNOB_NAMES.filter((n) => k[n] !== undefined).map((n) => `${KNOB_WORDS[n][which]}${k[n]}`);
export const knobsLabel = (k: MemoryKnobs): string => knobWords(k, 0).join(', ') || 'defaults';
export const knobsTag = (k: MemoryKnobs): string => knobWords(k, 1).join('-') || 'default';

/** The trainer config of one run: its model at lr (the memory models' values at the same lr, PKM at 2×, as the presets). */
export function capacityConfig(s: CapacityRunSpec): TrainerConfig {
  if (!(CAPACITY_MODELS as readonly string[]).includes(s.model)) {
    throw new ConfigError('--models', `unknown model '${s.model}'; choose from ${CAPACITY_MODELS.join(', ')}`);
  }
  const isMemory = isMemoryModel(s.model);
  if (s.knobs && !isMemory) throw new ConfigError('--knobs', `model '${s.model}' has no memory layer to change`);
  const { dim: D, layers, heads, kvHeads, vocab, batch, seqLen } = CAPACITY_TRUNK;
  const valueLr = (s.model === 'memory' ? 2 * s.lr : s.lr) * (s.knobs?.valueLrScale ?? 1);
  const ffn: string[] = Array.from({ length: layers }, () => (s.model === 'moe' ? 'moe' : 'dense'));
  if (isMemory) ffn[layers - 1] = s.model;
  const steps = s.steps;
  return parseTrainerConfig({
    name: `${s.model}`,
    model: {
      dim: D,
      layers,
      heads,
      kvHeads,
      ffnHidden: 4 * D,
      maxSeqLen: seqLen,
      ffn,
      moe: { experts: 4, hidden: 2 * D },
      memory: {
        ...CAPACITY_MEMORY,
        ...(s.knobs?.topK !== undefined ? { topK: s.knobs.topK } : {}),
        ...(s.knobs?.heads !== undefined ? { heads: s.knobs.heads } : {}),
        ...(s.knobs?.keyDim !== undefined ? { keyDim: s.knobs.keyDim } : {}),
        queryNorm: 'qknorm',
        valueLr,
        valueOptimizer: 'adam',
      },
      seed: s.seed,
    },
    tokenizer: { vocabSize: vocab },
    data: {
      facts: 0,
      capacity: { ...(s.factsFile ? { factsFile: s.factsFile } : { entities: s.entities }), seed: s.dataSeed ?? 1 },
    },
    train: {
      steps,
      batch,
      seqLen,
      lr: s.lr,
      warmup: Math.min(100, Math.ceil(steps / 20)),
      // periodic evaluations cost time and tell nothing here: one in the middle; checkpoints ~4 per run (resumable)
      evalEvery: Math.max(1, Math.ceil(steps / 2)),
      checkpointEvery: Math.max(1, Math.ceil(steps / 4)),
      logEvery: Math.max(10, Math.ceil(steps / 50)),
      seed: s.seed + 4,
    },
    eval: { maxQuestions: s.questions ?? 1200, periodicQuestions: 20, valWindows: 8, answerTokens: 6 },
    out: s.out,
  });
}

/** The facts a spec trains on (what the trainer's prepareData builds for data.capacity). */
export function capacityFacts(s: Pick<CapacityRunSpec, 'entities' | 'factsFile' | 'dataSeed'>): CapacityFacts {
  if (s.factsFile) return readCapacityFactsFile(s.factsFile, s.dataSeed ?? 1);
  if (!s.entities) throw new ConfigError('--entities', 'give the number of entities or a facts file');
  return generateCapacityFacts({ entities: s.entities, seed: s.dataSeed ?? 1 });
}

/**
 * Training steps that show each fact `exposures` times: the text tokenized as the trainer will
 * (BPE of CAPACITY_TRUNK.vocab trained on it); the attribute with the fewest templates sets the pace.
 */
export function capacitySteps(
  facts: CapacityFacts,
  templatesPerAttribute: number,
  exposures: number,
): { steps: number; textTokens: number } {
  const tok = BpeTokenizer.train([facts.trainText], { vocabSize: CAPACITY_TRUNK.vocab });
  const textTokens = tok.encode(facts.trainText).length;
  const { batch, seqLen } = CAPACITY_TRUNK;
  return { steps: stepsForExposures({ textTokens, exposures, templates: templatesPerAttribute, batch, seqLen }), textTokens };
}

export interface CapacityPoint {
  model: string;
  facts: number;
  seed: number;
  lr: number;
  /** Σ bits of the facts trained */
  totalBits: number;
  bits: number;
  recall: number;
  denseParams: number;
  memoryParams: number;
  flopsPerToken: number;
  trainFlops: number;
  bitsPerDenseParam: number;
  /** null without memory */
  bitsPerMemoryParam: number | null;
  bitsPerGflop: number;
  usage?: UsageReport;
}

/** Stored bits of a finished run (its row's right answers per attribute, scaled to all facts). */
export function capacityPoint(
  row: CompareRow,
  facts: CapacityFacts,
  spec: { model: string; seed: number; lr: number; steps: number },
): CapacityPoint {
  if (!row.byAttribute) throw new Error(`run ${row.name}: its final evaluation has no per-attribute answers (not a data.capacity run?)`);
  const { bits } = bitsFromCounts(row.byAttribute, facts.stats, facts.factsPer);
  const trainFlops = 3 * row.flopsPerToken * spec.steps * CAPACITY_TRUNK.batch * CAPACITY_TRUNK.seqLen;
  return {
    model: spec.model,
    facts: facts.facts.length,
    seed: spec.seed,
    lr: spec.lr,
    totalBits: facts.totalBits,
    bits,
    recall: row.recall ?? Number.NaN,
    denseParams: row.denseParams,
    memoryParams: row.memoryParams,
    flopsPerToken: row.flopsPerToken,
    trainFlops,
    bitsPerDenseParam: bits / row.denseParams,
    bitsPerMemoryParam: row.memoryParams ? bits / row.memoryParams : null,
    bitsPerGflop: bits / (trainFlops / 1e9),
    ...(row.usage ? { usage: row.usage } : {}),
  };
}

/** Each model's learning rate with the most stored bits (ties: the first in `points`). */
export function bestLr(points: readonly CapacityPoint[]): Record<string, number> {
  const best: Record<string, CapacityPoint> = {};
  for (const p of points) if (!best[p.model] || p.bits > best[p.model]!.bits) best[p.model] = p;
  return Object.fromEntries(Object.entries(best).map(([m, p]) => [m, p.lr]));
}

/**
 * Fixed learning rates from `--lr dense=1e-2,memoryPlus=3e-2`: models named here skip the sweep
 * (e.g. rates an earlier sweep chose). Unknown models and non-positive rates are refused by name.
 */
export function parseModelRates(text: string): Partial<Record<CapacityModel, number>> {
  const out: Partial<Record<CapacityModel, number>> = {};
  for (const part of items(text, ',')) {
    const [name, value, ...rest] = part.split('=');
    if (rest.length || value === undefined) throw new Error(`--lr: expected model=rate, got '${part}'`);
    if (!(CAPACITY_MODELS as readonly string[]).includes(name!))
      throw new Error(`--lr: unknown model '${name}' (one of ${CAPACITY_MODELS.join(', ')})`);
    const lr = Number(value);
    if (!Number.isFinite(lr) || lr <= 0) throw new Error(`--lr: rate of ${name} must be a positive number, got '${value}'`);
    out[name as CapacityModel] = lr;
  }
  return out;
}

/**
 * The knee of a bits-vs-facts curve (points sorted by facts, one per count). The curve starts at
 * the origin (no facts, no bits), so the first slope is bits per fact at the smallest count; the
 * knee is the first segment between measured counts whose slope (Δbits / Δfacts) is below half of it. A curve flat
 * or falling from its smallest count bends there; null when it never bends that much (still
 * growing at the largest count) or has under two points.
 */
export function knee(curve: readonly { facts: number; bits: number }[]): { from: number; to: number } | null {
  const pts = [...curve].sort((a, b) => a.facts - b.facts);
  if (pts.length < 2 || pts[0]!.facts <= 0) return null;
  const first = pts[0]!.bits / pts[0]!.facts;
  const slope = (i: number) => (pts[i + 1]!.bits - pts[i]!.bits) / (pts[i + 1]!.facts - pts[i]!.facts);
  for (let i = 0; i < pts.length - 1; i++) if (slope(i) < first / 2) return { from: pts[i]!.facts, to: pts[i + 1]!.facts };
  return null;
}

export function curveOf(
  points: readonly CapacityPoint[],
  model: string,
): { facts: number; bits: number; min: number; max: number; n: number }[] {
  const byFacts = new Map<number, number[]>();
  for (const p of points) if (p.model === model) byFacts.set(p.facts, [...(byFacts.get(p.facts) ?? []), p.bits]);
  return [...byFacts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([facts, bs]) => ({
      facts,
      bits: bs.reduce((a, b) => a + b, 0) / bs.length,
      min: Math.min(...bs),
      max: Math.max(...bs),
      n: bs.length,
    }));
}
