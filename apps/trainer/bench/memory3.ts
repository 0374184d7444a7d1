/**
 * Memory³ on synthetic facts: do facts that live ONLY in the explicit-memory store (never in any
 * training text) get answered with memory on and not with it off?
 *
 *   npm run bench:memory3 -w trainer [-- --steps1 300 --steps2 400 --facts 300 --dim 96 --reuse]
 *     → docs/benchmarks/memory3.{json,md}
 *
 *   stage 1   filler + facts A (each fact in 3 templates), no memory
 *   stage 2   facts C (fresh facts, no filler), each 64-token chunk reads 5 references retrieved by
 *             its own text from the statements of A and C (> 90% token overlap filtered),
 *             written by the current model every `refresh` steps       → the memory model
 *   dense     the stage-1 model trained the same stage-2 steps on the same text without memory
 *   eval      facts B: only in the store (statements of A, B, C written by the final model);
 *             recall = greedy answer to "The capital of X is" etc. starts with the object
 *
 * Throughput: a 64-token prompt then 192 tokens fed one per step (generation's work, the tokens
 * fixed so both arms do the same) on the memory model, retrieval every 64 tokens vs none.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BenchReport, summarize } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type MemoryHit, KnowledgeBase, type MemoryReader, embedTokens } from '@mnemo/memory3';
import { BpeTokenizer, LanguageModel, generate, loadCheckpoint, modelCounts, parseModelConfig, saveCheckpoint } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, Batcher, type FactsData, type QaPair, ReferenceMemory, generateFacts, mobyDick, sentences } from '../src/index';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    steps1: { type: 'int', min: 1, default: 300, description: 'stage-1 steps (no memory)' },
    steps2: { type: 'int', min: 1, default: 400, description: 'stage-2 steps (memory model and dense baseline each)' },
    facts: { type: 'int', min: 8, default: 300, description: 'facts in each of the sets A, B (C has 8×)' },
    dim: { type: 'int', min: 16, default: 96, description: 'model width' },
    refresh: { type: 'int', min: 1, default: 100, description: 'stage 2: rewrite the references every N steps' },
    rounds: { type: 'int', min: 1, default: 15, description: 'throughput rounds' },
    out: { type: 'string', default: 'memory3', description: 'report name under docs/benchmarks' },
    reuse: { type: 'boolean', description: 'reuse the trained models of an earlier run with the same flags (runs/memory3-*)' },
  }),
  { name: 'memory3 bench', synopsis: 'usage: npm run bench:memory3 -w trainer [-- --steps1 N --steps2 N --facts N]' },
);

const BATCH = 16;
const SEQ = 64;
const ANSWER_TOKENS = 6;
const log = (s: string) => process.stderr.write(`[memory3 bench] ${s}\n`);

function lrAt(step: number, steps: number, lr: number, warmup: number): number {
  if (step <= warmup) return (lr * step) / warmup;
  const p = (step - warmup) / Math.max(1, steps - warmup);
  return lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
}

async function train(
  model: LanguageModel,
  tokens: Int32Array,
  steps: number,
  lr: number,
  seed: number,
  refs?: ReferenceMemory,
): Promise<{ loss: number; tokensPerSec: number }> {
  const batcher = new Batcher(tokens, BATCH, SEQ, seed);
  const opt = new AdamW(model.trainableVariables(), { weightDecay: 0, clip: 1 });
  let last = 0;
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const flat = batcher.at(step - 1);
    if (refs && (step - 1) % flags.refresh === 0) await refs.refresh();
    const external = refs?.external(flat, BATCH, SEQ + 1);
    const ids = tf.tensor2d(flat, [BATCH, SEQ + 1], 'int32');
    last = opt.minimize(() => model.loss(ids, { training: true, external }), lrAt(step, steps, lr, Math.min(20, steps))).loss;
    ids.dispose();
    if (step % 50 === 0 || step === steps)
      log(`  step ${step}/${steps} loss ${last.toFixed(3)}${refs ? ` (read ${refs.lastRead}, filtered ${refs.lastFiltered})` : ''}`);
  }
  opt.dispose();
  return { loss: last, tokensPerSec: (steps * BATCH * SEQ) / ((performance.now() - t0) / 1000) };
}

const hitOf = (text: string, answer: string) => text.startsWith(answer) && !/^[\p{L}\p{N}]/u.test(text.slice(answer.length));

/** Recall on qa: greedy answer with an optional memory reader and an optional text before the prompt. */
function recall(
  model: LanguageModel,
  tok: BpeTokenizer,
  qa: QaPair[],
  opts: { reader?: MemoryReader; context?: (i: number) => string } = {},
): number {
  let hit = 0;
  qa.forEach((q, i) => {
    const prompt = `${opts.context?.(i) ?? ''}${q.prompt}`;
    const r = generate(model, tok, prompt, { maxTokens: ANSWER_TOKENS, memory: opts.reader?.session() });
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

function copyWeights(from: LanguageModel, to: LanguageModel): void {
  const src = from.namedVariables();
  for (const [name, v] of Object.entries(to.namedVariables())) v.assign(src[name]!);
}

async function main() {
  await initBackend();
  const report = new BenchReport(flags.out, {
    title: 'Memory³ explicit memory: facts only in the store, recall with memory on / off / dense / RAG',
    command: `npm run bench:memory3 -w trainer -- --steps1 ${flags.steps1} --steps2 ${flags.steps2} --facts ${flags.facts} --dim ${flags.dim}`,
    description:
      `A ${flags.dim}-wide, 4-block model (4 heads, 2 KV heads, memory blocks 0-1) trained on filler (Moby Dick sentences) + synthetic facts ` +
      `(apps/trainer/src/data/facts.ts, each fact in 3 templates). Stage 1: ${flags.steps1} steps of ${BATCH}×${SEQ} tokens on facts A ` +
      `(${flags.facts}), no memory. Stage 2: ${flags.steps2} steps on fresh facts C (${8 * flags.facts}, no filler), each 64-token window reading 5 ` +
      `references retrieved by its own text from the statements of A and C (written by the current model every ${flags.refresh} steps, > 90% ` +
      `token overlap filtered). Dense baseline: the stage-1 model trained the same ${flags.steps2} steps on the same text without memory. ` +
      `Facts B (${flags.facts}) are never in any training text (nor in the tokenizer's): their statements are only written into the store ` +
      '(A + B + C, by the final model). Recall: the greedy answer to the evaluation template ("The capital of X is") starts with the object.',
  });
  // ── data ────────────────────────────────────────────────────────────────────────────────
  const filler = sentences(mobyDick());
  const A = generateFacts({ count: flags.facts, seed: 11, filler, fillerRatio: 1 });
  const C = generateFacts({ count: 8 * flags.facts, seed: 22, fillerRatio: 0 }); // dense in facts: most windows have one to read
  const Braw = generateFacts({ count: flags.facts, seed: 33 });
  const trained = new Set([...A.facts, ...C.facts].map((f) => f.entity));
  const keepB = Braw.facts.map((f) => !trained.has(f.entity));
  const B: Pick<FactsData, 'qa' | 'factStatements'> = {
    qa: Braw.qa.filter((_, i) => keepB[i]),
    factStatements: Braw.factStatements.filter((_, i) => keepB[i]),
  };
  const tok = BpeTokenizer.train([A.trainText, C.trainText], { vocabSize: 1024 });
  const cfg = parseModelConfig({ vocabSize: tok.vocabSize, dim: flags.dim, layers: 4, heads: 4, kvHeads: 2, maxSeqLen: 256, seed: 5 });
  const model = new LanguageModel(cfg);
  const counts = modelCounts(cfg);
  log(`${(counts.denseParams / 1e6).toFixed(2)} M params; A ${A.facts.length}, B ${B.qa.length}, C ${C.facts.length} facts`);

  // ── training (or the models of an earlier run with the same flags) ─────────────────────
  const key = `${flags.steps1}-${flags.steps2}-${flags.facts}-${flags.dim}-${flags.refresh}`;
  const runDir = path.resolve('runs', `memory3-${key}`);
  if (flags.reuse && existsSync(path.join(runDir, 'dense'))) {
    const m = loadCheckpoint(path.join(runDir, 'memory'));
    const d = loadCheckpoint(path.join(runDir, 'dense'));
    log(`reusing the models in ${runDir}`);
    await evaluate(m.model, d.model, m.tokenizer, m.extra.training as Training);
    return;
  }
  const t1 = performance.now();
  const s1 = await train(model, Int32Array.from(tok.encode(A.trainText)), flags.steps1, 3e-3, 1);
  log(`stage 1: loss ${s1.loss.toFixed(3)}, ${Math.round(s1.tokensPerSec)} tok/s`);
  const dense = new LanguageModel(cfg);
  copyWeights(model, dense);
  const stage2Tokens = Int32Array.from(tok.encode(C.trainText));
  const refs = new ReferenceMemory(model, tok, [...A.factStatements, ...C.factStatements], {
    fromStep: 0,
    topK: 5,
    refreshEvery: flags.refresh,
    maxOverlap: 0.9,
    chunk: 64,
    embedLayer: 0,
  });
  const s2 = await train(model, stage2Tokens, flags.steps2, 2e-3, 2, refs);
  refs.dispose();
  log(`stage 2 (memory): loss ${s2.loss.toFixed(3)}, ${Math.round(s2.tokensPerSec)} tok/s`);
  const d2 = await train(dense, stage2Tokens, flags.steps2, 2e-3, 2);
  log(`stage 2 (dense): loss ${d2.loss.toFixed(3)}, ${Math.round(d2.tokensPerSec)} tok/s`);
  const trainSec = (performance.now() - t1) / 1000;
  const training: Training = { s1, s2, d2, trainSec };
  saveCheckpoint(path.join(runDir, 'memory'), { model, tokenizer: tok, extra: { flags, training } });
  saveCheckpoint(path.join(runDir, 'dense'), { model: dense, tokenizer: tok, extra: { flags, training } });
  await evaluate(model, dense, tok, training);

  async function evaluate(model: LanguageModel, dense: LanguageModel, tok: BpeTokenizer, t: Training): Promise<void> {
    const { s1, s2, d2, trainSec } = t;

    // ── the store: statements of A, B, C written by the final memory model ─────────────────
    const kb = KnowledgeBase.inMemory(model, tok);
    const tw = performance.now();
    const idsA = await kb.addTexts(A.factStatements);
    const idsB = await kb.addTexts(B.factStatements);
    const idsC = await kb.addTexts(C.factStatements);
    const writeMs = (performance.now() - tw) / (idsA.length + idsB.length + idsC.length);
    const reader = kb.reader();

    // retrieval quality: is the fact's own statement among the 5 hits of its question?
    const retrievalAt = (qa: QaPair[], ids: number[], embedLayer: number) => {
      const o = { ...kb.options, embedLayer };
      const layerKb = embedLayer === 0 ? kb : undefined;
      let hit = 0;
      let top1 = 0;
      const embs = layerKb ? undefined : ids.map((id) => embedTokens(model, tok.encode(kb.bank.get(id).text), o));
      qa.forEach((q, i) => {
        let hits: MemoryHit[];
        if (layerKb) hits = reader.retrieve(tok.encode(q.prompt));
        else {
          const e = embedTokens(model, tok.encode(q.prompt), o);
          hits = embs!
            .map((x, j) => ({ id: ids[j]!, score: x.reduce((s, v, d) => s + v * e[d]!, 0) }))
            .sort((a, b) => b.score - a.score)
            .slice(0, 5);
        }
        if (hits.some((h) => h.id === ids[i])) hit++;
        if (hits[0]?.id === ids[i]) top1++;
      });
      return { top5: hit / qa.length, top1: top1 / qa.length };
    };
    const retB = retrievalAt(B.qa, idsB, 0);
    const retB2 = retrievalAt(B.qa, idsB, 2); // within B only, block-2 input
    log(`retrieval B: top-5 ${retB.top5}, top-1 ${retB.top1}; layer 2 (within B): ${JSON.stringify(retB2)}`);

    // ── recall ──────────────────────────────────────────────────────────────────────────────
    const qaA = A.qa.slice(0, 200);
    const qaC = C.qa.slice(0, 200);
    const rag = (statements: string[]) => (i: number) => statements[i]!;
    const pct = (x: number) => Number((100 * x).toFixed(1));
    const rows: { set: string; qa: QaPair[]; statements: string[] }[] = [
      { set: 'B: only in the store', qa: B.qa, statements: B.factStatements },
      { set: 'C: stage-2 training text + store', qa: qaC, statements: C.factStatements },
      { set: 'A: stage-1 training text + store', qa: qaA, statements: A.factStatements },
    ];
    const recallTable: Record<string, Record<string, number>> = {};
    for (const r of rows) {
      const row = {
        facts: r.qa.length,
        'answer NLL, memory on': Number(answerNll(model, tok, r.qa, reader).toFixed(3)),
        'answer NLL, memory off': Number(answerNll(model, tok, r.qa).toFixed(3)),
        'answer NLL, dense': Number(answerNll(dense, tok, r.qa).toFixed(3)),
        'memory on %': pct(recall(model, tok, r.qa, { reader })),
        'memory off %': pct(recall(model, tok, r.qa)),
        'dense baseline %': pct(recall(dense, tok, r.qa)),
        'RAG (statement in prompt), memory model %': pct(recall(model, tok, r.qa, { context: rag(r.statements) })),
        'RAG, dense baseline %': pct(recall(dense, tok, r.qa, { context: rag(r.statements) })),
      };
      recallTable[r.set] = row;
      report.addRow({ 'fact set': r.set, ...row });
      log(`${r.set}: ${JSON.stringify(row)}`);
    }

    // ── throughput: generation with retrieval vs without (same model, interleaved) ─────────
    const gen = 192;
    let refreshMs = 0;
    let refreshes = 0;
    // the same 256 tokens fed as generation feeds them (a 64-token prompt, then one token per step),
    // so both arms do identical work; with memory, refreshed every 64 tokens as generate() does
    const seq = tok.encode(C.trainText).slice(0, 64 + gen);
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
    const on = b['memory on %']!;
    const off = b['memory off %']!;
    const nllGain = b['answer NLL, memory off']! - b['answer NLL, memory on']!;
    report.note(
      `**Verdict on facts B (only in the store):** recall ${on}% with memory on vs ${off}% off (dense baseline ${b['dense baseline %']}%, ` +
        `RAG ${b['RAG (statement in prompt), memory model %']}%); ` +
        (on > off
          ? `the store answers ${(on - off).toFixed(1)} points of B that the model cannot answer without it.`
          : 'exact-match recall does NOT show the effect at this scale.') +
        ` The answer's NLL ${nllGain > 0 ? 'drops' : 'rises'} by ${Math.abs(nllGain).toFixed(3)} nats with memory on ` +
        `(${b['answer NLL, memory off']} → ${b['answer NLL, memory on']}): ` +
        (nllGain > 0.05 ? 'the memories carry answer information the model reads.' : 'the model reads little from its memories.'),
    );
    const a = recallTable['A: stage-1 training text + store']!;
    const c = recallTable['C: stage-2 training text + store']!;
    report.note(
      `What bounds it: retrieval is not the bound (next note: the right reference is among the 5 read for most questions). The model is: ` +
        `without memory it recalls ${a['memory off %']}% of the facts it was trained on in stage 1 (A) and ${c['memory off %']}% of those of ` +
        `stage 2 (C), and with the statement in its prompt (RAG) ${b['RAG (statement in prompt), memory model %']}% of B, so at ` +
        `${(counts.denseParams / 1e6).toFixed(2)} M parameters and ${flags.steps1} + ${flags.steps2} steps of ${BATCH}×${SEQ} tokens it has ` +
        'learned neither to store facts nor to copy a fact from its context. Reading a memory needs the same circuit as copying from context ' +
        '(the query at "… is" must find the key of the object token written in the memory and copy its value), which such a model forms only ' +
        'after much longer training. The numbers are floor-level guesses (about 1 in 10 for the colour relation).',
    );
    report.set('retrieval', { B_top5: retB.top5, B_top1: retB.top1, B_withinB_block2_input: retB2 });
    report.set('throughput', {
      withRetrieval: tpsOn,
      without: tpsOff,
      ratio: tpsOn / tpsOff,
      refreshMs: perRefresh,
      paper: { with: 733, without: 1131, ratio: 0.65 },
    });
    report.set('training', { stage1: s1, stage2Memory: s2, stage2Dense: d2, seconds: trainSec, params: counts.denseParams });
    report.note(
      `Retrieval (the bound on recall with memory): B's own statement is among the 5 references its question retrieves for ${pct(retB.top5)}% of B ` +
        `(top-1 ${pct(retB.top1)}%) out of ${kb.size} stored references; embedding = mean of the token embeddings (embedLayer 0). ` +
        `Mean-pooling the stream entering block 2 instead, searched within B alone: top-5 ${pct(retB2.top5)}%, top-1 ${pct(retB2.top1)}%.`,
    );
    report.note(
      `Throughput (tokens per second through the KV-cache path: a 64-token prompt, then ${gen} tokens fed one per step as generation feeds them, median of ${flags.rounds} interleaved rounds, ` +
        `same memory model): ${Math.round(tpsOn)} tok/s with retrieval every 64 tokens vs ${Math.round(tpsOff)} without, ` +
        `${(tpsOn / tpsOff).toFixed(2)}× (paper: 733 vs 1131 tok/s, 0.65×). One refresh (embed the 64-token span, exact search over ` +
        `${kb.size} references, decode 5 memories from RAM or the reader's cache) takes ${perRefresh.toFixed(1)} ms, ` +
        `${refreshShare.toFixed(1)}% of a completion's time with retrieval (4 refreshes per 256 tokens). A token costs ` +
        `${(1000 / tpsOn).toFixed(2)} ms with retrieval vs ${(1000 / tpsOff).toFixed(2)} ms without: the rest of the gap is per token, in ` +
        'each memory block a few more small tensor ops (the memories stacked and concatenated before the context K/V, a mask built in JS); ' +
        'their 40 extra keys are few FLOPs, but at this model size fixed per-op costs dominate a decode step. The 5 memories are ' +
        "concatenated once per refresh (the reader keeps the last id lists' concatenations). The paper's 0.65× is bounded by loading " +
        'memories from disk and a per-chunk Python loop; here memories come from RAM (InMemoryBank, decoded-tensor cache), so disk does ' +
        'not enter: an on-disk bank adds its read and decode time per refresh. This shared 2-core machine is noisy: earlier runs of this ' +
        'bench gave 0.77× and 1.02×.',
    );
    report.note(
      `Training (one run each, not interleaved, on a machine shared with other jobs: compare with care): stage 1 ${Math.round(s1.tokensPerSec)} tok/s, stage 2 with memory ${Math.round(s2.tokensPerSec)} tok/s (retrieval per window + ` +
        `rewrites of ${A.factStatements.length + C.factStatements.length} references every ${flags.refresh} steps), dense stage 2 ` +
        `${Math.round(d2.tokensPerSec)} tok/s; final training loss ${s2.loss.toFixed(3)} (memory) vs ${d2.loss.toFixed(3)} (dense). ` +
        `Writing one memory: ${writeMs.toFixed(1)} ms. Total training ${trainSec.toFixed(0)} s.`,
    );
    report.write();
    reader.dispose();
    model.dispose();
    dense.dispose();
  }
}

interface Training {
  s1: { loss: number; tokensPerSec: number };
  s2: { loss: number; tokensPerSec: number };
  d2: { loss: number; tokensPerSec: number };
  trainSec: number;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
