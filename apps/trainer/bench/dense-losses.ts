/**
 * Losses of a preset run on the two dense paths of the wasm backend (issue 15): the same config
 * trained on `wasm` (tfjs-wasm's BatchMatMul, AdamW as tfjs ops), on `native` (OpenBLAS, the
 * fused AdamW kernel) and on `native, AdamW ops` (OpenBLAS, MNEMO_FUSED_ADAMW=0), losses logged
 * every step, compared step by step, over several seeds.
 *
 *   npm run bench:dense-losses -w trainer [-- --steps 50 --presets dense,memoryPlus --seeds 7,8,9]
 *     →   docs/benchmarks/dense-losses.{json,md}
 *
 * Each path is deterministic (a rerun prints the same losses); the paths sum float32 products in
 * a different order, so they agree to the last digit at first and drift apart as training
 * amplifies the difference. The third run is the control: it differs from `native` only in the
 * optimizer's float order (one fused pass vs ~13 tfjs kernels, the same math), so its distance to
 * `native` is how far two runs of one path drift from a float-order change alone: the noise floor
 * the native-vs-wasm distance is read against.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit } from '@mnemo/core';
import { setDensePath } from '@mnemo/kernels';
import { preset, runTraining } from '../src/index';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    steps: { type: 'int', min: 2, default: 50, description: 'training steps per run' },
    presets: { type: 'string', default: 'dense,memoryPlus', description: 'presets to run' },
    seeds: { type: 'string', default: '7,8,9', description: 'preset seeds (model init and data), comma-separated' },
  }),
  {
    name: 'dense-losses bench',
    synopsis: 'usage: npm run bench:dense-losses -w trainer [-- --steps N --presets a,b --seeds 7,8,9]',
  },
);

const seeds = flags.seeds.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--seeds: expected integers ≥ 0, got '${s}'`);
  return n;
});

interface Line {
  step: number;
  loss?: number;
  final?: { valLoss: number; factLoss?: number };
}

/** The three runs per (preset, seed): the dense path and whether AdamW is the fused kernel. */
const RUNS = [
  { key: 'wasm', dense: 'wasm', fused: false },
  { key: 'native', dense: 'native', fused: true },
  { key: 'nativeOps', dense: 'native', fused: false },
] as const;
type RunKey = (typeof RUNS)[number]['key'];

const TOLERANCE = { first5: { dense: 1e-5, memoryPlus: 5e-4 } as Record<string, number>, mean: 0.02, finalVal: 0.02 };

const report = new BenchReport('dense-losses', {
  title: 'Training losses on the native vs the wasm dense path',
  command: `npm run bench:dense-losses -w trainer -- --steps ${flags.steps} --presets ${flags.presets} --seeds ${flags.seeds}`,
  description:
    `Each preset trained ${flags.steps} steps (its own config, loss logged every step) for each seed, three times: ` +
    "`wasm` (MNEMO_DENSE=wasm: tfjs-wasm's BatchMatMul, AdamW as tfjs ops), `native` (MNEMO_DENSE=native: OpenBLAS, the fused " +
    'AdamW kernel) and the control `native, AdamW ops` (OpenBLAS, MNEMO_FUSED_ADAMW=0: the same AdamW math as tfjs ops, so it ' +
    'differs from `native` only in the float order of the update). Relative difference |a − b| / b of the training loss per ' +
    'step, of the mean loss over all steps, and of the final val loss. Tolerance (docs/dense-math.md): native vs wasm within ' +
    `${TOLERANCE.first5.dense} (dense) / ${TOLERANCE.first5.memoryPlus} (Memory+) over steps 1–5; on every seed, the mean loss ` +
    `and the final val loss within max(${100 * TOLERANCE.mean}%, the largest difference the control pair shows in this run): ` +
    'a float-order change alone moves a 50-step run that far, so no tighter bound can hold for any change of summation ' +
    "order. Later steps drift further: training amplifies float-order differences, and Memory+'s top-k slot choice flips " +
    'on near-ties.',
});

const rel = (x: number, y: number) => Math.abs(x - y) / Math.abs(y);
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sci = (x: number) => Number(x.toExponential(1));

interface Pair {
  first5: number;
  first10: number;
  firstOver: number | 'none';
  maxAll: number;
  meanA: number;
  meanB: number;
  meanRel: number;
  valRel: number | null;
}

function compare(a: Line[], b: Line[]): Pair {
  const la = a.filter((l) => l.loss !== undefined).map((l) => l.loss!);
  const lb = b.filter((l) => l.loss !== undefined).map((l) => l.loss!);
  const diffs = la.map((x, i) => rel(x, lb[i]!));
  const fa = a.find((l) => l.final)?.final;
  const fb = b.find((l) => l.final)?.final;
  const over = diffs.findIndex((d) => d > 1e-5);
  return {
    first5: Math.max(...diffs.slice(0, 5)),
    first10: Math.max(...diffs.slice(0, 10)),
    firstOver: over < 0 ? 'none' : over + 1,
    maxAll: Math.max(...diffs),
    meanA: mean(la),
    meanB: mean(lb),
    meanRel: rel(mean(la), mean(lb)),
    valRel: fa && fb ? rel(fa.valLoss, fb.valLoss) : null,
  };
}

const PAIRS: [string, RunKey, RunKey][] = [
  ['native vs wasm', 'native', 'wasm'],
  ['native, AdamW ops vs wasm', 'nativeOps', 'wasm'],
  ['control: native vs native, AdamW ops', 'native', 'nativeOps'],
];

const started = Date.now();
const total = flags.presets.split(',').length * seeds.length * RUNS.length;
let done = 0;
const verdicts: string[] = [];
for (const name of flags.presets.split(',')) {
  const byPair: Record<string, Pair[]> = {};
  for (const seed of seeds) {
    const runs = {} as Record<RunKey, Line[]>;
    for (const run of RUNS) {
      process.env.MNEMO_DENSE = run.dense;
      if (run.fused) delete process.env.MNEMO_FUSED_ADAMW;
      else process.env.MNEMO_FUSED_ADAMW = '0';
      setDensePath(run.dense);
      const out = path.join(os.tmpdir(), 'mnemo-dense-losses', `${name}-${seed}-${run.key}`);
      const cfg = preset(name, { steps: flags.steps, seed, out });
      cfg.train.logEvery = 1;
      cfg.train.checkpointEvery = flags.steps;
      await runTraining(cfg, { quiet: true });
      runs[run.key] = readFileSync(path.join(cfg.out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Line);
      done++;
      const el = (Date.now() - started) / 1e3;
      process.stderr.write(
        `[dense-losses] ${done}/${total} ${name} seed ${seed} ${run.key} done; ${el.toFixed(0)} s, ~${((el / done) * (total - done)).toFixed(0)} s left\n`,
      );
    }
    for (const [label, a, b] of PAIRS) {
      const c = compare(runs[a], runs[b]);
      byPair[label] = [...(byPair[label] ?? []), c];
      report.addRow({
        preset: name,
        seed,
        pair: label,
        'max rel diff, steps 1–5': sci(c.first5),
        'max rel diff, steps 1–10': sci(c.first10),
        'first step > 1e-5': c.firstOver,
        'max rel diff, all steps': sci(c.maxAll),
        'mean loss a': Number(c.meanA.toFixed(4)),
        'mean loss b': Number(c.meanB.toFixed(4)),
        'mean loss rel diff': sci(c.meanRel),
        'final val rel diff': c.valRel === null ? null : sci(c.valRel),
      });
    }
    const losses = (k: RunKey) => runs[k].filter((l) => l.loss !== undefined).map((l) => l.loss!);
    report.set(`${name}.seed${seed}.losses`, { wasm: losses('wasm'), native: losses('native'), nativeOps: losses('nativeOps') });
  }
  // the verdict per preset. A float-order change alone (the control pair) sets the floor: the
  // tolerance of the mean and final val loss is max(2%, the control's largest difference in this run)
  const nw = byPair['native vs wasm']!;
  const ctl = byPair['control: native vs native, AdamW ops']!;
  const f5 = Math.max(...nw.map((c) => c.first5));
  const f5Bound = TOLERANCE.first5[name] ?? TOLERANCE.first5.memoryPlus!;
  const tolMean = Math.max(TOLERANCE.mean, ...ctl.map((c) => c.meanRel));
  const tolVal = Math.max(TOLERANCE.finalVal, ...ctl.map((c) => c.valRel ?? 0));
  const maxMean = Math.max(...nw.map((c) => c.meanRel));
  const maxVal = Math.max(...nw.map((c) => c.valRel ?? 0));
  const ok = f5 <= f5Bound && maxMean <= tolMean && maxVal <= tolVal;
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const avg = (cs: Pair[]) => pct(mean(cs.map((c) => c.meanRel)));
  // a systematic difference would show as one sign on every seed; float chaos gives both
  const signed = nw.map((c) => (c.meanA - c.meanB) / c.meanB);
  verdicts.push(
    `${name}: native vs wasm, steps 1–5 ≤ ${f5.toExponential(1)} (bound ${f5Bound}); mean loss differs by ${nw.map((c) => pct(c.meanRel)).join(' / ')} ` +
      `over seeds ${seeds.join(' / ')} (average ${avg(nw)}; native higher on ${signed.filter((d) => d > 0).length} of ${seeds.length}), ` +
      `the control pair by ${ctl.map((c) => pct(c.meanRel)).join(' / ')} (average ${avg(ctl)}); tolerance max(2%, control's largest) = ` +
      `${pct(tolMean)} for the mean loss, ${pct(tolVal)} for the final val loss (native vs wasm at most ${pct(maxVal)}) → ` +
      (ok ? 'within tolerance' : 'OUTSIDE tolerance'),
  );
  report.set(`${name}.verdict`, {
    ok,
    first5: f5,
    first5Bound: f5Bound,
    meanRel: nw.map((c) => c.meanRel),
    controlMeanRel: ctl.map((c) => c.meanRel),
    signedMeanRel: signed,
    tolMean,
    tolVal,
    maxValRel: maxVal,
  });
}
delete process.env.MNEMO_DENSE;
delete process.env.MNEMO_FUSED_ADAMW;
for (const v of verdicts) report.note(v);
report.write();
