/**
 * The compare table of issue 5: dense vs MoE vs memory vs Memory+ at matched FLOPs/token on the
 * synthetic-facts data (presets in src/presets.ts), same data and tokenizer settings, every model
 * trained once per seed, the table giving means over seeds.
 *
 *   npm run bench -w trainer [-- --steps 400 --facts 1000 --seeds 1,2,3,4,5,6 --jobs 2] [--reuse]
 *     →   docs/benchmarks/trainer.{json,md}
 *
 * 24 runs of ~7 min, two at a time: about 1.5 h on 2 cores.
 * --reuse: a run in runs/bench/<model>-s<seed> that finished with exactly its config (its
 * checkpoint's trainer config) is not trained again; its final evaluation is read from
 * metrics.jsonl. The interleaved tokens/s are measured again in any case.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BenchReport, summarize } from '@mnemo/bench';
import { defineFlags, mulberry32, parseArgvOrExit } from '@mnemo/core';
import { loadCheckpoint } from '@mnemo/model';
import { initBackend } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, type CompareRow, generateFacts, MEMORY_BLOCKS, preset } from '../src/index';
import { interleavedTokensPerSec, runFlags, runJobs } from './jobs';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    ...runFlags({ seeds: '1,2,3,4,5,6', runsDir: 'runs/bench' }),
    filler: { type: 'number', min: 0, default: 0, description: 'Moby Dick filler sentences per fact statement' },
  }),
  {
    name: 'trainer bench',
    synopsis: 'usage: npm run bench -w trainer [-- --steps N --facts N --filler X --seeds S,S,... --jobs N --reuse]',
  },
);
const { steps, facts, filler } = flags;
const valueLr = (name: string) => (preset(name).model as { memory: { valueLr: number } }).memory.valueLr;
/** the seeds Memory+'s value LR was chosen on (trainer-sweep-memory-plus-value-lr-seeds) */
const TUNING_SEEDS = [1, 2, 3];

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
const setValue = (r: SweepRun) => r.label.split('=')[1] ?? '';
/** sweep runs, each named by name(run) */
const runs = (rs: SweepRun[], name: (r: SweepRun) => string) => rs.map((r) => `${name(r)} ${fmtRun(r)}`).join(', ');
const source = (name: string, d: SweepDoc) => `docs/benchmarks/${name}.md, commit ${d.machine.commit}`;

/** "seed s: Memory+ … vs dense …" per seed of a seeds sweep */
function seedPairs(d: SweepDoc): string {
  const bySeed = new Map<number, { dense?: SweepRun; plus?: SweepRun }>();
  for (const r of d.results) {
    const e = bySeed.get(r.seed ?? 0) ?? {};
    if (r.label === 'dense') e.dense = r;
    else e.plus = r;
    bySeed.set(r.seed ?? 0, e);
  }
  return [...bySeed.entries()]
    .filter(([, e]) => e.dense && e.plus)
    .map(([s, e]) => `seed ${s}: Memory+ ${fmtRun(e.plus!)} vs dense ${fmtRun(e.dense!)}`)
    .join('; ');
}

/**
 * "What mattered": read from the sweeps' own JSON (so the numbers are the docs' numbers, not
 * copies), each with the explanation the runs support.
 */
function whatMattered(presetLr: number, plusValueLr: number): string[] {
  const out: string[] = [];
  const blocks = readSweep('trainer-sweep-memory-plus-memory-blocks');
  if (blocks) {
    out.push(
      `What mattered most: where the memory sits, and that there are two (the presets' seed 7 and the value LR of that commit, 2e-3: ` +
        `${source('trainer-sweep-memory-plus-memory-blocks', blocks)}; ` +
        `recall / fact-text loss; blocks 0–3): ${runs(blocks.results, (r) => (r.label === 'dense' ? 'dense' : `blocks ${setValue(r)}`))}. ` +
        'One memory block (the earlier presets put it in block 2) recalls about what dense does. A memory in block 1 sees each ' +
        "token of the entity's name after one attention layer and can store, in slots only that entity's tokens read, what " +
        'the entity is linked to; later attention layers carry it to the answer position, where the block-3 memory reads ' +
        'with a query that knows entity and relation. This is the order in which dense LMs recall facts (attributes added at ' +
        "the subject's tokens by early FFNs, then moved to the last token by attention), with the FFN replaced by sparse slots " +
        'that learn fast. Three memory blocks (1–3) leave too few dense FFNs and recall less again; a memory in block 0 ' +
        '(reading raw token embeddings) made training diverge.',
    );
  }
  const vlr = readSweep('trainer-sweep-memory-plus-value-lr-seeds');
  if (vlr) {
    const plus = vlr.results.filter((r) => r.label !== 'dense');
    const values = [...new Set(plus.map(setValue))];
    const meanRecall = (v: string, seeds: (s: number) => boolean) => {
      const rs = plus.filter((r) => setValue(r) === v && seeds(r.seed ?? 0));
      return `${((100 * rs.reduce((a, r) => a + r.recall, 0)) / rs.length).toFixed(1)}%`;
    };
    const tuning = (s: number) => TUNING_SEEDS.includes(s);
    out.push(
      `Memory+'s value LR (${source('trainer-sweep-memory-plus-value-lr-seeds', vlr)}; recall / fact-text loss by seed): ` +
        values
          .map(
            (v) =>
              `${v}: ${runs(
                plus.filter((r) => setValue(r) === v),
                (r) => `seed ${r.seed}`,
              )}`,
          )
          .join('; ') +
        `; dense: ${runs(
          vlr.results.filter((r) => r.label === 'dense'),
          (r) => `seed ${r.seed}`,
        )}. ` +
        `Mean recall over seeds ${TUNING_SEEDS.join(', ')}: ${values.map((v) => `${v} ${meanRecall(v, tuning)}`).join(', ')}; the presets use ${plusValueLr}, ` +
        `chosen on these seeds (the bench's first three). Over all ${new Set(plus.map((r) => r.seed)).size} seeds: ` +
        `${values.map((v) => `${v} ${meanRecall(v, () => true)}`).join(', ')} (seed 7, the seed the memory blocks were chosen on, ` +
        'goes the other way). Seeds move recall at 400 steps about as much as this knob does: memorising starts late and ' +
        'abruptly, and seeds differ in when. A likely reason 2e-3 is slow on most seeds: sparse Adam moves a value row by about ' +
        'the value LR per read, and in 400 steps a fact is seen only tens of times, so at 2e-3 its rows (init std D^-1/2 ≈ 0.09) ' +
        'stay close to their random start.',
    );
  }
  const longer = readSweep('trainer-sweep-memory-plus-memory-blocks-800-steps-seeds');
  if (longer) {
    out.push(
      `Training longer (${source('trainer-sweep-memory-plus-memory-blocks-800-steps-seeds', longer)}, 800 steps, value LR 2e-3): ${seedPairs(longer)}. ` +
        'Once both models memorise, dense catches up (at this size it has the capacity for 1,000 facts): the memory buys ' +
        'speed of memorising here, which shows as a large recall ratio while dense has not yet started.',
    );
  }
  const lr = readSweep('trainer-sweep-dense-lr');
  if (lr) {
    // the reference run of the dense-LR sweep is the dense preset itself, at presetLr
    const list = runs(lr.results, (r) => `lr ${r.label === 'dense' ? presetLr : setValue(r)}`);
    out.push(
      `The dense model at its best learning rate (${source('trainer-sweep-dense-lr', lr)}; recall / fact-text loss): ${list}. ` +
        `All presets train at lr ${presetLr}; the comparison is not won by under-training dense (the earlier presets' 3e-3 did: ` +
        'at 500 facts a dense model at 1e-2 recalled as much as Memory+ then did).',
    );
  }
  return out;
}

/** mean of f over rows */
const mean = (rows: CompareRow[], f: (r: CompareRow) => number) => rows.reduce((a, r) => a + f(r), 0) / rows.length;

async function main() {
  await initBackend(); // runs reused from runs/bench train nothing here
  const names = ['dense', 'moe', 'memory', 'memoryPlus'];
  const { seeds, jobs, reuse } = flags;
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
    command: `npm run bench -w trainer -- --steps ${steps} --facts ${facts} --filler ${filler} --seeds ${seeds.join(',')} --jobs ${jobs}`,
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
      `Every model is trained once per seed (${seeds.join(', ')}; seed s: model init s, data order s + 4; the data are the ` +
      `same facts for all) and the table gives the means over seeds; runs go ${jobs} at a time. tfjs wasm backend, one thread per run.`,
  });
  const dir = (n: string, s: number) => path.join(out, `${n}-s${s}`);
  const all = names.flatMap((n) =>
    seeds.map((seed) => ({ label: `${n} seed ${seed}`, cfg: preset(n, { steps, facts, fillerRatio: filler, seed, out: dir(n, seed) }) })),
  );
  const { rows: trained, reused } = await runJobs(all, { parallel: jobs, reuse, title: '[trainer bench] runs' });
  /** the runs of model n, one per seed */
  const of = (n: string) => trained.slice(names.indexOf(n) * seeds.length, (names.indexOf(n) + 1) * seeds.length);
  if (reused) {
    report.note(
      `--reuse: ${reused} of the ${all.length} runs were read back from runs/bench (trained earlier with exactly this config; training is ` +
        'deterministic, so a new run prints the same); tokens/s (interleaved) were measured in this run.',
    );
  }
  process.stderr.write(`[trainer bench] tokens/s, interleaved training steps of the four models of seed ${seeds[0]}\n`);
  const tps = interleavedTokensPerSec(
    names.map((n) => path.join(dir(n, seeds[0]!), 'checkpoint')),
    p.train.batch,
    p.train.seqLen,
    15,
  );
  const denseTps = tps[names.indexOf('dense')]!;
  const pct = (x: number) => (100 * x).toFixed(1);
  for (const [i, n] of names.entries()) {
    const rs = of(n);
    const r = rs[0]!;
    report.addRow({
      model: n,
      'dense params': r.denseParams,
      'memory params': r.memoryParams,
      'FLOPs/token': r.flopsPerToken,
      'FLOPs vs dense': Number((r.flopsPerToken / of('dense')[0]!.flopsPerToken).toFixed(2)),
      'tokens/s (its runs)': Math.round(mean(rs, (x) => x.tokensPerSec)),
      'tokens/s (interleaved)': Math.round(tps[i]!),
      'tokens/s vs dense': Number((tps[i]! / denseTps).toFixed(2)),
      'val loss': Number(mean(rs, (x) => x.valLoss).toFixed(3)),
      'val loss (fact text)': Number(mean(rs, (x) => x.factLoss ?? Number.NaN).toFixed(3)),
      'fact recall %': Number(pct(mean(rs, (x) => x.recall ?? Number.NaN))),
      'recall % by seed': rs.map((x) => pct(x.recall ?? Number.NaN)).join(' / '),
    });
  }
  const dense = of('dense');
  const plus = of('memoryPlus');
  const dr = mean(dense, (x) => x.recall ?? 0);
  const pr = mean(plus, (x) => x.recall ?? 0);
  const dl = mean(dense, (x) => x.factLoss ?? Number.NaN);
  const pl = mean(plus, (x) => x.factLoss ?? Number.NaN);
  const bySeed = seeds.map((s, j) => {
    const [a, b] = [plus[j]!, dense[j]!];
    const ok = (a.recall ?? 0) >= 2 * (b.recall ?? 0) && (a.factLoss ?? 99) < (b.factLoss ?? 0);
    return {
      ok,
      text: `seed ${s}: ${pct(a.recall ?? 0)}% / ${a.factLoss?.toFixed(3)} vs ${pct(b.recall ?? 0)}% / ${b.factLoss?.toFixed(3)}`,
    };
  });
  report.note(
    `Memory+ vs dense, means over ${seeds.length} seeds: fact recall ${pct(pr)}% vs ${pct(dr)}% (${dr ? (pr / dr).toFixed(2) : '∞'}x; target ≥ 2x); ` +
      `val loss on fact text ${pl.toFixed(3)} vs ${dl.toFixed(3)} (lower: ${pl < dl ? 'yes' : 'NO'}); ` +
      `training tokens/s ${Math.round(tps[names.indexOf('memoryPlus')]!)} vs ${Math.round(denseTps)} ` +
      `(${(tps[names.indexOf('memoryPlus')]! / denseTps).toFixed(2)}x, interleaved steps in the same run) at ` +
      `${(plus[0]!.flopsPerToken / dense[0]!.flopsPerToken).toFixed(2)}x its FLOPs/token. By seed (recall / fact-text loss, ` +
      `Memory+ vs dense): ${bySeed.map((b) => b.text).join('; ')}; ≥ 2x the recall with a lower fact-text loss in ` +
      `${bySeed.filter((b) => b.ok).length} of ${seeds.length} seeds.`,
  );
  const held = seeds.flatMap((s, j) => (TUNING_SEEDS.includes(s) ? [] : [j]));
  if (held.length) {
    const m = (rs: CompareRow[], f: (r: CompareRow) => number) => held.reduce((a, j) => a + f(rs[j]!), 0) / held.length;
    const [hp, hd] = [m(plus, (x) => x.recall ?? 0), m(dense, (x) => x.recall ?? 0)];
    report.note(
      `Seeds ${TUNING_SEEDS.join(', ')} chose Memory+'s value LR (the note on it below); seeds ${held.map((j) => seeds[j]).join(', ')} chose ` +
        `nothing. On those alone: Memory+ ${pct(hp)}% / ${m(plus, (x) => x.factLoss ?? Number.NaN).toFixed(3)} vs dense ` +
        `${pct(hd)}% / ${m(dense, (x) => x.factLoss ?? Number.NaN).toFixed(3)} (${hd ? (hp / hd).toFixed(2) : '∞'}x the recall).`,
    );
  }
  report.note(
    `Trivial baseline: answering each question with its relation's most common object scores ${pct(baseline)}% ` +
      '(flag colours come from 10 values); recall above it is memorised facts.',
  );
  for (const n of whatMattered(p.train.lr, mem.valueLr)) report.note(n);
  report.note(
    'What the evaluation got wrong before (and dense suffered from too): prompts and fact statements were tokenized ' +
      "without the space that precedes every statement in the training text (byte-level BPE: ' The' ≠ 'The'), and " +
      'the fact-text loss ran over the statements joined in an order never trained on, so it mostly measured how each ' +
      "model had memorised the training stream's order. On the same checkpoints, fixing the tokenization moved Memory+ " +
      '(value LR 5e-3) from 34.7% to 50.0% recall and dense from 4.3% to 5.3%.',
  );
  report.note(
    'Runs are deterministic (seeded init, batches by (seed, step), native kernels without atomics). "tokens/s (its runs)" ' +
      'is the mean of each training run\'s own average, which the other run sharing the 2 cores skews; "tokens/s (interleaved)" times one ' +
      'training step of each model per round, so its ratios hold.',
  );
  report.set(
    'runs',
    all.map((j, i) => ({ model: j.cfg.name, seed: j.cfg.model.seed, ...trained[i] })),
  );
  report.write();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
