/**
 * Training runs for the benchmarks, `jobs` at a time, each in a child process (the wasm backend
 * runs one thread per process, so two processes use both cores). With `reuse`, a run whose
 * directory already holds a finished run of exactly its config is read back instead
 * (src/reuse.ts; training is deterministic).
 *
 * The child is this file run as a script: `jobs.ts --child <config JSON>`; it prints one
 * `RESULT {…}` line (a CompareRow) on stdout.
 */
import { summarize } from '@mnemo/bench';
import { Progress, mulberry32 } from '@mnemo/core';
import { loadCheckpoint } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AdamW, type CompareRow, type TrainerConfig, compare, finishedRun, trainOrResume } from '../src/index';

export interface Job {
  label: string;
  cfg: TrainerConfig;
}

const self = fileURLToPath(import.meta.url);

/**
 * The value of --seeds ('1,2,3' → [1, 2, 3]): integers ≥ 0, as `preset(name, { seed })` takes;
 * the bench's and the sweep's flag parsers call it (`parse`), so its error names the flag.
 */
export function parseSeeds(text: string): number[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d+$/.test(s))) throw new Error(`--seeds: expected integers ≥ 0 like 1,2,3, got '${text}'`);
  return items.map(Number);
}

/** The flags every bench that trains runs shares: steps, facts, seeds, jobs, reuse (`seeds` default and run folder per bench). */
export function runFlags(o: { seeds: string; runsDir: string }) {
  return {
    steps: { type: 'int', min: 1, default: 400, description: 'training steps per run' },
    facts: { type: 'int', min: 0, default: 1000, description: 'synthetic facts' },
    seeds: {
      type: 'string',
      placeholder: 'S,S,...',
      parse: parseSeeds,
      default: o.seeds,
      description: 'every model trained once per seed',
    },
    jobs: { type: 'int', min: 1, default: 2, description: 'runs at a time, one child process each' },
    reuse: { type: 'boolean', description: `read back runs in ${o.runsDir} that finished with exactly their config` },
  } as const;
}

/**
 * The children's environment: the cores split between the `parallel` children's BLAS threads
 * (OpenBLAS otherwise starts one per core in each, and two children's spinning threads halve both:
 * measured 12k → 25k tokens/s per child of the capacity bench on 2 cores). A set value is kept.
 */
export function childEnv(parallel: number, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const threads = Math.max(1, Math.floor(availableParallelism() / Math.max(1, parallel)));
  return { ...env, OPENBLAS_NUM_THREADS: env.OPENBLAS_NUM_THREADS ?? String(threads) };
}

function trainInChild(job: Job, resumable: boolean, parallel: number): Promise<CompareRow> {
  return new Promise((resolve, reject) => {
    const args = [...process.execArgv, self, '--child', JSON.stringify(job.cfg), ...(resumable ? ['--resumable'] : [])];
    const p = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: childEnv(parallel),
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`run ${job.label} (${job.cfg.out}) failed (exit ${code})`));
      else resolve(JSON.parse(line.slice(7)) as CompareRow);
    });
  });
}

/**
 * Every job's result, in the jobs' order; `reused` counts the runs read back. `resumable`: an
 * interrupted run continues from its last checkpoint (reuse.ts trainOrResume) instead of starting over.
 */
export async function runJobs(
  jobs: Job[],
  opts: { parallel: number; reuse: boolean; title: string; resumable?: boolean },
): Promise<{ rows: CompareRow[]; reused: number }> {
  const rows: CompareRow[] = new Array(jobs.length);
  let reused = 0;
  const todo: number[] = [];
  for (const [i, j] of jobs.entries()) {
    const done = opts.reuse ? finishedRun(j.cfg) : null;
    if (done) {
      rows[i] = done;
      reused++;
    } else todo.push(i);
  }
  const bar = new Progress(todo.length, opts.title, 'runs');
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(opts.parallel, todo.length) }, async () => {
      while (next < todo.length) {
        const i = todo[next++]!;
        rows[i] = await trainInChild(jobs[i]!, opts.resumable ?? false, Math.min(opts.parallel, todo.length));
        bar.tick(1, jobs[i]!.label);
      }
    }),
  );
  return { rows, reused };
}

/**
 * Training tokens/s of each checkpoint's model measured again, interleaved: every round runs one
 * training step (forward, backward, AdamW, sparse value update) of each model on the same batch,
 * so whatever else the machine does hits all of them alike. Median step time per model.
 */
export function interleavedTokensPerSec(dirs: string[], batch: number, seqLen: number, rounds: number): number[] {
  const runs = dirs.map((d) => {
    const ck = loadCheckpoint(d);
    for (const t of Object.values(ck.extraTensors)) t.dispose();
    return { model: ck.model, opt: new AdamW(ck.model.trainableVariables()) };
  });
  const r = mulberry32(5);
  const V = runs[0]!.model.config.vocabSize;
  const ids = tf.tensor2d(
    Int32Array.from({ length: batch * (seqLen + 1) }, () => Math.floor(r() * V)),
    [batch, seqLen + 1],
    'int32',
  );
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

if (process.argv[2] === '--child') {
  const cfg = JSON.parse(process.argv[3]!) as TrainerConfig;
  const run =
    process.argv[4] === '--resumable' ? trainOrResume(cfg, { quiet: true }) : compare([cfg], { quiet: true }).then(([row]) => row!);
  run
    .then((row) => process.stdout.write(`\nRESULT ${JSON.stringify(row)}\n`))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
