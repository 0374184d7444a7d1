/**
 * The compare table of issue 5: dense vs MoE vs memory vs Memory+ at matched FLOPs/token on the
 * synthetic-facts data (presets in src/presets.ts), one run, same data and tokenizer settings.
 *
 *   npm run bench -w trainer [-- --steps 400 --facts 500] [--reuse]   →   docs/benchmarks/trainer.{json,md}
 *
 * --reuse: a model whose run in runs/bench finished with exactly this config (its checkpoint's
 * trainer config) is not trained again; its final evaluation is read from metrics.jsonl. The
 * interleaved tokens/s are measured again in any case.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BenchReport, summarize } from '@mnemo/bench';
import { loadCheckpoint, mulberry32 } from '@mnemo/model';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, type CompareRow, type EvalResult, type TrainerConfig, compare, generateFacts, preset } from '../src/index';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const steps = arg('steps', 400);
const facts = arg('facts', 500);
const filler = arg('filler', 0);
const valueLr = (name: string) => (preset(name).model as { memory: { valueLr: number } }).memory.valueLr;

/**
 * Training tokens/s of each checkpoint's model measured again, interleaved: every round runs one
 * training step (forward, backward, AdamW, sparse value update) of each model on the same batch,
 * so whatever else the machine does hits all of them alike. Median step time per model.
 */
function interleavedTokensPerSec(dirs: string[], batch: number, seqLen: number, rounds: number): number[] {
  const runs = dirs.map((d) => {
    const ck = loadCheckpoint(d);
    for (const t of Object.values(ck.extraTensors)) t.dispose();
    return { model: ck.model, opt: new AdamW(ck.model.trainableVariables()) };
  });
  const r = mulberry32(5);
  const V = runs[0]!.model.config.vocabSize;
  const ids = tf.tensor2d(Int32Array.from({ length: batch * (seqLen + 1) }, () => Math.floor(r() * V)), [batch, seqLen + 1], 'int32');
  const ms = runs.map(() => [] as number[]);
  for (let round = -2; round < rounds; round++) {
    runs.forEach((x, i) => {
      const t0 = performance.now();
      x.opt.minimize(() => x.model.loss(ids, { training: true }), 1e-4);
      x.model.stepMemory();
      if (round >= 0) ms[i]!.push(performance.now() - t0);
    });
  }
  ids.dispose();
  for (const x of runs) {
    x.opt.dispose();
    x.model.dispose();
  }
  return ms.map((m) => (batch * seqLen) / (summarize(m).median / 1e3));
}

/** The finished run of `cfg` in cfg.out, when its checkpoint was trained with exactly this config. */
function finishedRun(cfg: TrainerConfig): CompareRow | null {
  const ckFile = path.join(cfg.out, 'checkpoint', 'config.json');
  const metricsFile = path.join(cfg.out, 'metrics.jsonl');
  if (!existsSync(ckFile) || !existsSync(metricsFile)) return null;
  const saved = (JSON.parse(readFileSync(ckFile, 'utf8')) as { extra?: { trainer?: unknown } }).extra?.trainer;
  if (JSON.stringify(saved) !== JSON.stringify(cfg)) return null;
  const lines = readFileSync(metricsFile, 'utf8').trim().split('\n');
  type Final = { final?: EvalResult; tokensPerSec: number; counts: { denseParams: number; memoryParams: number; flopsPerToken: number } };
  const fin = lines.map((l) => JSON.parse(l) as Final).find((m) => m.final);
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
  };
}

async function main() {
  await initBackend(); // runs reused from runs/bench train nothing here
  const names = ['dense', 'moe', 'memory', 'memoryPlus'];
  const out = path.resolve('runs', 'bench');
  const p = preset('memoryPlus', { steps, facts, fillerRatio: filler });
  // trivial baseline: answer every question with its relation's most common object
  const gen = generateFacts({ count: facts, seed: p.data.factsSeed });
  const majority = new Map<string, string>();
  for (const rel of new Set(gen.facts.map((f) => f.relation))) {
    const c = new Map<string, number>();
    for (const f of gen.facts) if (f.relation === rel) c.set(f.object, (c.get(f.object) ?? 0) + 1);
    majority.set(rel, [...c.entries()].sort((a, b) => b[1] - a[1])[0]![0]);
  }
  const nq = Math.min(p.eval.maxQuestions, gen.facts.length);
  const baseline = gen.facts.slice(0, nq).filter((f) => majority.get(f.relation) === f.object).length / nq;
  const report = new BenchReport('trainer', {
    title: 'Dense vs MoE vs memory vs Memory+ LMs on synthetic facts (matched FLOPs/token)',
    command: `npm run bench -w trainer -- --steps ${steps} --facts ${facts} --filler ${filler}`,
    description:
      `Each model: D = ${p.model.dim as number}, 4 blocks, 4 query / 2 KV heads, BPE vocab ${p.tokenizer.vocabSize}, ` +
      `${steps} steps of ${p.train.batch}×${p.train.seqLen} tokens, AdamW lr ${p.train.lr} (cosine), on ${facts} synthetic facts ` +
      `(4 relations, 3 templates each, ${filler} Moby Dick filler sentence(s) per statement). memory / Memory+: block 2 FFN → ` +
      'a product-key memory (N = 128² slots, H = 4, k = 16, dk = 64, dv = 128, QK-norm), value rows by sparse Adam ' +
      `(value LR: memory ${valueLr('memory')}, Memory+ ${valueLr('memoryPlus')}). ` +
      'MoE: 4 SwiGLU experts of hidden 2·D, top-2. Fact recall: exact match of the object from greedy decoding of the ' +
      'evaluation prompt (a training template cut before the object). Loss on fact text: each trained fact stated in ' +
      'another of its training templates, every statement scored on its own (no context from other statements), mean over ' +
      'its tokens; val loss: statements of held-out facts (never trained on; cross-entropy only, no MoE balance term). ' +
      'tfjs wasm backend, one thread.',
  });
  const rows: CompareRow[] = [];
  let reused = 0;
  for (const n of names) {
    const cfg = preset(n, { steps, facts, fillerRatio: filler, out: path.join(out, n) });
    const done = process.argv.includes('--reuse') ? finishedRun(cfg) : null;
    if (done) reused++;
    rows.push(done ?? (await compare([cfg]))[0]!);
  }
  if (reused) report.note(`--reuse: ${reused} of the models were trained by an earlier run of this command with the same config (runs/bench); tokens/s (interleaved) were measured in this run.`);
  process.stderr.write('[trainer bench] tokens/s, interleaved training steps of the four trained models\n');
  const tps = interleavedTokensPerSec(
    names.map((n) => path.join(out, n, 'checkpoint')),
    p.train.batch,
    p.train.seqLen,
    15,
  );
  const denseTps = tps[names.indexOf('dense')]!;
  for (const [i, r] of rows.entries()) {
    report.addRow({
      model: r.name,
      'dense params': r.denseParams,
      'memory params': r.memoryParams,
      'FLOPs/token': r.flopsPerToken,
      'FLOPs vs dense': Number((r.flopsPerToken / rows[names.indexOf('dense')]!.flopsPerToken).toFixed(2)),
      'tokens/s (its run)': Math.round(r.tokensPerSec),
      'tokens/s (interleaved)': Math.round(tps[i]!),
      'tokens/s vs dense': Number((tps[i]! / denseTps).toFixed(2)),
      'val loss': Number(r.valLoss.toFixed(3)),
      'val loss (fact text)': r.factLoss === null ? '–' : Number(r.factLoss.toFixed(3)),
      'fact recall %': r.recall === null ? '–' : Number((100 * r.recall).toFixed(1)),
    });
  }
  const dense = rows.find((r) => r.name === 'dense')!;
  const plus = rows.find((r) => r.name === 'memoryPlus')!;
  report.note(
    `Memory+ vs dense: fact recall ${(100 * (plus.recall ?? 0)).toFixed(1)}% vs ${(100 * (dense.recall ?? 0)).toFixed(1)}% ` +
      `(${dense.recall ? ((plus.recall ?? 0) / dense.recall).toFixed(2) : '∞'}x; target ≥ 2x); val loss on fact text ` +
      `${plus.factLoss?.toFixed(3)} vs ${dense.factLoss?.toFixed(3)} (lower: ${(plus.factLoss ?? 99) < (dense.factLoss ?? 0) ? 'yes' : 'NO'}); ` +
      `training tokens/s ${Math.round(tps[names.indexOf('memoryPlus')]!)} vs ${Math.round(denseTps)} ` +
      `(${(tps[names.indexOf('memoryPlus')]! / denseTps).toFixed(2)}x, interleaved steps in the same run) at ` +
      `${(plus.flopsPerToken / dense.flopsPerToken).toFixed(2)}x its FLOPs/token.`,
  );
  report.note(
    `Trivial baseline: answering each question with its relation's most common object scores ${(100 * baseline).toFixed(1)}% ` +
      '(flag colours come from 10 values); recall above it is memorised facts.',
  );
  report.note(
    'What mattered, 1: the value pool\'s learning rate (docs/benchmarks/trainer-sweep-memory-plus-value-lr.md, one seed). Sparse Adam ' +
      "moves every touched value element by about the learning rate per step whatever the gradient's size, and each row is " +
      'read by many different tokens: at 2e-2 (the earlier preset) and 5e-3 the stored values stay noisy and recall stays ' +
      'near 2x dense; at 1e-3–2e-3 it is 3–7x. The papers\' 1e-3 is in that range even at 400 steps.',
  );
  report.note(
    'What mattered, 2: seeds. At 400 steps memorisation starts abruptly and late, and whether it has started differs from ' +
      'seed to seed (docs/benchmarks/trainer-sweep-memory-plus-value-lr-seeds.md: model init and data order per seed; it counts in how ' +
      'many seeds Memory+ beats dense on both criteria: 1 of 3 at value LR 1e-3 and at 2e-3 when measured on 2026-11-30, ' +
      'so the result in this table is NOT robust). A Memory+ run whose memory has not taken off reads fewer slots ' +
      '(~46% of slots used on fact text vs ~57%, Gini 0.92 vs 0.88) and ends level with dense.',
  );
  report.note(
    'What mattered, 3: the dense learning rate, which all four presets share (3e-3). docs/benchmarks/trainer-sweep-dense-lr.md ' +
      'trains the dense preset at 6e-3 and 1e-2: at 1e-2 dense recalls about as many facts as Memory+ does at 3e-3. The ' +
      "presets' 3e-3 under-trains dense at 400 steps, so this table's Memory+ / dense recall ratio overstates what the " +
      'memory buys at this scale; the comparison that settles it is each model at its own best learning rate, over seeds.',
  );
  report.note(
    'What the evaluation got wrong before (and dense suffered from too): prompts and fact statements were tokenized ' +
      'without the space that precedes every statement in the training text (byte-level BPE: \' The\' ≠ \'The\'), and ' +
      'the fact-text loss ran over the statements joined in an order never trained on, so it mostly measured how each ' +
      'model had memorised the training stream\'s order. On the same checkpoints, fixing the tokenization moved Memory+ ' +
      '(value LR 5e-3) from 34.7% to 50.0% recall and dense from 4.3% to 5.3%.',
  );
  report.note(
    'Runs are deterministic (seeded init, batches by (seed, step), native kernels without atomics). "tokens/s (its run)" ' +
      'is each training run\'s own average, which other jobs on the 2 cores can skew; "tokens/s (interleaved)" times one ' +
      'training step of each model per round, so its ratios hold.',
  );
  report.write();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
