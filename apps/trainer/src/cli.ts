#!/usr/bin/env node
/**
 * mnemo-train [train] (--config FILE | --preset NAME) [--data PATH] [--facts N] [--eval-qa FILE]
 *                     [--steps N] [--seed S] [--out DIR] [--resume DIR]
 * mnemo-train compare <config file | preset>... [--steps N] [--facts N] [--seed S] [--md FILE]
 * mnemo-train demo [--steps N] [--seed S]        (Memory+ preset on synthetic facts, seed 1 → runs/demo)
 */
import { MnemoError, writeFileAtomic } from '@mnemo/core';
import { compare, compareTable } from './compare';
import { type TrainerConfig, parseTrainerConfig, readTrainerConfig } from './config';
import { PRESETS, preset, setSeed } from './presets';
import { runTraining } from './train';

const USAGE = `usage:
  mnemo-train [train] (--config FILE | --preset ${PRESETS.join('|')}) [--data PATH] [--facts N]
                      [--eval-qa FILE] [--steps N] [--seed S] [--out DIR] [--resume DIR]
  mnemo-train compare <config file | preset>... [--steps N] [--facts N] [--seed S] [--md FILE]
  mnemo-train demo [--steps N] [--seed S]
  --seed S: model init seed S, data-order seed S + 4 (the presets' own: 7; the demo's: 1)`;

class UsageError extends MnemoError {}

/** the demo trains the bench's first seed, so its numbers can be checked against the bench */
const DEMO_SEED = 1;

const FLAGS = new Set(['config', 'preset', 'data', 'facts', 'eval-qa', 'steps', 'seed', 'out', 'resume', 'md']);

function parseArgs(argv: string[]): { positional: string[]; flags: Record<string, string> } {
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') flags.help = 'true';
    else if (a.startsWith('--')) {
      if (!FLAGS.has(a.slice(2))) throw new UsageError(`unknown flag ${a}\n${USAGE}`);
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${a} needs a value\n${USAGE}`);
      flags[a.slice(2)] = v;
      i++;
    } else positional.push(a);
  }
  return { positional, flags };
}

function intFlag(flags: Record<string, string>, name: string): number | undefined {
  if (flags[name] === undefined) return undefined;
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name}: expected a non-negative integer, got '${flags[name]}'`);
  return n;
}

function withOverrides(cfg: TrainerConfig, flags: Record<string, string>): TrainerConfig {
  const raw = structuredClone(cfg); // edited, then validated again
  if (flags.data) raw.data.path = flags.data;
  if (flags.facts) raw.data.facts = intFlag(flags, 'facts') ?? raw.data.facts;
  if (flags['eval-qa']) raw.eval.qaFile = flags['eval-qa'];
  if (flags.steps) raw.train.steps = intFlag(flags, 'steps') ?? raw.train.steps;
  const seed = intFlag(flags, 'seed');
  if (seed !== undefined) setSeed(raw, seed);
  if (flags.out) raw.out = flags.out;
  return parseTrainerConfig(raw);
}

function configOf(spec: string, flags: Record<string, string>, kind?: 'preset' | 'config'): TrainerConfig {
  const isPreset = kind === 'preset' || (kind === undefined && (PRESETS as readonly string[]).includes(spec));
  const base = isPreset ? preset(spec) : readTrainerConfig(spec);
  return withOverrides(base, flags);
}

async function main(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv);
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const cmd = positional[0] === 'compare' || positional[0] === 'demo' || positional[0] === 'train' ? positional.shift()! : 'train';
  if (cmd === 'train') {
    if (!flags.config === !flags.preset) throw new UsageError(`give --config FILE or --preset NAME (one of them)\n${USAGE}`);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'\n${USAGE}`);
    const cfg = flags.preset ? configOf(flags.preset, flags, 'preset') : configOf(flags.config!, flags, 'config');
    const s = await runTraining(cfg, { resume: flags.resume });
    console.log(JSON.stringify({ name: s.name, out: s.out, final: s.final, tokensPerSec: Math.round(s.tokensPerSec) }));
    return 0;
  }
  if (cmd === 'compare') {
    if (!positional.length) throw new UsageError(`compare needs configs or presets\n${USAGE}`);
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
    console.error(e instanceof MnemoError || e instanceof RangeError ? `mnemo-train: ${e.message}` : e);
    process.exit(2);
  },
);
