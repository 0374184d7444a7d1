/**
 * Losses of a preset run on the two dense paths of the wasm backend (issue 15): the same config
 * trained on `wasm` (tfjs-wasm's BatchMatMul) and on `native` (OpenBLAS), losses logged every
 * step, compared step by step.
 *
 *   npm run bench:dense-losses -w trainer [-- --steps 50 --presets dense,memoryPlus]
 *     →   docs/benchmarks/dense-losses.{json,md}
 *
 * Each path is deterministic (a rerun prints the same losses); the paths sum float32 products in
 * a different order, so they agree to the last digit at first and drift apart as training
 * amplifies the difference.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit } from '@mnemo/core';
import { type DensePath, setDensePath } from '@mnemo/kernels';
import { preset, runTraining } from '../src/index';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    steps: { type: 'int', min: 2, default: 50, description: 'training steps per run' },
    presets: { type: 'string', default: 'dense,memoryPlus', description: 'presets to run' },
  }),
  { name: 'dense-losses bench', synopsis: 'usage: npm run bench:dense-losses -w trainer [-- --steps N --presets a,b]' },
);

interface Line {
  step: number;
  loss?: number;
  final?: { valLoss: number; factLoss?: number };
}

const report = new BenchReport('dense-losses', {
  title: 'Training losses on the native vs the wasm dense path',
  command: `npm run bench:dense-losses -w trainer -- --steps ${flags.steps} --presets ${flags.presets}`,
  description:
    `Each preset trained ${flags.steps} steps (its own config, seed 7, loss logged every step) once with MNEMO_DENSE=wasm ` +
    "(tfjs-wasm's BatchMatMul) and once with MNEMO_DENSE=native (OpenBLAS); relative difference |native − wasm| / wasm of " +
    'the training loss per step. Tolerance (docs/dense-math.md): steps 1–5 equal for dense, ≤ 5e-4 for Memory+; the mean loss over ' +
    'all steps and the final val loss ≤ 2%. Later steps drift further: training amplifies float-order differences, ' +
    "and Memory+'s top-k slot choice flips on near-ties.",
});
const paths: DensePath[] = ['wasm', 'native'];
for (const name of flags.presets.split(',')) {
  const runs: Record<DensePath, Line[]> = { wasm: [], native: [] };
  for (const p of paths) {
    process.env.MNEMO_DENSE = p;
    setDensePath(p);
    const cfg = preset(name, { steps: flags.steps, out: path.join(os.tmpdir(), 'mnemo-dense-losses', `${name}-${p}`) });
    cfg.train.logEvery = 1;
    cfg.train.checkpointEvery = flags.steps;
    await runTraining(cfg, { quiet: true });
    runs[p] = readFileSync(path.join(cfg.out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
  }
  const losses = (p: DensePath) => runs[p].filter((l) => l.loss !== undefined).map((l) => l.loss!);
  const a = losses('native');
  const b = losses('wasm');
  const rel = (x: number, y: number) => Math.abs(x - y) / Math.abs(y);
  const diffs = a.map((x, i) => rel(x, b[i]!));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const finalOf = (p: DensePath) => runs[p].find((l) => l.final)?.final;
  const fa = finalOf('native');
  const fb = finalOf('wasm');
  const firstOver = diffs.findIndex((d) => d > 1e-5);
  report.addRow({
    preset: name,
    steps: a.length,
    'max rel diff, steps 1–5': Number(Math.max(...diffs.slice(0, 5)).toExponential(1)),
    'max rel diff, steps 1–10': Number(Math.max(...diffs.slice(0, 10)).toExponential(1)),
    'first step > 1e-5': firstOver < 0 ? 'none' : firstOver + 1,
    'max rel diff, all steps': Number(Math.max(...diffs).toExponential(1)),
    'mean loss native': Number(mean(a).toFixed(4)),
    'mean loss wasm': Number(mean(b).toFixed(4)),
    'mean loss rel diff': Number(rel(mean(a), mean(b)).toExponential(1)),
    'final val loss native': fa ? Number(fa.valLoss.toFixed(4)) : null,
    'final val loss wasm': fb ? Number(fb.valLoss.toFixed(4)) : null,
    'final val rel diff': fa && fb ? Number(rel(fa.valLoss, fb.valLoss).toExponential(1)) : null,
  });
  report.set(`${name}.losses`, { native: a, wasm: b });
}
delete process.env.MNEMO_DENSE;
report.write();
