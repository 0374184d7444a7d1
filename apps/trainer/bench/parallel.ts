/**
 * Training-step throughput of `mnemo-train --memory-parallel P` (issue 14): the memoryPlus preset
 * (D 128, 4 blocks, 16×64 tokens per global batch, the shared pool of 65,536 × 128 values with
 * Adam) at P = 1, at P = 2 on the local backend (worker threads), and at P = 2 under mpirun when
 * it is installed. Same global batch at every P; tokens/s = global tokens per second of the timed
 * steps (the trainer's own figure: steps after the second).
 *
 *   npm run bench:parallel -w trainer [-- --steps 12]   →   docs/benchmarks/trainer-parallel.{json,md}
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchReport } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit } from '@mnemo/core';
import { mpiAvailable, mpirunPath } from '@mnemo/parallel';
import { preset, runParallelTraining, runTraining } from '../src/index';
import { readLines } from '../src/train';

const { values: flags } = parseArgvOrExit(
  defineFlags({ steps: { type: 'int', min: 4, default: 12, description: 'training steps per run (the first 2 are not timed)' } }),
  { name: 'parallel training bench', synopsis: 'usage: npm run bench:parallel -w trainer [-- --steps N]' },
);

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'trainer-bench-parallel-'));
  const cfgOf = (name: string) => {
    const c = preset('memoryPlus', { steps: flags.steps, out: path.join(tmp, name), facts: 200 });
    return { ...c, data: { ...c.data, maxChars: 60_000 }, train: { ...c.train, logEvery: 1 } };
  };
  const report = new BenchReport('trainer-parallel', {
    title: 'mnemo-train --memory-parallel P: training-step throughput',
    command: `npm run bench:parallel -w trainer -- --steps ${flags.steps}`,
    description:
      'memoryPlus preset (D 128, 4 blocks, 2 Memory+ blocks on one pool of 65,536 × 128 values, Adam), global batch 16 × 64 ' +
      `tokens at every P, ${flags.steps} steps, tokens/s over the steps after the second (the trainer's own figure). ` +
      'P = 2: dense gradients all-reduced, the pool sharded by the scheme the cost model picks; local = 2 worker threads of one ' +
      'process, mpi = 2 processes under mpirun. This machine has 2 cores shared with other engineers: see the load average.',
  });
  const load0 = os.loadavg();
  const runs: { backend: string; P: number; tps: number; ms: number }[] = [];
  const row = (backend: string, P: number, tps: number) => {
    const B = 16 * 64;
    runs.push({ backend, P, tps, ms: (1000 * B) / tps });
    report.addRow({ backend, P, 'tokens/s': Math.round(tps), 'ms/step': (1000 * B) / tps, 'vs P = 1': tps / runs[0]!.tps });
  };
  const s1 = await runTraining(cfgOf('p1'), { quiet: true, skipFinalEval: true });
  row('none', 1, s1.tokensPerSec);
  const s2 = (await runParallelTraining(cfgOf('p2'), { P: 2, backend: 'local', scheme: 'auto' }, { quiet: true, skipFinalEval: true }))!;
  row('local', 2, s2.tokensPerSec);
  const mpi = mpiAvailable();
  if (mpirunPath() && mpi.available) {
    const cfgFile = path.join(tmp, 'mpi.json');
    writeFileSync(cfgFile, JSON.stringify(cfgOf('mpi')));
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const r = spawnSync(
      mpirunPath()!,
      ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', '2', process.execPath, '--import', 'tsx'].concat([
        '--conditions=mnemo-source',
        cli,
        'train',
        '--config',
        cfgFile,
        '--memory-parallel',
        '2',
        '--parallel-backend',
        'mpi',
      ]),
      { encoding: 'utf8', env: { ...process.env, OMPI_MCA_btl_vader_single_copy_mechanism: 'none' } },
    );
    if (r.status !== 0) throw new Error(`mpirun failed: ${r.stderr}`);
    const last = readLines(path.join(tmp, 'mpi', 'metrics.jsonl'))
      .filter((m) => typeof m.tokensPerSec === 'number')
      .pop()!;
    row('mpi', 2, last.tokensPerSec as number);
  } else report.note(`mpi: not run (${mpirunPath() ? mpi.reason : 'mpirun not on PATH'}).`);
  const load1 = os.loadavg();
  report.note(
    `Load average (1, 5, 15 min) at the start ${load0.map((x) => x.toFixed(1)).join(', ')}, at the end ${load1.map((x) => x.toFixed(1)).join(', ')}, on ${os.cpus().length} cores: other jobs ran too, so the ratios are what this shared machine gave, not the method's.`,
  );
  report.set('runs', runs);
  report.write(['backend', 'P', 'tokens/s', 'ms/step', 'vs P = 1']);
  rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
