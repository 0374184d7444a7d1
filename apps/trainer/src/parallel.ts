/**
 * `mnemo-train --memory-parallel P`: data-parallel dense parameters (each rank's gradients of its
 * slice of every batch, all-reduced before AdamW) next to the model's value pool sharded over the
 * P ranks (@mnemo/parallel ShardedPool; docs/design.md §5.4). The global batch is the P = 1 batch:
 * rank p trains rows [p·B/P, (p+1)·B/P) of it, with its loss divided by P so the sum over ranks is
 * the global mean. Rank 0 alone writes metrics, plots, progress and the checkpoint; every rank
 * writes its own pool shard into that checkpoint (ShardedPool.save).
 *
 *   mnemo-train --preset memoryPlus --memory-parallel 2                          # 2 worker threads
 *   mpirun -np 2 node apps/trainer/dist/cli.js --preset memoryPlus --memory-parallel 2 --parallel-backend mpi
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, subSeed } from '@mnemo/core';
import {
  type BpeTokenizer,
  type LanguageModel,
  type LoadedCheckpoint,
  type ModelConfig,
  LanguageModel as Model,
  loadCheckpoint,
  poolShapeOf,
} from '@mnemo/model';
import { LocalGroup, type ProcessGroup, ShardedPool, type ShardScheme, checkpointShards, openGroup, underMpirun } from '@mnemo/parallel';
import { type TrainerConfig, modelConfigFor } from './config';
import type { RunSummary, TrainOptions } from './train';

export type ParallelBackend = 'local' | 'mpi';

export interface ParallelFlags {
  /** ranks: --memory-parallel P */
  P: number;
  backend: ParallelBackend;
  /** --memory-scheme; 'auto' = the cost model's choice */
  scheme: ShardScheme | 'auto';
}

/** What runTraining gets on each rank. */
export interface ParallelRun {
  group: ProcessGroup;
  scheme: ShardScheme | 'auto';
}

/** Refuse what --memory-parallel does not run, naming the flag and why. */
export function checkParallel(cfg: TrainerConfig, mcfg: ModelConfig, P: number): void {
  const flag = '--memory-parallel';
  if (!Number.isInteger(P) || P < 1) throw new ConfigError(flag, `must be an integer ≥ 1, got ${P}`);
  if (cfg.memory3)
    throw new ConfigError(
      flag,
      'cannot run the memory3 section (Memory³ stage 2): its reference memories are not sharded; drop one of them',
    );
  if (mcfg.ffn.includes('moe'))
    throw new ConfigError(
      flag,
      'does not run MoE blocks (experts a rank routes no token to break the gradient all-reduce); use a dense or memory preset',
    );
  if (mcfg.skips?.length)
    throw new ConfigError(
      flag,
      'does not run skip-layer memories (model.skips, the ultramem preset) yet; use the memory or memoryPlus preset',
    );
  if (!poolShapeOf(mcfg))
    throw new ConfigError(flag, 'shards the value pool, and this model reads none; use the memory or memoryPlus preset');
  if (cfg.train.batch % P !== 0)
    throw new ConfigError(flag, `train.batch ${cfg.train.batch} must be divisible by P = ${P}: each rank trains B/P rows of every batch`);
}

/** The model of a fresh run on `run.group`: every rank builds the same dense init; the pool is sharded. */
export function shardedModel(mcfg: ModelConfig, cfg: TrainerConfig, run: ParallelRun): { model: LanguageModel; pool: ShardedPool } {
  const shape = poolShapeOf(mcfg)!;
  const m = mcfg.memory;
  const pool = ShardedPool.create(run.group, {
    rows: shape.rows,
    dim: shape.dim,
    optimizer: { kind: m.valueOptimizer, lr: m.valueLr },
    init: { kind: 'normal', std: shape.initStd, seed: subSeed(mcfg.seed, 'pool') }, // the shards concatenate to the P = 1 table
    scheme: run.scheme,
    shape: { B: (cfg.train.batch / run.group.size) * cfg.train.seqLen, H: m.heads, k: m.topK },
  });
  return { model: new Model(mcfg, { pool }), pool };
}

/**
 * `--resume DIR` on one rank: the checkpoint with this rank's pool shard (ShardedPool.load). A
 * checkpoint saved at another P is refused with the command that re-deals it.
 */
function checkResumeShards(dir: string, P: number): void {
  const n = checkpointShards(dir);
  if (n === P) return;
  throw new ConfigError(
    '--resume',
    n === 1
      ? `${dir} holds an unsharded pool (a run without --memory-parallel); resume it without --memory-parallel`
      : `${dir} was saved by ${n} ranks and this run has ${P}; re-deal it first: mnemo-train reshard --checkpoint ${dir} --memory-parallel ${P} --out NEWDIR, then --resume NEWDIR`,
  );
}

export function loadRankCheckpoint(dir: string, group: ProcessGroup): LoadedCheckpoint<BpeTokenizer> & { pool: ShardedPool } {
  checkResumeShards(dir, group.size);
  let pool: ShardedPool | undefined;
  const ck = loadCheckpoint(dir, {
    openPool: (memoryDir) => {
      pool = ShardedPool.load(group, path.join(memoryDir, 'values.safetensors'));
      const meta = JSON.parse(readFileSync(path.join(memoryDir, 'memory.json'), 'utf8')) as { layers: unknown[] };
      return { pool, configs: meta.layers };
    },
  });
  return { ...ck, pool: pool! };
}

/** The worker of the local backend (this file's sibling; tsx runs the .ts one in tests). */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  return here.replace(/[^/\\]*$/, here.endsWith('.ts') ? 'parallel-worker.ts' : 'parallel-worker.js');
}

/**
 * Train on P ranks. local: start P worker threads here and return rank 0's summary; mpi: this
 * process is one rank under mpirun (rank 0 returns the summary, the others undefined).
 */
export async function runParallelTraining(
  cfg: TrainerConfig,
  par: ParallelFlags,
  opts: TrainOptions = {},
): Promise<RunSummary | undefined> {
  const { runTraining } = await import('./train');
  checkParallel(cfg, modelConfigFor(cfg, 512), par.P); // here, before any rank starts: the error is this process's own
  if (opts.resume) checkResumeShards(opts.resume, par.P);
  if (par.backend === 'mpi') {
    if (!underMpirun())
      throw new ConfigError(
        '--parallel-backend',
        `mpi: start the ranks with mpirun -np ${par.P} node …/cli.js … (or use --parallel-backend local)`,
      );
    const group = openGroup({ timeoutMs: 600_000 });
    if (group.size !== par.P)
      throw new ConfigError('--memory-parallel', `is ${par.P}, and mpirun started ${group.size} ranks; give the same P to both`);
    try {
      const s = await runTraining(cfg, { ...opts, parallel: { group, scheme: par.scheme } });
      return group.rank === 0 ? s : undefined;
    } finally {
      group.close();
    }
  }
  const { parallel: _p, checkpoint: _c, ...plain } = opts; // structured-clone safe
  const res = await LocalGroup.run<RunSummary>(par.P, workerFile(), { data: { cfg, scheme: par.scheme, opts: plain }, timeoutMs: 600_000 });
  const failed = res.find((r) => r.error) ?? res.find((r) => r.exitCode !== 0);
  if (failed) throw failed.error ?? new Error(`rank ${failed.rank} exited with code ${failed.exitCode}`);
  return res[0]!.result!;
}
