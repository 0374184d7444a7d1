import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './testing/run-cli';

const cli = (...args: string[]) => runCli(args, 60_000);

describe('mnemo-train CLI', async () => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/usage:\n {2}mnemo-train \[train\]/);
    expect(r.out).toMatch(/mnemo-train compare/);
    expect(r.out).toMatch(/mnemo-train demo/);
    // every flag, with its default
    for (const f of ['config', 'preset', 'data', 'facts', 'eval-qa', 'steps', 'seed', 'out', 'resume', 'md', 'help']) {
      expect(r.out).toMatch(new RegExp(`\\n {2}(-h, )?--${f}\\b`));
    }
    expect(r.out).toMatch(/--seed S +model init seed S, data-order seed S \+ 4 \(default: the presets' own 7; the demo's 1\)/);
  });

  it('<command> --help also lists every config field with its default, read off the schema', async () => {
    const { configFields } = await import('./config-help');
    const fields = configFields();
    expect(fields.map((f) => f.field)).toEqual(
      expect.arrayContaining(['data.maxChars', 'train.lr', 'eval.answerTokens', 'chatTemplate', 'out']),
    );
    expect(fields.find((f) => f.field === 'train.lr')!.default).toBe('0.003');
    for (const cmd of ['train', 'compare', 'demo']) {
      const r = await cli(cmd, '--help');
      expect(r.code).toBe(0);
      for (const f of fields)
        expect(r.out, `${cmd}: ${f.field}`).toMatch(
          new RegExp(`\\n {2}${f.field.replace('.', '\\.')} +\\S+ +default ${f.default.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
        );
    }
  });

  it('usage errors exit 2 with one clear line naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /^mnemo-train: give --config FILE or --preset NAME/],
      [['--preset', 'dense', '--steps', 'x'], /^mnemo-train: --steps: expected a non-negative integer, got 'x'/],
      [['--preset', 'dense', '--steps'], /^mnemo-train: --steps needs a value/],
      [['--preset', 'dense', '--seed', '-1'], /^mnemo-train: --seed: expected a non-negative integer, got '-1'/],
      [['--preset', 'dense', '--seed', '2.5'], /^mnemo-train: --seed: expected a non-negative integer, got '2\.5'/],
      [['compare'], /^mnemo-train: compare needs configs or presets/],
      [['--preset', 'dense', '--steps', '0'], /^mnemo-train: train\.steps: /],
      [['--preset=dense', '--steps=0'], /^mnemo-train: train\.steps: /], // --flag=value reaches the config
      [['--preset', 'dense', '--steps=x'], /^mnemo-train: --steps: expected a non-negative integer, got 'x'/],
      [['--config', '/nonexistent/run.yaml'], /^mnemo-train: --config: cannot read/],
      [['--preset', 'huge'], /^mnemo-train: --preset: unknown preset 'huge'/],
      [['--preset', 'dense', '--stpes', '10'], /^mnemo-train: unknown flag --stpes; did you mean --steps\?\n/],
      [['--preset', 'dense', 'extra'], /^mnemo-train: unexpected argument 'extra'/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(re);
      expect(r.err).not.toMatch(/\n\s+at /); // no stack trace for expected errors
    }
  }, 300_000); // each case spawns a CLI process: slow on a loaded 2-core machine

  it('a bad config file names the field; bad data and --eval-qa paths name data.path / eval.qaFile', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const cfg = path.join(dir, 'run.yaml');
    writeFileSync(cfg, 'model: {dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: [dense, dense]}\ntrain: {steps: 3, lr: fast}\n');
    let r = await cli('--config', cfg);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/mnemo-train: train\.lr: .*expected number/);
    r = await cli('--preset', 'dense', '--data', path.join(dir, 'missing.txt'), '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/mnemo-train: data\.path: .*missing\.txt does not exist/);
    r = await cli('--preset', 'dense', '--eval-qa', path.join(dir, 'qa.jsonl'), '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/mnemo-train: eval\.qaFile: cannot read/);
  }, 300_000); // each case spawns a CLI process: slow on a loaded 2-core machine
});
