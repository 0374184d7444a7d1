/**
 * The compare table of issue 5: dense vs MoE vs memory vs Memory+ at matched FLOPs/token on the
 * synthetic-facts data (presets in src/presets.ts), one run, same data and tokenizer settings.
 *
 *   npm run bench -w trainer [-- --steps 400 --facts 1000] [--reuse]   →   docs/benchmarks/trainer.{json,md}
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
import { AdamW, type CompareRow, compare, finishedRun, generateFacts, MEMORY_BLOCKS, preset } from '../src/index';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const steps = arg('steps', 400);
const facts = arg('facts', 1000);
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

interface SweepDoc {
  command: string;
  machine: { commit: string; date: string };
  results: { label: string; seed: number | null; factLoss: number; recall: number }[];
}

/** A sweep's JSON in docs/benchmarks (written by bench/sweep.ts), or null when it was not run. */
function readSweep(name: string): SweepDoc | null {
  const f = path.resolve('..', '..', 'docs', 'benchmarks', `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as SweepDoc) : null;
}

type SweepRun = SweepDoc['results'][number];
/** recall / fact-text loss of one run */
const fmtRun = (r: SweepRun) => `${(100 * r.recall).toFixed(1)}% / ${r.factLoss.toFixed(3)}`;
/** the value a sweep run's label sets ('memoryPlus memoryBlocks=1+3' → '1+3') */
const setValue = (r: SweepRun) => r.label.split('=')[1];
/** every run of a sweep, named by name(run) */
const runs = (d: SweepDoc, name: (r: SweepRun) => string) => d.results.map((r) => `${name(r)} ${fmtRun(r)}`).join(', ');
const source = (name: string, d: SweepDoc) => `docs/benchmarks/${name}.md, commit ${d.machine.commit}`;

/** "seed s: Memory+ … vs dense …" per seed of a seeds sweep, and in how many seeds Memory+ meets both criteria */
function seedPairs(d: SweepDoc): { text: string; both: number; n: number } {
  const bySeed = new Map<number, { dense?: SweepRun; plus?: SweepRun }>();
  for (const r of d.results) {
    const e = bySeed.get(r.seed ?? 0) ?? {};
    if (r.label === 'dense') e.dense = r;
    else e.plus = r;
    bySeed.set(r.seed ?? 0, e);
  }
  const pairs = [...bySeed.entries()].filter(([, e]) => e.dense && e.plus) as [number, { dense: SweepRun; plus: SweepRun }][];
  return {
    text: pairs.map(([s, e]) => `seed ${s}: Memory+ ${fmtRun(e.plus)} vs dense ${fmtRun(e.dense)}`).join('; '),
    both: pairs.filter(([, e]) => e.plus.recall >= 2 * e.dense.recall && e.plus.factLoss < e.dense.factLoss).length,
    n: pairs.length,
  };
}

/**
 * "What mattered": read from the sweeps' own JSON (so the numbers are the docs' numbers, not
 * copies), each with the explanation the runs support.
 */
function whatMattered(presetLr: number): string[] {
  const out: string[] = [];
  const blocks = readSweep('trainer-sweep-memory-plus-memory-blocks');
  if (blocks) {
    out.push(
      `What mattered most: where the memory sits, and that there are two (one seed: ${source('trainer-sweep-memory-plus-memory-blocks', blocks)}; ` +
        `recall / fact-text loss; blocks 0–3): ${runs(blocks, (r) => (r.label === 'dense' ? 'dense' : `blocks ${setValue(r)}`))}. ` +
        'One memory block (the earlier presets put it in block 2) recalls about what dense does. A memory in block 1 sees each ' +
        "token of the entity's name after one attention layer and can store, in slots only that entity's tokens read, what " +
        'the entity is linked to; later attention layers carry it to the answer position, where the block-3 memory reads ' +
        'with a query that knows entity and relation. This is the order in which dense LMs recall facts (attributes added at ' +
        "the subject's tokens by early FFNs, then moved to the last token by attention), with the FFN replaced by sparse slots " +
        'that learn fast. Three memory blocks (1–3) leave too few dense FFNs and recall less again; a memory in block 0 ' +
        '(reading raw token embeddings) made training diverge. These are runs of the presets\' seeds: how much of the ' +
        'gap holds over other seeds is the next note.',
    );
  }
  const seeds = readSweep('trainer-sweep-memory-plus-memory-blocks-seeds');
  if (seeds) {
    const { text, both, n } = seedPairs(seeds);
    out.push(
      `Robustness over seeds (${source('trainer-sweep-memory-plus-memory-blocks-seeds', seeds)}; seed s: model init s, data order s + 4): ` +
        `${text}. Memory+ has ≥ 2x dense's recall and a lower fact-text loss in ${both} of ${n} seeds.`,
    );
  }
  const longer = readSweep('trainer-sweep-memory-plus-memory-blocks-800-steps-seeds');
  if (longer) {
    out.push(
      `Training longer (${source('trainer-sweep-memory-plus-memory-blocks-800-steps-seeds', longer)}, 800 steps): ${seedPairs(longer).text}. ` +
        'Memorising starts late and abruptly; seeds differ in when, and once both models memorise, dense catches up ' +
        '(at this size it has the capacity for 1,000 facts): the memory buys speed of memorising here, which shows as ' +
        'a large recall ratio only while dense has not yet started.',
    );
  }
  const lr = readSweep('trainer-sweep-dense-lr');
  if (lr) {
    // the reference run of the dense-LR sweep is the dense preset itself, at presetLr
    const list = runs(lr, (r) => `lr ${r.label === 'dense' ? presetLr : setValue(r)}`);
    out.push(
      `The dense model at its best learning rate (${source('trainer-sweep-dense-lr', lr)}; recall / fact-text loss): ${list}. ` +
        `All presets train at lr ${presetLr}; the comparison is not won by under-training dense (the earlier presets' 3e-3 did: ` +
        'at 500 facts a dense model at 1e-2 recalled as much as Memory+ then did).',
    );
  }
  return out;
}

async function main() {
  await initBackend(); // runs reused from runs/bench train nothing here
  const names = ['dense', 'moe', 'memory', 'memoryPlus'];
  const out = path.resolve('runs', 'bench');
  const p = preset('memoryPlus', { steps, facts, fillerRatio: filler });
  const mem = p.model.memory as { numKeys: number; heads: number; topK: number; keyDim: number; valueLr: number; valueOptimizer: string };
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
      `(4 relations, 3 templates each, ${filler} Moby Dick filler sentence(s) per statement). memory / Memory+: the FFNs of ` +
      `blocks ${MEMORY_BLOCKS.join(' and ')} → product-key memory layers reading one shared pool (N = ${mem.numKeys}² slots, ` +
      `H = ${mem.heads}, k = ${mem.topK}, dk = ${mem.keyDim}, dv = ${p.model.dim as number}, QK-norm), value rows by sparse ` +
      `${mem.valueOptimizer} (value LR: memory ${valueLr('memory')}, Memory+ ${mem.valueLr}). ` +
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
  if (reused) {
    report.note(
      `--reuse: ${reused} of the models were read back from runs/bench (trained earlier with exactly this config; training is ` +
        'deterministic, so a new run prints the same); tokens/s (interleaved) were measured in this run.',
    );
  }
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
  for (const n of whatMattered(p.train.lr)) report.note(n);
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
