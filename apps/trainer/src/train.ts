/**
 * One training run: data → tokenizer → model → steps of (forward, backward, dense AdamW; the
 * memory pool updates its touched value rows inside the backward) → periodic evaluation
 * (validation loss, loss on fact text, fact recall by greedy decoding), metrics.jsonl, SVG plots,
 * checkpoints with the optimizer state and the step (the data position: batches depend only on
 * (seed, step)), and `resume` that continues exactly where the checkpoint left off.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CheckpointError, ConfigError, Progress, writeFileAtomic } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { MemoryPool, type UsageReport, saveBackgroundReads, usageHistogramSvg } from '@mnemo/memory-layer';
import {
  BACKGROUND_READS_FILE,
  BpeTokenizer,
  LanguageModel,
  type ModelCounts,
  type SaveOptions,
  generate,
  loadCheckpoint,
  modelCounts,
  resolveCheckpointDir,
  saveCheckpoint,
  DEFAULT_CHAT_TEMPLATE,
} from '@mnemo/model';
import { type ShardedPool, allReduceGradients, allReduceScalar } from '@mnemo/parallel';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from './adamw';
import { type TrainerConfig, modelConfigFor } from './config';
import { Batcher, evalWindows } from './data/batcher';
import { answerCounts, generateCapacityFacts, readCapacityFactsFile } from './data/capacity';
import { evalLine } from './eval-line';
import { readCorpus } from './data/corpus';
import { generateFacts, sentences } from './data/facts';
import { type QaPair, readQaFile } from './data/qa';
import { ReferenceMemory } from './memory3';
import { type ParallelRun, checkParallel, loadRankCheckpoint, shardedModel } from './parallel';
import { lossCurveSvg } from './plot';
import { backgroundFromText } from './teach';

export interface RunData {
  trainText: string;
  valText: string;
  /** statements of trained facts, scored one by one (loss on fact text) */
  factStatements?: string[];
  qa?: QaPair[];
}

/**
 * The run's texts: the corpus (95% train / 5% validation), with synthetic facts when asked; facts
 * without filler (fillerRatio 0) validate on held-out facts' statements instead of the corpus.
 */
export function prepareData(cfg: TrainerConfig, warn: (msg: string) => void = (m) => console.warn(m)): RunData {
  const corpus = limitCorpus(readCorpus(cfg.data.path).join('\n'), cfg, warn);
  const cut = Math.floor(corpus.length * 0.95);
  const train = corpus.slice(0, cut);
  const data: RunData = { trainText: train, valText: corpus.slice(cut) };
  if (cfg.data.facts > 0) {
    const f = generateFacts({
      count: cfg.data.facts,
      seed: cfg.data.factsSeed,
      mode: cfg.data.factsMode,
      filler: sentences(train),
      fillerRatio: cfg.data.fillerRatio,
    });
    data.trainText = f.trainText;
    // facts without filler: the corpus is not trained on, so validate on facts never seen
    if (cfg.data.fillerRatio === 0) data.valText = f.heldOutText;
    data.factStatements = f.factStatements;
    data.qa = f.qa;
  }
  const cap = cfg.data.capacity;
  if (cap) {
    // facts of known entropy only (no corpus); validation: other entities' statements (a facts
    // file has no others: its own text, so val loss is a training loss there)
    const c = cap.factsFile
      ? readCapacityFactsFile(cap.factsFile, cap.seed)
      : generateCapacityFacts({ entities: cap.entities!, seed: cap.seed });
    data.trainText = c.trainText;
    data.valText = cap.factsFile
      ? c.trainText
      : generateCapacityFacts({ entities: Math.max(8, Math.ceil(cap.entities! / 10)), seed: cap.seed ^ 0x68e1d0 }).trainText;
    data.factStatements = c.factStatements;
    data.qa = c.qa;
  }
  if (cfg.eval.qaFile) data.qa = readQaFile(cfg.eval.qaFile);
  return data;
}

/** Characters of the bundled Moby Dick used when data.maxChars is unset. */
export const BUNDLED_CHARS = 400_000;

/**
 * The corpus cut to data.maxChars. A user's text (--data / data.path) is never cut silently:
 * without data.maxChars it is trained whole; over the limit, `warn` says how much is left out.
 */
export function limitCorpus(text: string, cfg: TrainerConfig, warn: (msg: string) => void): string {
  const limit = cfg.data.maxChars ?? (cfg.data.path === undefined ? BUNDLED_CHARS : Number.POSITIVE_INFINITY);
  if (text.length <= limit) return text;
  if (cfg.data.path !== undefined) {
    const cut = text.length - limit;
    const f = (n: number) => n.toLocaleString('en-US');
    warn(
      `[trainer] warning: ${cfg.data.path} has ${f(text.length)} characters; data.maxChars = ${f(limit)} keeps the first ${f(limit)} and leaves out ${f(cut)} (${((100 * cut) / text.length).toFixed(1)}%). Raise or remove data.maxChars to train on all of it.`,
    );
  }
  return text.slice(0, limit);
}

export interface EvalResult {
  valLoss: number;
  factLoss?: number;
  recall?: number;
  questions?: number;
  /** questions that name their attribute (data.capacity): right answers per attribute */
  byAttribute?: Record<string, { n: number; correct: number }>;
  /** final evaluation of a model with memory: its first memory layer's usage on the fact statements (else validation text) */
  usage?: UsageReport;
}

export interface RunSummary {
  name: string;
  out: string;
  counts: ModelCounts;
  /** loss of every step this process ran, by step number (1-based) */
  losses: Record<number, number>;
  tokensPerSec: number;
  final?: EvalResult;
  stoppedAt: number;
}

export interface TrainOptions {
  resume?: string;
  /** stop after this step (as if killed right after its checkpoint); for tests */
  stopAfter?: number;
  quiet?: boolean;
  /** skip the final evaluation and plots (tests) */
  skipFinalEval?: boolean;
  /** passed to every saveCheckpoint (tests: crash injection) */
  checkpoint?: SaveOptions;
  /** this process is one rank of `--memory-parallel P` (parallel.ts): sharded pool, all-reduced dense gradients */
  parallel?: ParallelRun;
}

/**
 * Mean next-token loss (cross-entropy only, no MoE balance term) over sequences each scored on
 * its own (no context before its first token), weighted by predicted tokens. Sequences of equal
 * length share a batch of about 512 tokens: fixed-length validation windows and fact statements
 * of a few lengths alike.
 */
export function sequencesLoss(model: LanguageModel, seqs: Int32Array[]): number {
  const byLength = new Map<number, Int32Array[]>();
  for (const s of seqs) {
    if (s.length < 2) continue; // predicts nothing
    const group = byLength.get(s.length);
    if (group) group.push(s);
    else byLength.set(s.length, [s]);
  }
  let sum = 0;
  let n = 0;
  for (const [len, group] of byLength) {
    const perBatch = Math.max(1, Math.floor(520 / len)); // 8 windows of 65 tokens
    for (let i = 0; i < group.length; i += perBatch) {
      const chunk = group.slice(i, i + perBatch);
      const flat = new Int32Array(chunk.length * len);
      chunk.forEach((w, j) => flat.set(w, j * len));
      const l = tf.tidy(() => model.loss(tf.tensor2d(flat, [chunk.length, len], 'int32'), { aux: false }).dataSync()[0]!);
      sum += l * chunk.length * (len - 1);
      n += chunk.length * (len - 1);
    }
  }
  return n ? sum / n : Number.NaN;
}

/** Exact match per question: the greedy continuation starts with the answer (then a non-word character or the end). */
export function factAnswers(model: LanguageModel, tok: BpeTokenizer, qa: QaPair[], answerTokens: number): boolean[] {
  return qa.map((q) => {
    const text = generate(model, tok, q.prompt, { maxTokens: answerTokens, temperature: 0 }).text.trimStart();
    return text.startsWith(q.answer) && !/^[\p{L}\p{N}]/u.test(text.slice(q.answer.length));
  });
}

/** Share of questions answered right (factAnswers). */
export function factRecall(model: LanguageModel, tok: BpeTokenizer, qa: QaPair[], answerTokens: number): number {
  const hits = factAnswers(model, tok, qa, answerTokens);
  return qa.length ? hits.filter(Boolean).length / qa.length : Number.NaN;
}

export async function runTraining(cfg: TrainerConfig, opts: TrainOptions = {}): Promise<RunSummary> {
  await initBackend();
  const group = opts.parallel?.group;
  const P = group?.size ?? 1;
  const rank0 = !group || group.rank === 0; // only rank 0 writes metrics, plots, progress and the checkpoint
  let shardedPool: ShardedPool | undefined;
  if (opts.parallel) checkParallel(cfg, modelConfigFor(cfg, 512), P);
  const out = path.resolve(cfg.out);
  const ckptDir = path.join(out, 'checkpoint');
  const data = prepareData(cfg);
  let tok: BpeTokenizer;
  let model: LanguageModel;
  let startStep = 0;
  let adamState: { step: number; tensors: Record<string, tf.Tensor> } | undefined;
  const log = (s: string) => {
    if (!opts.quiet && rank0) process.stderr.write(`${s}\n`);
  };
  if (opts.resume) {
    const ranked = group ? loadRankCheckpoint(opts.resume, group) : undefined; // this rank's pool shard
    const ck = ranked ?? loadCheckpoint(opts.resume);
    shardedPool = ranked?.pool;
    const configFile = path.join(resolveCheckpointDir(opts.resume), 'config.json');
    const refuse = (msg: string): never => {
      ck.model.dispose();
      for (const t of Object.values(ck.extraTensors)) t.dispose();
      throw new CheckpointError(configFile, msg);
    };
    tok = ck.tokenizer;
    model = ck.model;
    const step = ck.extra.step;
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
      refuse(`extra.step must be a whole number of steps ≥ 0, got ${JSON.stringify(step)}`);
    }
    startStep = step as number;
    if (startStep > cfg.train.steps) {
      refuse(
        `extra.step is ${startStep}, beyond this run's train.steps ${cfg.train.steps}: nothing would be trained; resume with the config the run was started with`,
      );
    }
    const adamStep = ck.extra.adamStep;
    if (typeof adamStep !== 'number' || !Number.isSafeInteger(adamStep) || adamStep < 0 || adamStep > startStep) {
      refuse(`extra.adamStep must be a whole number in [0, step ${startStep}], got ${JSON.stringify(adamStep)}`);
    }
    adamState = { step: adamStep as number, tensors: ck.extraTensors };
    // the run must continue with what the checkpoint was trained with
    const saved = ck.extra.trainer as TrainerConfig | undefined;
    for (const [field, a, b] of [
      ['model', saved?.model, cfg.model],
      ['train.batch', saved?.train.batch, cfg.train.batch],
      ['train.seqLen', saved?.train.seqLen, cfg.train.seqLen],
      ['train.seed', saved?.train.seed, cfg.train.seed],
      ['data', saved?.data, cfg.data],
    ] as const) {
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        throw new ConfigError(
          field,
          `differs from the checkpoint's (${JSON.stringify(a)}); resume with the config the run was started with`,
        );
      }
    }
    log(`[trainer] resuming ${cfg.name} from ${opts.resume} at step ${startStep}`);
    // metrics.jsonl: drop what a killed run logged after the checkpoint, those steps run again
    if (rank0) truncateMetrics(path.join(out, 'metrics.jsonl'), startStep);
  } else {
    if (rank0) {
      mkdirSync(out, { recursive: true });
      rmSync(path.join(out, 'metrics.jsonl'), { force: true });
    }
    const t0 = performance.now();
    tok = BpeTokenizer.train([data.trainText], { vocabSize: cfg.tokenizer.vocabSize });
    log(`[trainer] ${cfg.name}: BPE vocab ${tok.vocabSize} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (opts.parallel) ({ model, pool: shardedPool } = shardedModel(modelConfigFor(cfg, tok.vocabSize), cfg, opts.parallel));
    else model = new LanguageModel(modelConfigFor(cfg, tok.vocabSize));
  }
  if (shardedPool?.cost) log(`[trainer] --memory-parallel ${P}: ${shardedPool.scheme} sharding (${shardedPool.cost.reason})`);
  const counts = modelCounts(model.config);
  const { batch, seqLen } = cfg.train;
  const trainTokens = Int32Array.from(tok.encode(data.trainText));
  const batcher = new Batcher(trainTokens, batch, seqLen, cfg.train.seed);
  const valWindows = evalWindows(Int32Array.from(tok.encode(data.valText)), seqLen, cfg.eval.valWindows);
  const factSeqs = (data.factStatements ?? []).map((t) => Int32Array.from(tok.encode(t)).slice(0, seqLen + 1));
  log(
    `[trainer] ${cfg.name}: ${(counts.denseParams / 1e6).toFixed(2)} M dense + ${(counts.memoryParams / 1e6).toFixed(2)} M memory params, ` +
      `${(counts.flopsPerToken / 1e6).toFixed(2)} MFLOPs/token, ${trainTokens.length} training tokens`,
  );

  const opt = new AdamW(model.trainableVariables(), { weightDecay: cfg.train.weightDecay, clip: cfg.train.clip });
  if (adamState) opt.load(adamState.step, adamState.tensors);
  if (adamState) for (const t of Object.values(adamState.tensors)) t.dispose();

  const metricsFile = path.join(out, 'metrics.jsonl');
  const metric = (m: Record<string, unknown>) => {
    if (rank0) appendFileSync(metricsFile, `${JSON.stringify(m)}\n`);
  };
  const lrAt = (step: number) => {
    const { lr, warmup, steps, minLrRatio } = cfg.train;
    if (step <= warmup) return (lr * step) / Math.max(1, warmup);
    const p = (step - warmup) / Math.max(1, steps - warmup);
    return lr * (minLrRatio + (1 - minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * p)));
  };
  const evaluate = (questions: number, final = false): EvalResult => {
    const r: EvalResult = { valLoss: sequencesLoss(model, valWindows) };
    const layer = final ? model.memoryLayers()[0] : undefined;
    const tracker = layer?.trackUsage();
    if (factSeqs.length) r.factLoss = sequencesLoss(model, factSeqs);
    else if (tracker) sequencesLoss(model, valWindows);
    if (tracker) {
      layer!.stopUsage();
      r.usage = tracker.report();
    }
    if (data.qa?.length) {
      const qa = data.qa.slice(0, questions);
      const hits = factAnswers(model, tok, qa, cfg.eval.answerTokens);
      r.recall = hits.filter(Boolean).length / qa.length;
      r.questions = qa.length;
      const named = qa as (QaPair & { attribute?: string })[];
      if (named.every((q) => q.attribute))
        r.byAttribute = answerCounts(named.map((q, i) => ({ attribute: q.attribute!, correct: hits[i]! })));
    }
    return r;
  };

  const losses: Record<number, number> = {};
  const lastStep = Math.min(cfg.train.steps, opts.stopAfter ?? cfg.train.steps);
  const progress = opts.quiet || !rank0 ? undefined : new Progress(lastStep - startStep, `[${cfg.name}]`, 'step');
  let trainMs = 0;
  let stepsTimed = 0;
  // Memory³ stage 2: the facts' statements as references, rewritten by the model as it trains
  const m3 = cfg.memory3;
  const refs = m3 ? new ReferenceMemory(model, tok, data.factStatements ?? [], m3) : undefined;
  for (let step = startStep + 1; step <= lastStep; step++) {
    const flat = batcher.at(step - 1);
    // --memory-parallel: this rank's B/P rows of the global batch
    const rows = batch / P;
    const mine = P > 1 ? flat.subarray(group!.rank * rows * (seqLen + 1), (group!.rank + 1) * rows * (seqLen + 1)) : flat;
    const ids = tf.tensor2d(mine, [rows, seqLen + 1], 'int32');
    const t0 = performance.now();
    let external: ReturnType<ReferenceMemory['external']> | undefined;
    let trainable: ReturnType<ReferenceMemory['withGradient']> | undefined;
    if (refs && m3 && step > m3.fromStep) {
      if (step === startStep + 1 || (step - m3.fromStep - 1) % m3.refreshEvery === 0) await refs.refresh();
      external = refs.external(flat, batch, seqLen + 1);
    }
    model.scheduleValueLr(step - 1, cfg.train.steps); // UltraMem's value-LR decay, when configured
    const { loss: own, gradNorm } = group
      ? opt.minimize(
          () => tf.div(model.loss(ids, { training: true, external }), P) as tf.Scalar, // Σ over ranks = the global mean
          lrAt(step),
          (g) => allReduceGradients(group, g),
        )
      : opt.minimize(() => {
          // Memory³ with writeGrad: the memories written again on the tape, so the loss reaches the writer
          trainable = external && m3?.writeGrad ? refs!.withGradient() : undefined;
          return model.loss(ids, { training: true, external: trainable ? trainable.external : external });
        }, lrAt(step));
    trainable?.dispose();
    const loss = group ? allReduceScalar(group, own) : own;
    model.stepMemory();
    const dt = performance.now() - t0;
    ids.dispose();
    if (step > startStep + 2) {
      trainMs += dt;
      stepsTimed++;
    }
    losses[step] = loss;
    const tps = stepsTimed ? (stepsTimed * batch * seqLen) / (trainMs / 1000) : 0;
    progress?.tick(1, `loss ${loss.toFixed(3)} ${Math.round(tps)} tok/s`);
    if (step % cfg.train.logEvery === 0 || step === lastStep) {
      metric({
        step,
        loss,
        lr: lrAt(step),
        gradNorm,
        tokensPerSec: Math.round(tps),
        ...(external && refs ? { memoriesRead: refs.lastRead, memoriesFiltered: refs.lastFiltered } : {}),
      });
    }
    if (step % cfg.train.evalEvery === 0 && step !== cfg.train.steps) {
      const ev = evaluate(cfg.eval.periodicQuestions);
      metric({ step, eval: ev });
      // on a terminal, clear the progress bar's line first; its next tick redraws it below
      log(`${process.stderr.isTTY ? '\r\x1b[2K' : ''}${evalLine(cfg.name, step, cfg.train.steps, ev)}`);
    }
    if ((step % cfg.train.checkpointEvery === 0 || step === cfg.train.steps) && !rank0) shardedPool!.save(''); // into rank 0's checkpoint
    if ((step % cfg.train.checkpointEvery === 0 || step === cfg.train.steps) && rank0) {
      saveCheckpoint(
        ckptDir,
        {
          model,
          tokenizer: tok,
          // chat_template: how mnemo-serve's /v1/chat/completions renders messages for this model
          extra: {
            step,
            adamStep: opt.step,
            trainer: cfg,
            chat_template: cfg.chatTemplate ?? DEFAULT_CHAT_TEMPLATE,
            ...(shardedPool ? { memoryParallel: { P, scheme: shardedPool.scheme } } : {}),
          },
          extraTensors: opt.state(),
        },
        opts.checkpoint,
      );
      // the final checkpoint carries the background reads sparse memory finetuning ranks slots
      // against (mnemo-train teach, the server's /v1/memory/teach); a sharded pool cannot be taught
      if (step === cfg.train.steps && model.pool instanceof MemoryPool && !shardedPool) {
        saveBackgroundReads(
          path.join(resolveCheckpointDir(ckptDir), BACKGROUND_READS_FILE),
          backgroundFromText(model, tok, data.trainText),
        );
      }
    }
  }
  const tokensPerSec = stepsTimed ? (stepsTimed * batch * seqLen) / (trainMs / 1000) : 0;
  const summary: RunSummary = { name: cfg.name, out, counts, losses, tokensPerSec, stoppedAt: lastStep };
  if (lastStep === cfg.train.steps && !opts.skipFinalEval) {
    summary.final = evaluate(cfg.eval.maxQuestions, true);
    metric({ step: lastStep, final: summary.final, tokensPerSec: Math.round(tokensPerSec), counts });
    writePlots(out, cfg.name, model, valWindows, rank0); // every rank evaluates (the pool's lookups are collectives)
    log(`[trainer] ${cfg.name}: ${JSON.stringify(summary.final)}`);
  }
  refs?.dispose();
  opt.dispose();
  model.dispose();
  return summary;
}

/** loss.svg from metrics.jsonl; memory-usage.svg (read-count histogram of the first memory layer on validation text). */
function writePlots(out: string, name: string, model: LanguageModel, windows: Int32Array[], write = true): void {
  const file = path.join(out, 'metrics.jsonl');
  if (write && existsSync(file)) {
    const lines = readLines(file);
    const train = lines.filter((m) => typeof m.loss === 'number').map((m) => [m.step as number, m.loss as number] as [number, number]);
    const val = lines
      .filter((m) => m.eval || m.final)
      .map((m) => [m.step as number, ((m.eval ?? m.final) as EvalResult).valLoss] as [number, number]);
    writeFileAtomic(
      path.join(out, 'loss.svg'),
      lossCurveSvg(
        [
          { name: 'train loss', points: train },
          { name: 'val loss', points: val },
        ],
        { title: `${name}: loss` },
      ),
    );
  }
  const layer = model.memoryLayers()[0];
  if (layer) {
    const tracker = layer.trackUsage();
    sequencesLoss(model, windows);
    layer.stopUsage();
    if (!write) return;
    writeFileAtomic(
      path.join(out, 'memory-usage.svg'),
      usageHistogramSvg(tracker.readCounts, { title: `${name}: memory slot reads on validation text`, report: tracker.report() }),
    );
  }
}

/** Keep the lines of metrics.jsonl up to `step` (rewritten atomically); no file: nothing to do. */
export function truncateMetrics(file: string, step: number): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const keep: string[] = [];
  for (const l of lines) {
    let m: { step?: unknown };
    try {
      m = JSON.parse(l) as { step?: unknown };
    } catch {
      break; // a line cut by the kill: it and anything after it go
    }
    if (typeof m.step === 'number' && m.step > step) break;
    keep.push(l);
  }
  if (keep.length !== lines.length) writeFileAtomic(file, keep.length ? `${keep.join('\n')}\n` : '');
}

/** The JSON lines of a file such as metrics.jsonl. */
export function readLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
