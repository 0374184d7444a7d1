#!/usr/bin/env node
/**
 * mnemo-train [train] (--config FILE | --preset NAME) [--data PATH] [--facts N] [--eval-qa FILE]
 *                     [--steps N] [--seed S] [--out DIR] [--resume DIR]
 *                     [--memory-parallel P [--parallel-backend local|mpi] [--memory-scheme dim|row|auto]]
 * mnemo-train compare <config file | preset>... [--steps N] [--facts N] [--seed S] [--md FILE]
 * mnemo-train demo [--steps N] [--seed S]        (Memory+ preset on synthetic facts, seed 1 → runs/demo)
 * mnemo-train reshard --checkpoint DIR --memory-parallel P --out NEWDIR   (re-deal a sharded pool; P = 1: unsharded)
 *
 * Flags (@mnemo/core parseFlags): `--steps 30` or `--steps=30`; an unknown flag is an error that
 * names the closest known one; --help lists every flag with its default.
 */
import { ConfigError, type FlagValues, MnemoError, UsageError, defineFlags, parseFlags, usage, writeFileAtomic } from '@mnemo/core';
import { compare, compareTable } from './compare';
import { configHelp } from './config-help';
import { type TrainerConfig, modelConfigFor, parseTrainerConfig, readTrainerConfig } from './config';
import { type ParallelFlags, checkParallel, runParallelTraining } from './parallel';
import { PRESETS, preset, setSeed } from './presets';
import { runTraining } from './train';
import { teachCli } from './teach';
import { reshardCheckpoint, underMpirun } from '@mnemo/parallel';

const SYNOPSIS = `usage:
  mnemo-train [train] (--config FILE | --preset ${PRESETS.join('|')}) [--data PATH] [--facts N]
                      [--eval-qa FILE] [--steps N] [--seed S] [--out DIR] [--resume DIR]
                      [--memory-parallel P [--parallel-backend local|mpi] [--memory-scheme dim|row|auto]]
  mnemo-train compare <config file | preset>... [--steps N] [--facts N] [--seed S] [--md FILE]
  mnemo-train demo [--steps N] [--seed S]
  mnemo-train reshard --checkpoint DIR --memory-parallel P --out NEWDIR`;

/** the demo trains the bench's first seed, so its numbers can be checked against the bench */
const DEMO_SEED = 1;

/** every flag of every subcommand; those given override the config's or preset's values */
const FLAGS = defineFlags({
  config: { type: 'string', placeholder: 'FILE', description: 'train: a YAML or JSON trainer config (this or --preset)' },
  preset: { type: 'string', placeholder: 'NAME', description: `train: a preset, ${PRESETS.join('|')} (this or --config)` },
  data: {
    type: 'string',
    placeholder: 'PATH',
    description: 'training text: a UTF-8 file, a folder of .txt/.md/.jsonl, or JSONL',
    defaultText: "the config's data.path, else Moby Dick",
  },
  facts: { type: 'int', min: 0, description: 'synthetic facts mixed into the text', defaultText: "the config's data.facts" },
  'eval-qa': {
    type: 'string',
    placeholder: 'FILE',
    description: 'recall on these JSONL {"prompt","answer"} lines',
    defaultText: "the synthetic facts' questions",
  },
  steps: { type: 'int', min: 0, description: 'training steps', defaultText: "the config's train.steps" },
  seed: {
    type: 'int',
    min: 0,
    placeholder: 'S',
    description: 'model init seed S, data-order seed S + 4',
    defaultText: "the presets' own 7; the demo's 1",
  },
  out: { type: 'string', placeholder: 'DIR', description: 'run directory', defaultText: "the config's out; demo: runs/demo" },
  resume: { type: 'string', placeholder: 'DIR', description: 'train: continue from the checkpoint in DIR' },
  md: { type: 'string', placeholder: 'FILE', description: 'compare: also write the table to FILE' },
  checkpoint: { type: 'string', placeholder: 'DIR', description: 'reshard: a checkpoint saved by --memory-parallel' },
  'memory-parallel': {
    type: 'int',
    min: 1,
    placeholder: 'P',
    description: 'train: the value pool sharded over P ranks, dense gradients all-reduced (same global batch)',
    defaultText: 'off',
  },
  'parallel-backend': {
    type: 'string',
    placeholder: 'local|mpi',
    description: 'train: local = P worker threads of this process; mpi = this process is a rank under mpirun -np P',
    defaultText: 'mpi under mpirun, else local',
  },
  'memory-scheme': {
    type: 'string',
    placeholder: 'dim|row|auto',
    description: 'train: how the pool is sharded (docs/design.md §5)',
    defaultText: "auto: the cost model's choice",
  },
});

type Flags = FlagValues<typeof FLAGS>;

function withOverrides(cfg: TrainerConfig, flags: Flags): TrainerConfig {
  const raw = structuredClone(cfg); // edited, then validated again
  if (flags.data) raw.data.path = flags.data;
  if (flags.facts !== undefined) raw.data.facts = flags.facts;
  if (flags['eval-qa']) raw.eval.qaFile = flags['eval-qa'];
  if (flags.steps !== undefined) raw.train.steps = flags.steps;
  if (flags.seed !== undefined) setSeed(raw, flags.seed);
  if (flags.out) raw.out = flags.out;
  return parseTrainerConfig(raw);
}

/** --memory-parallel and its companions, checked; undefined without --memory-parallel. */
function parallelFlags(flags: Flags): ParallelFlags | undefined {
  const backend = flags['parallel-backend'];
  const scheme = flags['memory-scheme'] ?? 'auto';
  if (flags['memory-parallel'] === undefined) {
    if (backend !== undefined || flags['memory-scheme'] !== undefined)
      throw new UsageError('--parallel-backend and --memory-scheme go with --memory-parallel P');
    return undefined;
  }
  if (backend !== undefined && backend !== 'local' && backend !== 'mpi')
    throw new ConfigError('--parallel-backend', `must be local or mpi, got '${backend}'`);
  if (scheme !== 'dim' && scheme !== 'row' && scheme !== 'auto')
    throw new ConfigError('--memory-scheme', `must be dim, row or auto, got '${scheme}'`);
  return { P: flags['memory-parallel'], backend: backend ?? (underMpirun() ? 'mpi' : 'local'), scheme };
}

function configOf(spec: string, flags: Flags, kind?: 'preset' | 'config'): TrainerConfig {
  const isPreset = kind === 'preset' || (kind === undefined && (PRESETS as readonly string[]).includes(spec));
  const base = isPreset ? preset(spec) : readTrainerConfig(spec);
  return withOverrides(base, flags);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'teach') return teachCli(argv.slice(1)); // own flags: teach.ts
  const { values: flags, positionals: positional, help } = parseFlags(FLAGS, argv, { positionals: true });
  if (help) {
    console.log(
      `${SYNOPSIS}\n\nflags (given ones override the config's or preset's values):\n${usage(FLAGS)}\n\n` +
        `config fields (--config FILE, YAML or JSON; model.* is a @mnemo/model config):\n${configHelp()}`,
    );
    return 0;
  }
  const cmd = ['compare', 'demo', 'train', 'reshard'].includes(positional[0] ?? '') ? positional.shift()! : 'train';
  if (cmd === 'reshard') {
    const P = flags['memory-parallel'];
    if (!flags.checkpoint || P === undefined || !flags.out)
      throw new UsageError('reshard needs --checkpoint DIR --memory-parallel P --out NEWDIR');
    const r = reshardCheckpoint(flags.checkpoint, P, flags.out);
    console.log(
      `${flags.out}: ${r.scheme}-sharded pool re-dealt from P = ${r.fromP} to P = ${r.toP}${P === 1 ? ' (unsharded: mnemo-serve reads it)' : ''}`,
    );
    return 0;
  }
  if (cmd === 'train') {
    if (!flags.config === !flags.preset) throw new UsageError('give --config FILE or --preset NAME (one of them)');
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const cfg = flags.preset ? configOf(flags.preset, flags, 'preset') : configOf(flags.config!, flags, 'config');
    const par = parallelFlags(flags);
    if (par) checkParallel(cfg, modelConfigFor(cfg, 512), par.P);
    const s = par ? await runParallelTraining(cfg, par, { resume: flags.resume }) : await runTraining(cfg, { resume: flags.resume });
    if (s) console.log(JSON.stringify({ name: s.name, out: s.out, final: s.final, tokensPerSec: Math.round(s.tokensPerSec) }));
    return 0;
  }
  if (cmd === 'compare') {
    if (!positional.length) throw new UsageError('compare needs configs or presets');
    const rows = await compare(positional.map((p) => configOf(p, flags)));
    const table = compareTable(rows);
    console.log(table);
    if (flags.md) writeFileAtomic(flags.md, `${table}\n`);
    return 0;
  }
  // demo: the Memory+ preset on synthetic facts at seed 1, checkpoint in runs/demo/checkpoint; it is the
  // bench's Memory+ run of seed 1 (docs/benchmarks/trainer.md, first of "recall % by seed")
  const cfg = withOverrides(preset('memoryPlus', { out: 'runs/demo', seed: DEMO_SEED }), flags);
  const rows = await compare([{ ...cfg, name: 'demo (Memory+)' }]);
  console.log(compareTable(rows));
  console.log(`checkpoint: ${cfg.out}/checkpoint  (serve it: node apps/server/dist/cli.js --checkpoint ${cfg.out}/checkpoint)`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    // a usage error: the synopsis under it, as before; --help lists every flag
    if (e instanceof UsageError) console.error(`mnemo-train: ${e.message}\n${SYNOPSIS}\n(mnemo-train --help lists every flag)`);
    else console.error(e instanceof MnemoError || e instanceof RangeError ? `mnemo-train: ${e.message}` : e);
    process.exit(2);
  },
);
