/**
 * The UltraMem ablation ladder on the trainer's facts data (src/ladder.ts), every rung trained
 * once per seed, means and per-seed numbers, Memory+ and dense as references.
 *
 *   npm run bench:ultramem -w trainer [-- --steps 400 --seeds 1,2,3 --jobs 2 --reuse]
 *     → docs/benchmarks/ultramem.{json,md}
 */
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type CompareRow, ladder } from '../src/index';
import { interleavedTokensPerSec, runFlags, runJobs } from './jobs';

const { values: flags } = parseArgvOrExit(defineFlags(runFlags({ seeds: '1,2,3', runsDir: 'runs/ultramem' })), {
  name: 'ultramem bench',
  synopsis: 'usage: npm run bench:ultramem -w trainer [-- --steps N --facts N --seeds S,S,... --jobs N --reuse]',
});

const mean = (rows: CompareRow[], f: (r: CompareRow) => number) => rows.reduce((a, r) => a + f(r), 0) / rows.length;
const slug = (label: string) =>
  label
    .replace(/[^a-zA-Z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();

async function main() {
  await initBackend();
  const { steps, facts, jobs, reuse } = flags;
  const seeds = flags.seeds as number[];
  const root = path.resolve('runs', 'ultramem');
  const suffix = steps === 400 && facts === 1000 ? '' : `-${steps}s-${facts}f`;
  const bySeed = seeds.map((seed) => ladder({ steps, facts, seed, out: (l) => path.join(root, `${slug(l)}-s${seed}${suffix}`) }));
  const labels = bySeed[0]!.map((r) => r.label);
  const all = bySeed.flatMap((rungs, j) => rungs.map((r) => ({ label: `${r.label} seed ${seeds[j]}`, cfg: r.cfg })));
  const report = new BenchReport(`ultramem${suffix}`, {
    title: 'UltraMem ablation ladder on synthetic facts (FLOPs/token within ±10% of Memory+)',
    command: `npm run bench:ultramem -w trainer -- --steps ${steps} --facts ${facts} --seeds ${seeds.join(',')} --jobs ${jobs}`,
    description:
      `The trainer's presets (D = 128, 4 blocks, ${steps} steps of 16×64 tokens, lr 1e-2, ${facts} synthetic facts); each rung adds one ` +
      'change to the rung before (apps/trainer/src/ladder.ts): PKM (the memory preset: blocks 1 and 3, N = 256², H = 4, k = 16) → raw ' +
      "scores → dv = D/2 + projection → skip-layer (memories read the previous block's FFN input; their own FFN slots hold none) → " +
      'IVE (E = 4; product keys on the 512² expanded grid) → TDQKR (r = 2, signed pre-selection, LayerNorm, shared queries) → MCS (2 cores) → ' +
      'value-LR decay 10× → 1× (= the ultramem preset). Means over seeds; every run trained once per seed in a child process, ' +
      `${jobs} at a time. "tokens/s (its runs)": each run's own training average, which the other run sharing the 2 cores skews; ` +
      `"tokens/s (interleaved)": one training step of each rung's seed-${seeds[0]} model per round, 10 rounds after 2 warm-up, median (ratios hold).`,
  });
  const { rows, reused } = await runJobs(all, { parallel: jobs, reuse, title: '[ultramem bench] runs' });
  const of = (i: number) => seeds.map((_, j) => rows[j * labels.length + i]!);
  process.stderr.write(`[ultramem bench] tokens/s, interleaved training steps of the ${labels.length} rungs of seed ${seeds[0]}\n`);
  const first = bySeed[0]!;
  const tps = interleavedTokensPerSec(
    first.map((r) => path.join(r.cfg.out, 'checkpoint')),
    first[0]!.cfg.train.batch,
    first[0]!.cfg.train.seqLen,
    10,
  );
  const pct = (x: number) => (100 * x).toFixed(1);
  for (const [i, label] of labels.entries()) {
    const rs = of(i);
    report.addRow({
      rung: label,
      'FLOPs/token': rs[0]!.flopsPerToken,
      'memory params': rs[0]!.memoryParams,
      'val loss': Number(mean(rs, (r) => r.valLoss).toFixed(3)),
      'fact-text loss': Number(mean(rs, (r) => r.factLoss ?? Number.NaN).toFixed(3)),
      'recall %': Number(pct(mean(rs, (r) => r.recall ?? Number.NaN))),
      'fact-text loss by seed': rs.map((r) => r.factLoss?.toFixed(3)).join(' / '),
      'recall % by seed': rs.map((r) => pct(r.recall ?? Number.NaN)).join(' / '),
      'tokens/s (its runs)': Math.round(mean(rs, (r) => r.tokensPerSec)),
      'tokens/s (interleaved)': Math.round(tps[i]!),
    });
  }
  const fl = (label: string) => mean(of(labels.indexOf(label)), (r) => r.factLoss ?? Number.NaN);
  const full = fl(labels.at(-1)!);
  const pkm = fl('pkm');
  report.note(
    `Full UltraMem vs PKM, fact-text loss (means over ${seeds.length} seeds): ${full.toFixed(3)} vs ${pkm.toFixed(3)} ` +
      `(${full < pkm ? 'below PKM, as the target asks' : 'NOT below PKM'}); Memory+ ${fl('Memory+').toFixed(3)}, dense ${fl('dense').toFixed(3)}.`,
  );
  if (reused)
    report.note(`--reuse: ${reused} of ${all.length} runs read back from runs/ultramem (same config; training is deterministic).`);
  report.write();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
