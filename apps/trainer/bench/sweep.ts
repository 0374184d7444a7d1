/**
 * A one-knob sweep on the synthetic-facts data: one preset, one config field set to each value
 * in turn, plus the dense preset as the reference, all at the same steps and data; runs go two
 * at a time in child processes (the wasm backend runs one thread per process).
 *
 *   npm run bench:sweep -w trainer -- --preset memoryPlus --set model.memory.valueLr=0.001,0.005,0.02
 *       [--seeds 1,2,3] [--steps 400] [--facts 1000] [--jobs 2] [--reuse]
 *   →   docs/benchmarks/trainer-sweep-<preset>-<field>[-<steps>-steps][-<facts>-facts][-seeds].{json,md}
 *       (names in kebab-case; steps and facts named when not the defaults 400 and 1000)
 * The field is a numeric config field (dotted path), or `memoryBlocks` with values like 2,1+3,1+2
 * (the blocks whose FFN becomes a memory layer, one shared pool).
 * With --seeds, every run (the dense reference too) is repeated per seed: model init seed s, data
 * order seed s + 4. --reuse: a run whose directory in runs/sweep finished with exactly its config
 * is read back, not trained again (src/reuse.ts).
 */
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { UsageError, defineFlags, parseArgvOrExit } from '@mnemo/core';
import { type TrainerConfig, preset } from '../src/index';
import { withField } from './config-field';
import { parseSeeds, runJobs } from './jobs';

interface Result {
  label: string;
  flopsPerToken: number;
  tokensPerSec: number;
  valLoss: number;
  factLoss: number;
  recall: number;
}

const { values: flags } = parseArgvOrExit(
  defineFlags({
    preset: { type: 'string', placeholder: 'NAME', default: 'memoryPlus', description: 'the preset swept' },
    set: {
      type: 'string',
      placeholder: 'FIELD=V,V,...',
      required: true,
      description: 'a numeric config field (dotted path) and its values, or memoryBlocks=2,1+3,...',
    },
    seeds: {
      type: 'string',
      placeholder: 'S,S,...',
      parse: parseSeeds,
      description: 'repeat every run (dense too) per seed',
      defaultText: "the presets' own seed, once",
    },
    steps: { type: 'int', min: 1, default: 400, description: 'training steps per run' },
    facts: { type: 'int', min: 0, default: 1000, description: 'synthetic facts' },
    jobs: { type: 'int', min: 1, default: 2, description: 'runs at a time, one child process each' },
    reuse: { type: 'boolean', description: 'read back runs in runs/sweep that finished with exactly their config' },
  }),
  {
    name: 'trainer sweep',
    synopsis:
      'usage: npm run bench:sweep -w trainer -- --set FIELD=V,V,... [--preset NAME --seeds S,S,... --steps N --facts N --jobs N --reuse]',
  },
);

async function main(): Promise<void> {
  const { steps, facts, jobs, reuse, preset: base } = flags;
  const [field, list] = flags.set.split('=') as [string, string | undefined];
  const values = (list ?? '').split(',');
  const blocks = field === 'memoryBlocks';
  /** memoryBlocks value '1+3' → [1, 3] */
  const blocksOf = (v: string) => v.split('+').map(Number);
  const bad = (v: string) => (blocks ? blocksOf(v).some((b) => !Number.isInteger(b)) : !Number.isFinite(Number(v)) || v === '');
  if (!field || values.length === 0 || values.some(bad)) {
    throw new UsageError(`--set: expected field=v1,v2,... (memoryBlocks=2,1+3,...), got '${flags.set}'`, { flag: '--set' });
  }
  const variant = (v: string, out: string, seed: number | undefined) =>
    blocks
      ? preset(base, { steps, facts, out, seed, memoryBlocks: blocksOf(v) })
      : withField(preset(base, { steps, facts, out, seed }), field, Number(v));
  const seedsArg = flags.seeds?.join(',') ?? '';
  const seeds: (number | null)[] = flags.seeds ?? [null];
  // runs off the default length or data get their own run directories and doc (…-800-steps, …-2000-facts)
  const off = `${steps !== 400 ? `-${steps}-steps` : ''}${facts !== 1000 ? `-${facts}-facts` : ''}`;
  const out = path.resolve('runs', 'sweep');
  const tag = (seed: number | null) => (seed === null ? '' : `-s${seed}`);
  // seed s: model init seed s, data-order seed s + 4 (preset's `seed`); no --seeds: the presets' own
  const runs: { label: string; seed: number | null; cfg: TrainerConfig }[] = seeds.flatMap((seed) => [
    {
      label: 'dense',
      seed,
      cfg: preset('dense', { steps, facts, seed: seed ?? undefined, out: path.join(out, `dense${off}${tag(seed)}`) }),
    },
    ...values.map((v) => ({
      label: `${base} ${field}=${v}`,
      seed,
      cfg: variant(v, path.join(out, `${base}-${v}${off}${tag(seed)}`), seed ?? undefined),
    })),
  ]);
  const short = field
    .split('.')
    .at(-1)!
    .replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const kebab = (x: string) => x.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const report = new BenchReport(`trainer-sweep-${kebab(base)}-${short}${off}${seedsArg ? '-seeds' : ''}`, {
    title: `Sweep of ${field} for the ${base} preset on synthetic facts (dense preset as reference)${seedsArg ? `, seeds ${seedsArg}` : ''}`,
    command:
      `npm run bench:sweep -w trainer -- --preset ${base} --set ${field}=${values.join(',')} ` +
      `${seedsArg ? `--seeds ${seedsArg} ` : ''}--steps ${steps} --facts ${facts} --jobs ${jobs}${reuse ? ' --reuse' : ''}`,
    description:
      `Each run: the ${base} preset of apps/trainer/src/presets.ts (${steps} steps, ${facts} facts, no filler) with ${field} ` +
      'set as in the first column; the dense preset trained on the same data is the reference' +
      (seedsArg ? ' (seed s: model init seed s, data order seed s + 4; "vs dense" compares with the dense run of the same seed)' : '') +
      '. val loss: held-out facts (never trained on); fact-text loss: the trained facts stated in another of their training ' +
      'templates, each statement scored on its own; fact recall: exact match of the object by greedy decoding. ' +
      `Runs go ${jobs} at a time (tokens/s shared the 2 cores).`,
  });
  const { rows, reused } = await runJobs(runs, { parallel: jobs, reuse, title: '[sweep] runs' });
  const results: Result[] = rows.map((r, i) => ({
    label: runs[i]!.label,
    flopsPerToken: r.flopsPerToken,
    tokensPerSec: r.tokensPerSec,
    valLoss: r.valLoss ?? Number.NaN,
    factLoss: r.factLoss ?? Number.NaN,
    recall: r.recall ?? Number.NaN,
  }));
  if (reused) {
    report.note(
      `--reuse: ${reused} of the ${runs.length} runs were read back from runs/sweep (trained earlier with exactly the same config; ` +
        "training is deterministic); their tokens/s are their own run's.",
    );
  }
  const denseOf = (seed: number | null) => results[runs.findIndex((r) => r.label === 'dense' && r.seed === seed)]!;
  for (const [i, r] of results.entries()) {
    const dense = denseOf(runs[i]!.seed);
    report.addRow({
      run: r.label,
      ...(seedsArg ? { seed: runs[i]!.seed } : {}),
      'FLOPs/token': r.flopsPerToken,
      'tokens/s': Math.round(r.tokensPerSec),
      'val loss (held-out facts)': Number(r.valLoss.toFixed(3)),
      'fact-text loss': Number(r.factLoss.toFixed(3)),
      'vs dense': Number((r.factLoss - dense.factLoss).toFixed(3)),
      'fact recall %': Number((100 * r.recall).toFixed(1)),
      'x dense recall': dense.recall > 0 ? Number((r.recall / dense.recall).toFixed(2)) : '–',
    });
  }
  if (seeds.length > 1) {
    for (const label of ['dense', ...values.map((v) => `${base} ${field}=${v}`)]) {
      const mine = results.filter((r) => r.label === label);
      const mean = (f: (r: Result) => number) => mine.reduce((a, r) => a + f(r), 0) / mine.length;
      const lower = mine.filter((r, j) => r.factLoss < denseOf(seeds[j]!).factLoss).length;
      const twice = mine.filter((r, j) => r.recall >= 2 * denseOf(seeds[j]!).recall).length;
      report.note(
        `${label}, mean of ${mine.length} seeds: fact-text loss ${mean((r) => r.factLoss).toFixed(3)} ` +
          `(range ${Math.min(...mine.map((r) => r.factLoss)).toFixed(3)}–${Math.max(...mine.map((r) => r.factLoss)).toFixed(3)}), ` +
          `recall ${(100 * mean((r) => r.recall)).toFixed(1)}% (range ${(100 * Math.min(...mine.map((r) => r.recall))).toFixed(1)}–` +
          `${(100 * Math.max(...mine.map((r) => r.recall))).toFixed(1)}%)` +
          (label === 'dense'
            ? '.'
            : `; below dense's fact-text loss in ${lower}/${mine.length} seeds, ≥ 2x its recall in ${twice}/${mine.length}.`),
      );
    }
  }
  report.set(
    'results',
    results.map((r, i) => ({ ...r, seed: runs[i]!.seed })),
  );
  report.write();
}

main().catch((e) => {
  if (e instanceof UsageError) {
    console.error(`trainer sweep: ${e.message}`);
    process.exit(2);
  }
  console.error(e);
  process.exit(1);
});
