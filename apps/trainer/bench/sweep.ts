/**
 * A one-knob sweep on the synthetic-facts data: one preset, one config field set to each value
 * in turn, plus the dense preset as the reference, all at the same steps and data; runs go two
 * at a time in child processes (the wasm backend runs one thread per process).
 *
 *   npm run bench:sweep -w trainer -- --preset memoryPlus --set model.memory.valueLr=0.001,0.005,0.02
 *       [--steps 400] [--facts 500] [--jobs 2]        →   docs/benchmarks/trainer-sweep-<field, kebab-case>.{json,md}
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchReport, Progress } from '@mnemo/bench';
import { type TrainerConfig, parseTrainerConfig, preset, runTraining } from '../src/index';

interface Result {
  label: string;
  flopsPerToken: number;
  tokensPerSec: number;
  valLoss: number;
  factLoss: number;
  recall: number;
}

const argv = process.argv.slice(2);
const arg = (name: string, dflt?: string): string => {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0 && argv[i + 1] !== undefined) return argv[i + 1]!;
  if (dflt === undefined) throw new Error(`--${name} is required (see the header of bench/sweep.ts)`);
  return dflt;
};

/** cfg with `field` (a dotted path, e.g. model.memory.valueLr) set to `value`, validated again */
function withField(cfg: TrainerConfig, field: string, value: number): TrainerConfig {
  const copy = structuredClone(cfg) as unknown as Record<string, unknown>;
  const keys = field.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) throw new Error(`--set: ${field}: '${k}' is not a config section`);
    o = o[k] as Record<string, unknown>;
  }
  if (typeof o[keys.at(-1)!] !== 'number') throw new Error(`--set: ${field} is not a numeric config field`);
  o[keys.at(-1)!] = value;
  return parseTrainerConfig(copy);
}

async function child(cfgJson: string, label: string): Promise<void> {
  const s = await runTraining(JSON.parse(cfgJson) as TrainerConfig, { quiet: true });
  const r: Result = {
    label,
    flopsPerToken: s.counts.flopsPerToken,
    tokensPerSec: s.tokensPerSec,
    valLoss: s.final?.valLoss ?? Number.NaN,
    factLoss: s.final?.factLoss ?? Number.NaN,
    recall: s.final?.recall ?? Number.NaN,
  };
  process.stdout.write(`\nRESULT ${JSON.stringify(r)}\n`);
}

function runChild(cfg: TrainerConfig, label: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const self = fileURLToPath(import.meta.url);
    const p = spawn(process.execPath, [...process.execArgv, self, '--child', JSON.stringify(cfg), '--label', label], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`run ${label} failed (exit ${code})`));
      else resolve(JSON.parse(line.slice(7)) as Result);
    });
  });
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '400'));
  const facts = Number(arg('facts', '500'));
  const jobs = Number(arg('jobs', '2'));
  const base = arg('preset', 'memoryPlus');
  const [field, list] = arg('set').split('=') as [string, string | undefined];
  const values = (list ?? '').split(',').map(Number);
  if (!field || values.length === 0 || values.some((v) => !Number.isFinite(v))) {
    throw new Error(`--set: expected field=v1,v2,..., got '${arg('set')}'`);
  }
  const out = path.resolve('runs', 'sweep');
  const runs: { label: string; cfg: TrainerConfig }[] = [
    { label: 'dense', cfg: preset('dense', { steps, facts, out: path.join(out, 'dense') }) },
    ...values.map((v) => ({
      label: `${base} ${field}=${v}`,
      cfg: withField(preset(base, { steps, facts, out: path.join(out, `${base}-${v}`) }), field, v),
    })),
  ];
  const short = field.split(".").at(-1)!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const report = new BenchReport(`trainer-sweep-${short}`, {
    title: `Sweep of ${field} for the ${base} preset on synthetic facts (dense preset as reference)`,
    command: `npm run bench:sweep -w trainer -- --preset ${base} --set ${field}=${values.join(',')} --steps ${steps} --facts ${facts} --jobs ${jobs}`,
    description:
      `Each run: the ${base} preset of apps/trainer/src/presets.ts (${steps} steps, ${facts} facts, no filler) with ${field} ` +
      'set as in the first column; the dense preset trained on the same data is the reference. val loss: held-out facts ' +
      "(never trained on); fact-text loss: the trained facts stated in one of their templates; fact recall: exact match of " +
      `the object by greedy decoding. Runs go ${jobs} at a time (tokens/s shared the 2 cores).`,
  });
  const bar = new Progress(runs.length, '[sweep] runs', 'runs');
  const results: Result[] = new Array(runs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(jobs, runs.length) }, async () => {
      while (next < runs.length) {
        const i = next++;
        results[i] = await runChild(runs[i]!.cfg, runs[i]!.label);
        bar.tick(1, runs[i]!.label);
      }
    }),
  );
  const dense = results[0]!;
  for (const r of results) {
    report.addRow({
      run: r.label,
      'FLOPs/token': r.flopsPerToken,
      'tokens/s': Math.round(r.tokensPerSec),
      'val loss (held-out facts)': Number(r.valLoss.toFixed(3)),
      'fact-text loss': Number(r.factLoss.toFixed(3)),
      'vs dense': Number((r.factLoss - dense.factLoss).toFixed(3)),
      'fact recall %': Number((100 * r.recall).toFixed(1)),
      'x dense recall': dense.recall > 0 ? Number((r.recall / dense.recall).toFixed(2)) : '–',
    });
  }
  report.set('results', results);
  report.write();
}

if (argv[0] === '--child') {
  child(argv[1]!, arg('label')).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
