/**
 * Knowledge capacity of memory vs dense models at matched FLOPs/token (src/capacity.ts): stored
 * bits against facts trained, each fact seen `--exposures` times.
 *
 *   npm run bench:capacity -w trainer [-- --models dense,memoryPlus --entities 250,500,1000,2000,4000
 *       --seeds 1 --key-seeds 1,2,3 --lrs 3e-3,1e-2,3e-2 --sweep-entities 1000 --exposures 100 --jobs 2
 *       --lr dense=1e-2 --key-entities 500]
 *     → docs/benchmarks/capacity.{json,md,svg}
 *
 * 1. LR sweep: every model at every --lrs on --sweep-entities entities (first seed); the rate with
 *    the most stored bits is that model's. Models given a rate by --lr skip it.
 * 2. Curves: every model × --entities × --seeds at its rate, and --key-seeds at the largest count
 *    (or --key-entities).
 * 3. Knobs (--knobs): each memory model with its layer changed (value LR scale, topK, heads, keyDim)
 *    at the key count and every key seed, against its defaults and dense on the same seeds.
 * Resumable: runs live in runs/capacity/; a finished run is read back, an interrupted one resumes
 * from its last checkpoint. Kill it and run the same command again.
 */
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit, writeFileAtomic } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import {
  CAPACITY_MODELS,
  CAPACITY_TRUNK,
  type CapacityFacts,
  type CapacityModel,
  type CapacityPoint,
  type MemoryKnobs,
  bestLr,
  capacityConfig,
  capacityFacts,
  capacityPoint,
  capacitySteps,
  curveOf,
  isMemoryModel,
  knee,
  knobsLabel,
  knobsTag,
  lossCurveSvg,
  parseKnobs,
  parseModelKnobs,
  parseModelRates,
} from '../src/index';
import { type Job, parseSeeds, runJobs } from './jobs';

const list = (flag: string, parse: (s: string) => number) => (text: string) => {
  const xs = text.split(',').map((s) => parse(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x) || x <= 0))
    throw new Error(`${flag}: expected positive numbers like 1,2,3, got '${text}'`);
  return xs;
};

const { values: flags } = parseArgvOrExit(
  defineFlags({
    models: { type: 'string', default: 'dense,moe,memory,memoryPlus', description: `models, from ${CAPACITY_MODELS.join(', ')}` },
    entities: {
      type: 'string',
      placeholder: 'N,N,...',
      parse: list('--entities', (s) => (/^\d+$/.test(s) ? Number(s) : Number.NaN)),
      default: '250,500,1000,2000,4000',
      description: 'entities per curve point (4 facts, 23 bits each)',
    },
    'facts-file': {
      type: 'string',
      description: 'JSONL {"entity","attribute","value"}: one curve point on your facts instead of --entities',
    },
    seeds: { type: 'string', placeholder: 'S,S,...', parse: parseSeeds, default: '1', description: 'seeds of every curve point' },
    'key-seeds': { type: 'string', placeholder: 'S,S,...', parse: parseSeeds, default: '1,2,3', description: 'seeds at the key count' },
    'key-entities': { type: 'int', min: 1, description: 'the key count, one of --entities (default: the largest)' },
    lrs: {
      type: 'string',
      placeholder: 'LR,LR,...',
      parse: list('--lrs', Number),
      default: '3e-3,1e-2,3e-2',
      description: 'learning rates swept per model',
    },
    lr: {
      type: 'string',
      placeholder: 'M=LR,...',
      description: 'fixed rates, e.g. dense=1e-2,memoryPlus=3e-2: these models skip the sweep',
    },
    knobs: {
      type: 'string',
      placeholder: 'K=V,..;K=V',
      description:
        "memory-layer variants run at the key count and key seeds for each memory model: sets split by ';', e.g. valueLrScale=10;topK=32;heads=4,keyDim=8",
    },
    'curve-knobs': {
      type: 'string',
      placeholder: 'M:K=V,..;M:K=V',
      description:
        "the memory layer each memory model is swept and curved at, e.g. memoryPlus:valueLrScale=10,topK=32 (default: the layer's defaults)",
    },
    'sweep-entities': { type: 'int', min: 1, description: 'entities of the LR sweep (default: the middle --entities)' },
    exposures: { type: 'int', min: 1, default: 100, description: 'times each fact is stated in training' },
    questions: { type: 'int', min: 4, default: 1200, description: 'questions asked per run (random entities; bits scaled to all facts)' },
    jobs: { type: 'int', min: 1, default: 2, description: 'runs at a time, one child process each' },
    out: { type: 'string', default: 'capacity', description: 'report name under docs/benchmarks/' },
  } as const),
  {
    name: 'capacity bench',
    synopsis: 'usage: npm run bench:capacity -w trainer [-- --models M,M --entities N,N,... --seeds S,S --lrs LR,LR]',
  },
);

const models = (flags.models as string).split(',').map((s) => s.trim()) as CapacityModel[];
for (const m of models) capacityConfig({ model: m, entities: 1, seed: 1, lr: 1e-3, steps: 1, out: 'x' }); // unknown names fail here
const file = flags['facts-file'] as string | undefined;
const counts: (number | undefined)[] = file ? [undefined] : (flags.entities as number[]);
const seeds = flags.seeds as number[];
const keySeeds = flags['key-seeds'] as number[];
const lrs = flags.lrs as number[];
let fixedLr: ReturnType<typeof parseModelRates>;
let knobSets: MemoryKnobs[];
let curveKnobs: ReturnType<typeof parseModelKnobs>;
try {
  fixedLr = parseModelRates((flags.lr as string | undefined) ?? '');
  knobSets = parseKnobs((flags.knobs as string | undefined) ?? '');
  curveKnobs = parseModelKnobs((flags['curve-knobs'] as string | undefined) ?? '');
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const root = path.resolve('runs', 'capacity');
/** A model as tables name it: with the layer its curve runs at, when --curve-knobs changed it. */
const modelLabel = (m: CapacityModel) => (curveKnobs[m] ? `${m} (${knobsLabel(curveKnobs[m])})` : m);

async function main() {
  await initBackend();
  const t0 = Date.now();
  // the facts and steps of every count (BPE trained as the trainer will, to count tokens)
  const data = new Map<number | undefined, { facts: CapacityFacts; steps: number; textTokens: number }>();
  for (const e of counts) {
    const facts = capacityFacts({ entities: e, factsFile: file });
    const templates = file ? 1 : 3; // a facts file: its attributes' fewest templates (1 without a templates line)
    const { steps, textTokens } = capacitySteps(facts, templates, flags.exposures);
    data.set(e, { facts, steps, textTokens });
    process.stderr.write(
      `[capacity] ${facts.facts.length} facts (${facts.totalBits.toFixed(0)} bits): ${textTokens} tokens, ${steps} steps\n`,
    );
  }
  const tag = (e: number | undefined) => (e === undefined ? path.basename(file!).replace(/\W+/g, '-') : `${e}e`);
  const spec = (model: CapacityModel, e: number | undefined, seed: number, lr: number, knobs?: MemoryKnobs) => {
    const d = data.get(e)!;
    const s = { model, entities: e, factsFile: file, seed, lr, steps: d.steps, questions: flags.questions, knobs };
    const kt = knobs ? `-${knobsTag(knobs)}` : '';
    const out = path.join(root, `${model}-${tag(e)}-x${flags.exposures}-lr${lr}${kt}-s${seed}`);
    return { ...s, out, label: `${model} ${tag(e)} lr ${lr}${knobs ? ` (${knobsLabel(knobs)})` : ''} seed ${seed}` };
  };
  const toJob = (s: ReturnType<typeof spec>): Job => ({ label: s.label, cfg: capacityConfig(s) });
  const pointOf = (s: ReturnType<typeof spec>, row: Parameters<typeof capacityPoint>[0]) =>
    capacityPoint(row, data.get(s.entities)!.facts, { model: s.model, seed: s.seed, lr: s.lr, steps: s.steps });

  // 1. learning-rate sweep
  const sweepE = file ? undefined : (flags['sweep-entities'] ?? counts[Math.floor((counts.length - 1) / 2)]);
  if (!data.has(sweepE)) {
    const facts = capacityFacts({ entities: sweepE });
    data.set(sweepE, { facts, ...capacitySteps(facts, 3, flags.exposures) });
  }
  const sweep = models
    .filter((m) => fixedLr[m] === undefined)
    .flatMap((m) => lrs.map((lr) => spec(m, sweepE, seeds[0]!, lr, curveKnobs[m])));
  const swept = await runJobs(sweep.map(toJob), { parallel: flags.jobs, reuse: true, resumable: true, title: '[capacity] LR sweep' });
  const sweepPoints = sweep.map((s, i) => pointOf(s, swept.rows[i]!));
  const lrOf = { ...bestLr(sweepPoints), ...fixedLr };

  // 2. curves at each model's rate; key seeds at the key count (the largest unless --key-entities)
  const keyCount = file ? undefined : (flags['key-entities'] ?? counts[counts.length - 1]);
  if (!counts.includes(keyCount)) {
    console.error(`--key-entities ${keyCount} must be one of --entities ${counts.join(',')}`);
    process.exit(2);
  }
  const want = new Map<string, ReturnType<typeof spec>>();
  for (const m of models) {
    const k = curveKnobs[m];
    for (const e of counts) for (const seed of seeds) want.set(`${m}/${e}/${seed}`, spec(m, e, seed, lrOf[m]!, k));
    for (const seed of keySeeds) want.set(`${m}/${keyCount}/${seed}`, spec(m, keyCount, seed, lrOf[m]!, k));
  }
  // longest runs first, so that the last ones running are short and both cores stay busy
  const curveSpecs = [...want.values()].sort((a, b) => b.steps - a.steps);
  const ran = await runJobs(curveSpecs.map(toJob), { parallel: flags.jobs, reuse: true, resumable: true, title: '[capacity] curves' });
  const points: CapacityPoint[] = curveSpecs.map((s, i) => pointOf(s, ran.rows[i]!));

  // 3. what limits the memory model: its layer's knobs, one run each at the key count
  const memoryModels = models.filter(isMemoryModel);
  const knobSpecs = memoryModels.flatMap((m) => knobSets.flatMap((k) => keySeeds.map((seed) => spec(m, keyCount, seed, lrOf[m]!, k))));
  const knobRan = await runJobs(knobSpecs.map(toJob), { parallel: flags.jobs, reuse: true, resumable: true, title: '[capacity] knobs' });
  const knobPoints = knobSpecs.map((s, i) => ({ knobs: s.knobs!, point: pointOf(s, knobRan.rows[i]!) }));

  /** A table row of points of one (model, count[, knobs]) over seeds: means, and the first's sizes. */
  const rowOf = (phase: string, model: string, at: CapacityPoint[], bySeed: string) => {
    const p0 = at[0]!;
    const mean = (f: (p: CapacityPoint) => number) => at.reduce((a, p) => a + f(p), 0) / at.length;
    const bits = mean((p) => p.bits);
    return {
      phase,
      model,
      facts: p0.facts,
      lr: p0.lr,
      seeds: at.map((p) => p.seed).join(','),
      'bits stored': Math.round(bits),
      'bits by seed': bySeed,
      'of bits trained %': Number(((100 * bits) / p0.totalBits).toFixed(1)),
      'recall %': Number((100 * mean((p) => p.recall)).toFixed(1)),
      'dense params': p0.denseParams,
      'memory params': p0.memoryParams,
      'FLOPs/token': p0.flopsPerToken,
      'bits/dense param': Number(mean((p) => p.bitsPerDenseParam).toFixed(3)),
      'bits/memory param': p0.bitsPerMemoryParam === null ? '–' : Number(mean((p) => p.bitsPerMemoryParam!).toFixed(4)),
      'bits/train GFLOP': Number(mean((p) => p.bitsPerGflop).toFixed(3)),
      'slots read %': p0.usage ? Number((100 * mean((p) => p.usage!.usedFraction)).toFixed(1)) : '–',
      'Gini (weights)': p0.usage ? Number(mean((p) => p.usage!.giniWeights).toFixed(3)) : '–',
    };
  };
  const bySeed = (at: CapacityPoint[]) => at.map((p) => Math.round(p.bits)).join(' / ');

  const report = new BenchReport(flags.out, {
    title: 'Knowledge capacity: bits stored vs facts trained, memory vs dense at matched FLOPs/token',
    startedAt: t0,
    command: `npm run bench:capacity -w trainer -- --models ${models.join(',')} ${file ? `--facts-file ${file}` : `--entities ${counts.join(',')}`} --seeds ${seeds.join(',')} --key-seeds ${keySeeds.join(',')}${flags['key-entities'] ? ` --key-entities ${flags['key-entities']}` : ''} --lrs ${lrs.join(',')}${flags.lr ? ` --lr ${flags.lr}` : ''}${flags['curve-knobs'] ? ` --curve-knobs '${flags['curve-knobs']}'` : ''}${flags.knobs ? ` --knobs '${flags.knobs}'` : ''} --exposures ${flags.exposures} --questions ${flags.questions}`,
    description:
      `Tiny trunks (apps/trainer/src/capacity.ts): D ${CAPACITY_TRUNK.dim}, ${CAPACITY_TRUNK.layers} blocks, vocab ${CAPACITY_TRUNK.vocab}, ${CAPACITY_TRUNK.batch}×${CAPACITY_TRUNK.seqLen} tokens a step, AdamW, cosine LR. ` +
      "dense: SwiGLU 4·D in both blocks; moe: 4 experts of 2·D, top-2; memory (PKM) / memoryPlus: block 1's FFN replaced by a layer over 256² slots × dv 32 " +
      '(2 heads, top-8, keyDim 16). Facts: made-up entities × 4 attributes drawn uniformly (city 1/64, employer 1/64, colour 1/16, year 1/128: 23 bits per entity), ' +
      `each stated in 3 templates; training shows every fact ${flags.exposures} times. Stored bits = Σ per attribute f · facts · log2 V, ` +
      'f = (accuracy − 1/V)/(1 − 1/V), accuracy by greedy exact match on a random sample of questions; bits per dense parameter count the embedding. ' +
      (Object.keys(curveKnobs).length
        ? `Memory layers changed from those defaults for the sweep and curves (--curve-knobs): ${Object.entries(curveKnobs)
            .map(([m, k]) => `${m} ${knobsLabel(k)}`)
            .join('; ')}. `
        : '') +
      `Each model trains at its own learning rate (memory values at the same rate × valueLr, PKM 2×): ${models.map((m) => `${m} ${lrOf[m]} (${fixedLr[m] === undefined ? 'best of the sweep' : 'fixed by --lr'})`).join(', ')}.`,
  });
  for (const p of sweepPoints) {
    report.addRow({
      phase: 'LR sweep',
      model: modelLabel(p.model as CapacityModel),
      facts: p.facts,
      lr: p.lr,
      'bits stored': Math.round(p.bits),
      'of bits trained %': Number(((100 * p.bits) / p.totalBits).toFixed(1)),
      'recall %': Number((100 * p.recall).toFixed(1)),
    });
  }
  const series = [];
  for (const m of models) {
    const curve = curveOf(points, m);
    const mine = points.filter((p) => p.model === m);
    for (const c of curve) {
      const at = mine.filter((p) => p.facts === c.facts);
      report.addRow(rowOf('curve', modelLabel(m), at, bySeed(at)));
    }
    const k = knee(curve);
    report.note(
      `${modelLabel(m)} at lr ${lrOf[m]}: ${k ? `knee between ${k.from} and ${k.to} facts (slope below half the bits per fact at the smallest count)` : curve.length < 2 ? 'one fact count: no curve, no knee' : 'no knee up to the largest count (still growing)'}; ` +
        `at the largest count ${Math.round(curve.at(-1)!.bits)} bits (${curve.at(-1)!.n} seed${curve.at(-1)!.n > 1 ? 's' : ''}).`,
    );
    // the plot's legend is narrow: knobs as their tag (vlr10-k32)
    series.push({
      name: curveKnobs[m] ? `${m} (${knobsTag(curveKnobs[m])})` : m,
      points: curve.map((c) => [c.facts, c.bits] as [number, number]),
    });
  }
  const lastBits = (m: string) => curveOf(points, m).at(-1)?.bits ?? Number.NaN;
  if (models.includes('dense') && models.includes('memoryPlus')) {
    const r = lastBits('memoryPlus') / lastBits('dense');
    report.note(`Memory+ / dense bits at the largest count: ${r.toFixed(2)}× (${r >= 2 ? 'meets' : 'does NOT meet'} the ≥ 2× target).`);
    const dense = curveOf(points, 'dense');
    const byCount = curveOf(points, 'memoryPlus')
      .map((c) => ({ c, d: dense.find((d) => d.facts === c.facts) }))
      .filter((x) => x.d)
      .map(({ c, d }) => `${c.facts} facts ${(c.bits / d!.bits).toFixed(2)}× (${c.n} / ${d!.n} seeds)`);
    report.note(`Memory+ / dense bits by count: ${byCount.join('; ')}.`);
  }
  const knobGroups = new Map<string, { knobs: MemoryKnobs; pts: CapacityPoint[] }>();
  for (const { knobs, point } of knobPoints) {
    const key = `${point.model}/${knobsTag(knobs)}`;
    knobGroups.set(key, { knobs, pts: [...(knobGroups.get(key)?.pts ?? []), point] });
  }
  for (const { knobs, pts } of knobGroups.values()) {
    const p0 = pts[0]!;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const sameSeeds = (model: string) =>
      pts.map((p) => points.find((q) => q.model === model && q.facts === p.facts && q.seed === p.seed)).filter((q) => q !== undefined);
    const base = sameSeeds(p0.model);
    const dense = sameSeeds('dense');
    const bits = mean(pts.map((p) => p.bits));
    report.addRow(
      rowOf('knobs', `${p0.model} (${knobsLabel(knobs)})`, pts, `${bySeed(pts)}${base.length ? ` (curve ${bySeed(base)})` : ''}`),
    );
    const flopsOff = p0.flopsPerToken / (dense[0]?.flopsPerToken ?? p0.flopsPerToken) - 1;
    const flops = `FLOPs/token ${flopsOff > 0 ? '+' : ''}${(100 * flopsOff).toFixed(0)}% vs dense`;
    const n = `${pts.length} seed${pts.length > 1 ? 's' : ''}`;
    report.note(
      `${p0.model} with ${knobsLabel(knobs)} at ${p0.facts} facts: ${Math.round(bits)} bits (${n})` +
        (base.length === pts.length
          ? ` vs ${Math.round(mean(base.map((q) => q.bits)))} for ${modelLabel(p0.model as CapacityModel)} on the same seeds`
          : '') +
        (dense.length === pts.length ? `, ${(bits / mean(dense.map((q) => q.bits))).toFixed(2)}× dense on the same seeds` : '') +
        `; ${flops}${Math.abs(flopsOff) > 0.1 ? ': NOT matched' : ' (matched)'}` +
        '.',
    );
  }
  report.note(
    `Runs: ${swept.rows.length} sweep + ${ran.rows.length} curve + ${knobRan.rows.length} knobs (${swept.reused + ran.reused + knobRan.reused} read back from runs/capacity); ${((Date.now() - t0) / 60000).toFixed(0)} min.`,
  );
  report.note(`Plot: ${flags.out}.svg (bits stored vs facts trained, mean over seeds).`);
  report.set('points', points);
  report.set('sweep', sweepPoints);
  report.set('knobs', knobPoints);
  report.set('curveKnobs', curveKnobs);
  const { md } = report.write();
  const total = [...data.values()].map((d) => [d.facts.facts.length, d.facts.totalBits] as [number, number]).sort((a, b) => a[0] - b[0]);
  const svg = lossCurveSvg([...series, { name: 'all bits trained', points: total.filter(([f]) => points.some((p) => p.facts === f)) }], {
    title: 'Bits stored vs facts trained',
    xLabel: 'facts trained (log scale)',
    yLabel: 'bits stored',
    logX: true,
  });
  writeFileAtomic(path.join(path.dirname(md), `${flags.out}.svg`), svg);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
