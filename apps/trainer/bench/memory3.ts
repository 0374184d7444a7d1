/**
 * Memory³ on synthetic facts: do facts that live ONLY in the explicit-memory store (never in any
 * training text) get answered with memory on and not with it off?
 *
 *   npm run bench:memory3 -w trainer [-- --steps1 150 --steps2 3000 --facts 300 --dim 64 --perRow 3 --readK 5
 *                                        --warmRead 1000 --keep 16 --lr2 5e-3 --reuse]
 *     → docs/benchmarks/memory3.{json,md,svg}, memory3-codecs.{json,md}
 *
 *   stage 1   filler + facts A (each fact in 3 templates), no memory
 *   stage 2   reading episodes (src/data/episodes.ts): every row states `perRow` brand-new facts
 *             (fresh random entity + object) in the evaluation template, then filler; each fact's
 *             reference, in ANOTHER template, is written by the current model into a per-batch
 *             bank, and again WITH gradient inside the step (writer-grad.ts; --frozenWriter: not),
 *             so the loss trains the writer too; each 64-token row reads its own facts' references,
 *             then retrieved ones, 5 in all (> 90% token overlap filtered). The first --warmRead
 *             steps are one-fact rows reading only their own reference (a one-hop copy first).
 *             A fresh object is unknowable from parameters: its loss falls only by reading the
 *             memory                                                       → the memory model
 *   dense     the stage-1 model trained on the same episode batches without memory
 *   eval      facts B: only in the store (statements of A, B and 2000 stage-2 facts, written by the
 *             final model); recall = greedy answer to "The capital of X is" etc. starts with the object
 *
 * Throughput: a 64-token prompt then 192 tokens fed one per step (generation's work, the tokens
 * fixed so both arms do the same) on the memory model, retrieval every 64 tokens vs none.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchReport, summarize } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit, writeFileAtomic } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type MemoryHit, KnowledgeBase, type MemoryReader, embedTokens } from '@mnemo/memory3';
import {
  BpeTokenizer,
  type GenerateMemory,
  LanguageModel,
  generate,
  loadCheckpoint,
  modelCounts,
  parseModelConfig,
  saveCheckpoint,
} from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import {
  AdamW,
  Batcher,
  barChartSvg,
  type Fact,
  type FactsData,
  type QaPair,
  ReferenceMemory,
  episodeBatch,
  generateFacts,
  lossCurveSvg,
  mobyDick,
  sentences,
  statementOf,
} from '../src/index';
import { codecRecall } from './memory3-codecs';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    steps1: { type: 'int', min: 1, default: 150, description: 'stage-1 steps (no memory)' },
    steps2: { type: 'int', min: 1, default: 3000, description: 'stage-2 steps (memory model and dense baseline each)' },
    facts: { type: 'int', min: 8, default: 300, description: 'facts in each of the sets A, B' },
    dim: { type: 'int', min: 16, default: 64, description: 'model width' },
    perRow: { type: 'int', min: 1, default: 3, description: 'stage 2: fresh facts per 64-token row' },
    warmRead: {
      type: 'int',
      min: 0,
      default: 1000,
      description:
        'stage 2: the first N steps are one-fact rows reading only their own reference (a one-hop copy), then --perRow / --readK',
    },
    readK: {
      type: 'int',
      min: 1,
      default: 5,
      description: 'stage 2: references each row reads (its own facts first, then retrieved; paper: 5)',
    },
    keep: { type: 'int', min: 1, default: 16, description: 'tokens the writer keeps per block and KV head (paper: 8)' },
    lr2: { type: 'string', default: '5e-3', description: 'stage-2 peak learning rate' },
    retrieveOnly: {
      type: 'boolean',
      description: "stage 2: rows read only retrieved references (default: their own facts' first, then retrieved)",
    },
    inContext: {
      type: 'number',
      min: 0,
      max: 1,
      default: 0,
      description: "stage 2: fraction of the facts whose reference is also written earlier in the row's own text (0-1)",
    },
    frozenWriter: {
      type: 'boolean',
      description: 'stage 2: write the memories without gradient (the loss trains only the reading queries; an ablation)',
    },
    probeEvery: {
      type: 'int',
      min: 0,
      default: 0,
      description: 'stage 2: every N steps, log own-reference and RAG recall on 100 B facts (0: never)',
    },
    rounds: { type: 'int', min: 1, default: 9, description: 'throughput rounds' },
    out: { type: 'string', default: 'memory3', description: 'report name under docs/benchmarks' },
    reuse: { type: 'boolean', description: 'reuse the trained models of an earlier run with the same flags (runs/memory3-*)' },
  }),
  { name: 'memory3 bench', synopsis: 'usage: npm run bench:memory3 -w trainer [-- --steps1 N --steps2 N --facts N --dim D]' },
);

const BATCH = 16;
const SEQ = 64;
const W = SEQ + 1;
const ANSWER_TOKENS = 6;
const REF_TEMPLATE = 2; // the references' template: few tokens in common with template 0, so the 90% overlap filter keeps them
const STORE_C = 2000; // stage-2 facts whose references go into the evaluation store (the first batches')
/** stage-2 step `step` is one of the first --warmRead: one fact per row, reading only its own reference */
const warmStep = (step: number) => step <= flags.warmRead;
/** stage 2 writes each batch's memories again on the tape (writer-grad.ts) unless --frozenWriter */
const writeGrad = !flags.frozenWriter;
const log = (s: string) => process.stderr.write(`[memory3 bench] ${s}\n`);

function lrAt(step: number, steps: number, lr: number, warmup: number): number {
  if (step <= warmup) return (lr * step) / warmup;
  const p = (step - warmup) / Math.max(1, steps - warmup);
  return lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
}

interface StageStats {
  loss: number;
  tokensPerSec: number;
  /** (step, mean loss of the last 25 steps) */
  curve: [number, number][];
  /** stage 2 with memory: fraction of the row's facts whose own reference the row read */
  ownRead?: number;
  /** references dropped by the overlap filter, per batch */
  filtered?: number;
}

/**
 * `steps` AdamW steps on batches `batch(step)`; with `memory`, each batch's references are written
 * by the current model into a fresh bank and every row reads the 5 its text retrieves.
 */
async function train(
  model: LanguageModel,
  batch: (step: number) => { ids: Int32Array; references?: string[]; facts?: Fact[][] },
  steps: number,
  lr: number,
  memory: boolean,
  probe?: (step: number) => Promise<void>,
): Promise<StageStats> {
  const opt = new AdamW(model.trainableVariables(), { weightDecay: 0, clip: 1 });
  let last = 0;
  let own = 0;
  let ownOf = 0;
  let filtered = 0;
  const window: number[] = [];
  const curve: [number, number][] = [];
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const b = batch(step);
    let refs: ReferenceMemory | undefined;
    let external: ReturnType<ReferenceMemory['external']> | undefined;
    if (memory && b.references) {
      refs = new ReferenceMemory(model, tokenizer, b.references, {
        fromStep: 0,
        topK: warmStep(step) ? 1 : flags.readK,
        refreshEvery: 1,
        maxOverlap: 0.9,
        chunk: SEQ,
        embedLayer: 0,
        tokens: flags.keep,
      });
      await refs.refresh();
      const per = b.facts![0]!.length;
      const include = flags.retrieveOnly ? undefined : b.facts!.map((_, r) => b.references!.slice(r * per, (r + 1) * per));
      external = refs.external(b.ids, BATCH, W, include);
      filtered += refs.lastFiltered;
      refs.lastTable.forEach((row, r) => {
        const read = new Set(row[0]!.map((id) => refs!.textOf(id)));
        for (let i = 0; i < per; i++) if (read.has(b.references![r * per + i]!)) own++;
        ownOf += per;
      });
    }
    const ids = tf.tensor2d(b.ids, [BATCH, W], 'int32');
    let trainable: ReturnType<ReferenceMemory['withGradient']> | undefined;
    last = opt.minimize(
      () => {
        trainable = writeGrad ? refs?.withGradient() : undefined; // on the tape: the loss reaches the writer
        return model.loss(ids, { training: true, external: trainable ? trainable.external : external });
      },
      lrAt(step, steps, lr, Math.min(50, steps)),
    ).loss;
    trainable?.dispose();
    ids.dispose();
    refs?.dispose();
    window.push(last);
    if (window.length > 25) window.shift();
    if (step % 25 === 0 || step === steps) curve.push([step, window.reduce((s, x) => s + x, 0) / window.length]);
    if (probe && flags.probeEvery > 0 && step % flags.probeEvery === 0) await probe(step);
    if (step % 50 === 0 || step === steps)
      log(
        `  step ${step}/${steps} loss ${last.toFixed(3)}${memory ? ` (own reference read ${(own / Math.max(1, ownOf)).toFixed(3)})` : ''}`,
      );
  }
  opt.dispose();
  const tokensPerSec = (steps * BATCH * SEQ) / ((performance.now() - t0) / 1000);
  return memory
    ? { loss: last, tokensPerSec, curve, ownRead: own / Math.max(1, ownOf), filtered: filtered / steps }
    : { loss: last, tokensPerSec, curve };
}

const hitOf = (text: string, answer: string) => text.startsWith(answer) && !/^[\p{L}\p{N}]/u.test(text.slice(answer.length));

/** Recall on qa: greedy answer with an optional memory reader and an optional text before the prompt. */
function recall(
  model: LanguageModel,
  tok: BpeTokenizer,
  qa: QaPair[],
  opts: { reader?: MemoryReader; memory?: (i: number) => GenerateMemory; context?: (i: number) => string } = {},
): number {
  let hit = 0;
  qa.forEach((q, i) => {
    const prompt = `${opts.context?.(i) ?? ''}${q.prompt}`;
    const memory = opts.memory?.(i) ?? opts.reader?.session();
    const r = generate(model, tok, prompt, { maxTokens: ANSWER_TOKENS, memory });
    if (hitOf(r.text.trimStart(), q.answer)) hit++;
  });
  return hit / qa.length;
}

/**
 * Mean negative log-likelihood (nats) of the answer's tokens after the prompt: the same memories
 * generation would read (retrieved by the prompt's own text), or none.
 */
function answerNll(model: LanguageModel, tok: BpeTokenizer, qa: QaPair[], reader?: MemoryReader): number {
  let sum = 0;
  let n = 0;
  for (const q of qa) {
    const p = tok.encode(q.prompt);
    const all = tok.encode(`${q.prompt} ${q.answer}`);
    const k = all.length - p.length; // answer tokens (the boundary may merge: counted from the end)
    if (k < 1) continue;
    const external = reader ? reader.external(reader.retrieve(p).map((h) => h.id)) : undefined;
    sum += tf.tidy(() => {
      const logits = model.forward(tf.tensor2d([all], [1, all.length], 'int32'), { external }).logits; // [1, T, V]
      const lp = tf.logSoftmax(tf.slice(logits, [0, all.length - 1 - k, 0], [1, k, tok.vocabSize])) as tf.Tensor3D; // [1, k, V]
      const target = tf.oneHot(tf.tensor1d(all.slice(all.length - k), 'int32'), tok.vocabSize);
      return -tf.sum(tf.mul(tf.reshape(lp, [k, tok.vocabSize]), target)).dataSync()[0]!;
    });
    n += k;
  }
  return sum / n;
}

/** Generation memory that reads only fact i's own stored reference, as if retrieval were perfect. */
const ownReference = (reader: MemoryReader, ids: number[]) => (i: number) => ({ every: SEQ, refresh: () => reader.external([ids[i]!]) });

function copyWeights(from: LanguageModel, to: LanguageModel): void {
  const src = from.namedVariables();
  for (const [name, v] of Object.entries(to.namedVariables())) v.assign(src[name]!);
}

/** The evaluation prompt of a fact: its template 0 cut right before the object (which ends it). */
function qaOf(f: Fact): QaPair {
  const s = statementOf(f, 0);
  return { prompt: ` ${s.slice(0, s.length - f.object.length - 1).trimEnd()}`, answer: f.object };
}

let tokenizer: BpeTokenizer;

async function main() {
  await initBackend();
  const load = os.loadavg();
  const report = new BenchReport(flags.out, {
    title: 'Memory³ explicit memory: facts only in the store, recall with memory on / off / dense / RAG',
    command:
      `npm run bench:memory3 -w trainer -- --steps1 ${flags.steps1} --steps2 ${flags.steps2} --facts ${flags.facts} --dim ${flags.dim}` +
      ` --perRow ${flags.perRow} --keep ${flags.keep} --lr2 ${flags.lr2}` +
      `${flags.inContext === 0 ? '' : ` --inContext ${flags.inContext}`} --readK ${flags.readK} --warmRead ${flags.warmRead}${flags.frozenWriter ? ' --frozenWriter' : ''}`,
    description:
      `A ${flags.dim}-wide, 4-block model (4 heads, 2 KV heads, memory blocks 0-1, ${flags.keep} tokens kept per block and KV head). ` +
      `Stage 1: ${flags.steps1} steps of ${BATCH}×${SEQ} tokens of filler (Moby Dick sentences) + facts A (${flags.facts}, each in 3 templates), no memory. ` +
      `Stage 2 (learning to read): ${flags.steps2} steps of reading episodes (apps/trainer/src/data/episodes.ts)` +
      `${flags.warmRead === 0 ? '' : ` (the first ${flags.warmRead}: one fact per row, reading only its own reference, a one-hop copy with no entity to match)`}: every 64-token row states ` +
      `${flags.perRow} brand-new facts (fresh random entity and object, each seen once in all of training) in the evaluation template ` +
      '("The capital of X is Y."), then filler; each fact\'s reference in another template ("In X, the seat of power is Y.") is written by the current ' +
      `model, ${writeGrad ? 'WITH gradient (written again on the tape inside each step: the loss trains the writer too)' : 'without gradient'}, into a bank of that batch's ${BATCH * flags.perRow} references; every row reads ${flags.readK} references: ${flags.retrieveOnly ? 'those its text retrieves' : "its own facts' first, then those its text retrieves"} ` +
      '(> 90% token overlap filtered). Parameters cannot know a fresh object: its loss falls only by reading the memory. ' +
      `Dense baseline: the stage-1 model trained on the same ${flags.steps2} batches without memory. ` +
      `Facts B (${flags.facts}) are never in any training text (nor in the tokenizer's; no stage-2 entity is a B entity): their statements ` +
      `(template "In X, the seat of power is Y.", as every stored reference) are only written into the store (A + B + the references of the first ${STORE_C} stage-2 facts, C, by the final model). ` +
      'Recall: the greedy answer to the evaluation template ("The capital of X is") starts with the object.',
  });
  // ── data ────────────────────────────────────────────────────────────────────────────────
  const filler = sentences(mobyDick());
  const A = generateFacts({ count: flags.facts, seed: 11, filler, fillerRatio: 1 });
  const T = generateFacts({ count: 2000, seed: 22, fillerRatio: 0 }); // tokenizer text only: facts of the stage-2 kind
  const Braw = generateFacts({ count: flags.facts, seed: 33 });
  const trained = new Set([...A.facts, ...T.facts].map((f) => f.entity));
  const keepB = Braw.facts.map((f) => !trained.has(f.entity));
  const B: Pick<FactsData, 'qa' | 'factStatements' | 'facts'> = {
    qa: Braw.qa.filter((_, i) => keepB[i]),
    factStatements: Braw.factStatements.filter((_, i) => keepB[i]),
    facts: Braw.facts.filter((_, i) => keepB[i]),
  };
  const bEntities = new Set(B.facts.map((f) => f.entity));
  const tok = BpeTokenizer.train([A.trainText, T.trainText], { vocabSize: 1024 });
  tokenizer = tok;
  const episodes = (step: number) =>
    episodeBatch(
      {
        rows: BATCH,
        width: W,
        factsPerRow: warmStep(step) ? 1 : flags.perRow,
        filler,
        seed: 100_000 + step,
        exclude: bEntities,
        referenceTemplate: REF_TEMPLATE,
        inContext: flags.inContext,
      },
      (s) => tok.encode(s),
    );
  const cfg = parseModelConfig({ vocabSize: tok.vocabSize, dim: flags.dim, layers: 4, heads: 4, kvHeads: 2, maxSeqLen: 256, seed: 5 });
  const model = new LanguageModel(cfg);
  const counts = modelCounts(cfg);
  log(`${(counts.denseParams / 1e6).toFixed(2)} M params; A ${A.facts.length}, B ${B.qa.length} facts`);
  // the store's C: the first stage-2 batches' facts (each seen once in training text, in its row)
  const C: Fact[] = [];
  for (let s = 1; C.length < STORE_C && s <= flags.steps2; s++) C.push(...episodes(s).facts.flat());
  C.length = Math.min(C.length, STORE_C);
  const cStatements = C.map((f) => ` ${statementOf(f, REF_TEMPLATE)}`);
  // every stored reference states its fact in template 2 ("In X, the seat of power is Y."), unlike the rows and prompts (template 0)
  const aStatements = A.facts.map((f) => ` ${statementOf(f, REF_TEMPLATE)}`);
  const bStatements = B.facts.map((f) => ` ${statementOf(f, REF_TEMPLATE)}`);

  // ── training (or the models of an earlier run with the same flags) ─────────────────────
  const key = `${flags.steps1}-${flags.steps2}-${flags.facts}-${flags.dim}-${flags.perRow}-${flags.keep}-${flags.lr2}${flags.inContext === 0 ? '' : `-ic${flags.inContext}`}${writeGrad ? '-wg' : ''}${flags.readK === 5 ? '' : `-k${flags.readK}`}${flags.warmRead === 0 ? '' : `-w${flags.warmRead}`}`;
  const runDir = path.resolve('runs', `memory3-${key}`);
  if (flags.reuse && existsSync(path.join(runDir, 'dense'))) {
    const m = loadCheckpoint(path.join(runDir, 'memory'));
    const d = loadCheckpoint(path.join(runDir, 'dense'));
    log(`reusing the models in ${runDir}`);
    tokenizer = m.tokenizer;
    await evaluate(m.model, d.model, m.tokenizer, m.extra.training as Training);
    return;
  }
  const t1 = performance.now();
  const batcher = new Batcher(Int32Array.from(tok.encode(A.trainText)), BATCH, SEQ, 1);
  const s1 = await train(model, (step) => ({ ids: batcher.at(step - 1) }), flags.steps1, 3e-3, false);
  log(`stage 1: loss ${s1.loss.toFixed(3)}, ${Math.round(s1.tokensPerSec)} tok/s`);
  const dense = new LanguageModel(cfg);
  copyWeights(model, dense);
  const lr2 = Number(flags.lr2);
  // reading, measured as it forms: the fact's own reference alone in memory, and the statement in the prompt
  const probe = (m: LanguageModel) => async (step: number) => {
    const kb = KnowledgeBase.inMemory(m, tok, { tokens: flags.keep });
    const n = Math.min(100, B.qa.length);
    const ids = await kb.addTexts(bStatements.slice(0, n));
    const reader = kb.reader();
    const qa = B.qa.slice(0, n);
    const own = recall(m, tok, qa, { memory: ownReference(reader, ids) });
    const rag = recall(m, tok, qa, { context: (i) => bStatements[i]! });
    const off = recall(m, tok, qa);
    reader.dispose();
    log(`  probe step ${step}: B own reference ${(100 * own).toFixed(0)}%, RAG ${(100 * rag).toFixed(0)}%, off ${(100 * off).toFixed(0)}%`);
  };
  const s2 = await train(model, episodes, flags.steps2, lr2, true, probe(model));
  log(`stage 2 (memory): loss ${s2.loss.toFixed(3)}, ${Math.round(s2.tokensPerSec)} tok/s, own reference read ${s2.ownRead}`);
  const d2 = await train(dense, episodes, flags.steps2, lr2, false);
  log(`stage 2 (dense): loss ${d2.loss.toFixed(3)}, ${Math.round(d2.tokensPerSec)} tok/s`);
  const trainSec = (performance.now() - t1) / 1000;
  const training: Training = { s1, s2, d2, trainSec, load };
  saveCheckpoint(path.join(runDir, 'memory'), { model, tokenizer: tok, extra: { flags, training } });
  saveCheckpoint(path.join(runDir, 'dense'), { model: dense, tokenizer: tok, extra: { flags, training } });
  await evaluate(model, dense, tok, training);

  async function evaluate(model: LanguageModel, dense: LanguageModel, tok: BpeTokenizer, t: Training): Promise<void> {
    const { s1, s2, d2, trainSec } = t;
    const tEval = performance.now();
    const tEvalStart = Date.now();

    // ── the store: statements of A, B, C written by the final memory model ─────────────────
    const kb = KnowledgeBase.inMemory(model, tok, { tokens: flags.keep });
    const tw = performance.now();
    const idsA = await kb.addTexts(aStatements);
    const idsB = await kb.addTexts(bStatements);
    const idsC = await kb.addTexts(cStatements);
    const writeMs = (performance.now() - tw) / (idsA.length + idsB.length + idsC.length);
    const reader = kb.reader();

    // retrieval quality: is the fact's own statement among the 5 hits of its question?
    let hit5 = 0;
    let hit1 = 0;
    B.qa.forEach((q, i) => {
      const hits: MemoryHit[] = reader.retrieve(tok.encode(q.prompt));
      if (hits.some((h) => h.id === idsB[i])) hit5++;
      if (hits[0]?.id === idsB[i]) hit1++;
    });
    const retB = { top5: hit5 / B.qa.length, top1: hit1 / B.qa.length };
    log(`retrieval B: top-5 ${retB.top5}, top-1 ${retB.top1}`);

    // does the writer keep the object? fraction of (block, KV head) memories of B holding its first token
    let keptFirst = 0;
    let keptAll = 0;
    let slots = 0;
    B.facts.forEach((f, i) => {
      const e = kb.bank.get(idsB[i]!);
      const ref = tok.encode(e.text);
      const obj = tok.encode(` ${f.object}`);
      const at = ref.findIndex((_, j) => obj.every((o, d) => ref[j + d] === o));
      if (at < 0) return; // the object merged with its neighbours: not counted
      const { layers, kvHeads, tokens } = e.memory.shape;
      for (let lg = 0; lg < layers * kvHeads; lg++) {
        const kept = new Set(e.memory.positions.subarray(lg * tokens, (lg + 1) * tokens));
        if (kept.has(at + 1)) keptFirst++; // positions count the prefix as 0
        if (obj.every((_, d) => kept.has(at + 1 + d))) keptAll++;
        slots++;
      }
    });
    const refLen = bStatements.reduce((s, t) => s + tok.encode(t).length, 0) / bStatements.length;
    const keptObject = { first: keptFirst / Math.max(1, slots), all: keptAll / Math.max(1, slots), referenceTokens: refLen };
    log(`object kept: ${JSON.stringify(keptObject)}`);

    // ── recall ──────────────────────────────────────────────────────────────────────────────
    const qaA = A.qa.slice(0, 200);
    const qaC = C.slice(0, 200).map(qaOf);
    const rag = (statements: string[]) => (i: number) => statements[i]!;
    const pct = (x: number) => Number((100 * x).toFixed(1));
    const rows: { set: string; qa: QaPair[]; statements: string[]; ids: number[] }[] = [
      { set: 'B: only in the store', qa: B.qa, statements: bStatements, ids: idsB },
      { set: 'C: once in stage-2 training text + store', qa: qaC, statements: cStatements.slice(0, 200), ids: idsC },
      { set: 'A: stage-1 training text + store', qa: qaA, statements: aStatements, ids: idsA },
    ];
    // the fact's own reference alone, as if retrieval were perfect (the reading skill without retrieval's misses)
    const own = (ids: number[]) => ownReference(reader, ids);
    const recallTable: Record<string, Record<string, number>> = {};
    for (const r of rows) {
      const row = {
        facts: r.qa.length,
        'answer NLL, memory on': Number(answerNll(model, tok, r.qa, reader).toFixed(3)),
        'answer NLL, memory off': Number(answerNll(model, tok, r.qa).toFixed(3)),
        'answer NLL, dense': Number(answerNll(dense, tok, r.qa).toFixed(3)),
        'memory on %': pct(recall(model, tok, r.qa, { reader })),
        'memory on, own reference only %': pct(recall(model, tok, r.qa, { memory: own(r.ids) })),
        'memory off %': pct(recall(model, tok, r.qa)),
        'dense baseline %': pct(recall(dense, tok, r.qa)),
        'RAG (statement in prompt), memory model %': pct(recall(model, tok, r.qa, { context: rag(r.statements) })),
        'RAG, dense baseline %': pct(recall(dense, tok, r.qa, { context: rag(r.statements) })),
      };
      recallTable[r.set] = row;
      report.addRow({ 'fact set': r.set, ...row });
      log(`${r.set}: ${JSON.stringify(row)}`);
    }

    // ── compression: the recall cost of each storage (memory3-codecs.ts) ────────────────────
    const codecRows = await codecRecall(model, tok, {
      keep: flags.keep,
      references: bStatements,
      training: [...aStatements, ...cStatements].slice(0, 1000),
      recallOwn: (r, ids) => recall(model, tok, B.qa, { memory: ownReference(r, ids) }),
      log,
    });
    const codecs = new BenchReport(`${flags.out}-codecs`, {
      title: 'Memory³ compression vs recall: bytes per reference and what each storage costs in recall',
      command: report.opts.command,
      description:
        `The memory model of ${flags.out}.md. Facts B (only in the store): each question reads only its own reference (retrieval left out, ` +
        "so only the storage differs), written by the final model with the kept-token count of training and with the paper's 8, then stored " +
        "f32, bf16, PQ or OPQ (codebooks trained on 1000 other references' memories, A and C; apps/trainer/bench/memory3-codecs.ts). " +
        `Full KV = every token of a 128-token chunk in all ${model.config.layers} blocks and ${model.config.heads} heads, bf16 ` +
        `(${(model.config.layers * model.config.heads * 128 * 2 * (model.config.dim / model.config.heads) * 2).toLocaleString('en-US')} bytes), ` +
        "as memory3-compression.md counts the paper's ≈160×; rel. error over the slots the reader reads.",
      startedAt: tEvalStart,
    });
    for (const r of codecRows) codecs.addRow(r);
    const f32 = codecRows.find((r) => r['kept tokens'] === flags.keep && r.codec === 'f32')!;
    for (const r of codecRows.filter((x) => x !== f32))
      codecs.note(
        `${r['kept tokens']} tokens, ${r.codec}: ${r['× vs full KV']}× smaller than full KV, ` +
          `${(f32['kv bytes/ref'] / r['kv bytes/ref']).toFixed(1)}× smaller than ${flags.keep} tokens f32; recall ` +
          `${r['recall, own reference %']}% vs ${f32['recall, own reference %']}% (${(r['recall, own reference %'] - f32['recall, own reference %']).toFixed(1)} points).`,
      );
    report.set('codecs', codecRows);

    // ── throughput: generation with retrieval vs without (same model, interleaved) ─────────
    const gen = 192;
    let refreshMs = 0;
    let refreshes = 0;
    // the same 256 tokens fed as generation feeds them (a 64-token prompt, then one token per step),
    // so both arms do identical work; with memory, refreshed every 64 tokens as generate() does
    const seq = Array.from(episodes(1).ids).slice(0, 64 + gen);
    const timed = (withMemory: boolean) => {
      const session = reader.session();
      const cache = model.newCache();
      const a = performance.now();
      let external: ReturnType<MemoryReader['external']> | undefined;
      const refresh = (t: number[]) => {
        const r0 = performance.now();
        external = session.refresh(t);
        refreshMs += performance.now() - r0;
        refreshes++;
      };
      if (withMemory) refresh(seq.slice(0, 64));
      model.prefill(seq.slice(0, 64), cache, { external });
      for (let p = 64; p < seq.length; p++) {
        if (withMemory && p % 64 === 0) refresh(seq.slice(p - 64, p));
        model.prefill([seq[p]!], cache, { external });
      }
      const sec = (performance.now() - a) / 1000;
      cache.dispose();
      return seq.length / sec;
    };
    timed(true);
    timed(false);
    const onT: number[] = [];
    const offT: number[] = [];
    refreshMs = 0;
    refreshes = 0;
    for (let i = 0; i < flags.rounds; i++) {
      onT.push(timed(true));
      offT.push(timed(false));
    }
    const tpsOn = summarize(onT).median;
    const tpsOff = summarize(offT).median;
    const perRefresh = refreshMs / Math.max(1, refreshes);
    const refreshShare = (100 * (4 * perRefresh)) / ((1000 * (64 + gen)) / tpsOn);
    report.set('recall', recallTable);
    const b = recallTable['B: only in the store']!;
    const c = recallTable['C: once in stage-2 training text + store']!;
    const a = recallTable['A: stage-1 training text + store']!;
    const on = b['memory on %']!;
    const off = b['memory off %']!;
    const nllGain = b['answer NLL, memory off']! - b['answer NLL, memory on']!;
    const shown = on >= off + 10 && on >= b['dense baseline %']! + 10;
    report.note(
      `**Verdict on facts B (only in the store):** recall ${on}% with memory on vs ${off}% off (dense baseline ${b['dense baseline %']}%, ` +
        `RAG ${b['RAG (statement in prompt), memory model %']}%): ` +
        (shown
          ? `the store answers ${(on - off).toFixed(1)} points of B that the model cannot answer without it. `
          : on > off
            ? `a gain of ${(on - off).toFixed(1)} points, too small to call the effect shown (threshold: 10 points over both off and dense). `
            : 'exact-match recall does NOT show the effect. ') +
        `The answer's NLL ${nllGain > 0 ? 'drops' : 'rises'} by ${Math.abs(nllGain).toFixed(2)} nats with memory on ` +
        `(${b['answer NLL, memory off']} → ${b['answer NLL, memory on']}).`,
    );
    report.note(
      `Why it works (or what bounds it): stage 2 makes reading the memory the only way to predict the object of a fresh fact. ` +
        (writeGrad
          ? "Each batch's memories are written again with gradient inside the step (without --frozenWriter), so the loss trains the writer's keys and values, not only the reading queries. "
          : 'The memories are written without gradient: the loss trains only the queries that read them. ') +
        (flags.warmRead > 0
          ? `The first ${flags.warmRead} stage-2 steps are one-fact rows reading only their own reference (--warmRead), a one-hop copy with no entity to match. `
          : '') +
        'Training: the row ' +
        `read its own facts' references for ${pct(s2.ownRead ?? 0)}% of the facts (the rest: not retrieved among the 5, or filtered; ` +
        `${(s2.filtered ?? 0).toFixed(1)} references filtered per batch by the > 90% overlap rule); final training loss ${s2.loss.toFixed(3)} ` +
        `with memory vs ${d2.loss.toFixed(3)} dense on the same batches (curves: memory3.svg). Evaluation: B's own statement is among the 5 references its question ` +
        `retrieves for ${pct(retB.top5)}% of B (top-1 ${pct(retB.top1)}%) out of ${kb.size} stored references (embedding = mean of the ` +
        `token embeddings, embedLayer 0), so recall with memory is bounded by about ${pct(retB.top5)}%. The writer keeps ${flags.keep} of a ` +
        `reference's ${keptObject.referenceTokens.toFixed(1)} tokens (mean, B) per block and KV head: the object's first token is kept in ` +
        `${pct(keptObject.first)}% of B's (block, KV head) memories, all its tokens in ${pct(keptObject.all)}%` +
        (flags.keep === 8 ? " (the paper's 8)." : ` (NOT the paper's 8: --keep ${flags.keep}).`) +
        ` Without memory the memory model recalls ${a['memory off %']}% of A (stage-1 facts, 3 templates each, ${flags.steps1} steps) and ` +
        `${c['memory off %']}% of C (each seen once): it stores little in its parameters. Copying from the prompt (RAG) ` +
        (b['RAG (statement in prompt), memory model %']! >= off + 10
          ? `also works (${b['RAG (statement in prompt), memory model %']}% on B)${flags.inContext === 0 ? ', though stage 2 never put a reference in the prompt: the read circuit carries over' : ''}.`
          : `is a different skill it was not trained for (${b['RAG (statement in prompt), memory model %']}% on B).`),
    );
    report.set('retrieval', { B_top5: retB.top5, B_top1: retB.top1 });
    report.set('objectKept', keptObject);
    report.set('throughput', {
      withRetrieval: tpsOn,
      without: tpsOff,
      ratio: tpsOn / tpsOff,
      refreshMs: perRefresh,
      paper: { with: 733, without: 1131, ratio: 0.65 },
    });
    report.set('training', {
      stage1: s1,
      stage2Memory: s2,
      stage2Dense: d2,
      seconds: trainSec,
      params: counts.denseParams,
      loadavg: t.load,
    });
    report.note(
      `Throughput (tokens per second through the KV-cache path: a 64-token prompt, then ${gen} tokens fed one per step as generation feeds them, ` +
        `median of ${flags.rounds} interleaved rounds, same memory model): ${Math.round(tpsOn)} tok/s with retrieval every 64 tokens vs ` +
        `${Math.round(tpsOff)} without, ${(tpsOn / tpsOff).toFixed(2)}× (paper: 733 vs 1131 tok/s, 0.65×). One refresh (embed the 64-token ` +
        `span, exact search over ${kb.size} references, decode 5 memories from RAM or the reader's cache) takes ${perRefresh.toFixed(1)} ms, ` +
        `${refreshShare.toFixed(1)}% of a completion's time with retrieval (4 refreshes per 256 tokens); the rest of the gap is per token ` +
        '(in each memory block a few more small tensor ops: memories concatenated before the context K/V, a mask built in JS; at this model ' +
        "size fixed per-op costs dominate a decode step). The paper's 0.65× includes loading memories from disk; here they come from RAM " +
        '(InMemoryBank): an on-disk bank adds its read and decode time per refresh. This shared 2-core machine is noisy.',
    );
    report.note(
      `Training (one run each, not interleaved, on a machine shared with other jobs; load average at start ${t.load.map((x) => x.toFixed(2)).join(', ')}): ` +
        `stage 1 ${Math.round(s1.tokensPerSec)} tok/s, stage 2 with memory ${Math.round(s2.tokensPerSec)} tok/s (each batch's ` +
        `${BATCH * flags.perRow} references written by the current model + retrieval per row), dense stage 2 ${Math.round(d2.tokensPerSec)} tok/s. ` +
        `Writing one memory: ${writeMs.toFixed(1)} ms. Total training ${trainSec.toFixed(0)} s; this report (evaluation + throughput) ` +
        `${((performance.now() - tEval) / 1000).toFixed(0)} s more.`,
    );
    const svg = lossCurveSvg(
      [
        { name: 'stage 2, memory', points: s2.curve },
        { name: 'stage 2, dense', points: d2.curve },
      ],
      { title: 'Memory³ stage 2: training loss on reading episodes (mean of 25 steps)' },
    );
    const conditions = [
      'memory on %',
      'memory on, own reference only %',
      'memory off %',
      'dense baseline %',
      'RAG (statement in prompt), memory model %',
    ];
    const bars = barChartSvg(
      rows.map((r) => ({ name: r.set.split(':')[0]!, values: conditions.map((k) => recallTable[r.set]![k]!) })),
      ['memory on (retrieved)', 'memory on (own ref.)', 'memory off', 'dense baseline', 'RAG, memory model'],
      { title: 'Memory³: recall per fact set and condition', yLabel: 'recall %', yMax: 100 },
    );
    report.note(
      `Plots: ${flags.out}-recall.svg (recall per fact set and condition), ${flags.out}.svg (stage-2 training loss, memory vs dense).`,
    );
    const { md } = report.write();
    codecs.write();
    writeFileAtomic(path.join(path.dirname(md), `${flags.out}.svg`), svg);
    writeFileAtomic(path.join(path.dirname(md), `${flags.out}-recall.svg`), bars);
    reader.dispose();
    model.dispose();
    dense.dispose();
  }
}

interface Training {
  s1: StageStats;
  s2: StageStats;
  d2: StageStats;
  trainSec: number;
  load: number[];
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
