/**
 * Where a fact's memory reads land (issue 18's diagnosis): for the teach bench's base checkpoint,
 * how specific are the value rows a NEW fact's statement reads, compared with the rows an OLD
 * (trained) fact reads? Sparse memory finetuning can only write a new fact without touching old
 * ones if some rows it reads are read by little else.
 *
 *   npm run bench:teach-reads -w trainer [-- --n 100]   (needs runs/teach-base: npm run bench:teach first)
 *     → docs/benchmarks/teach-reads.{json,md}
 *
 * Per memory site and per statement position: the background read counts c_bg of the heads × k
 * rows it reads (background = the checkpoint's background-reads.json, a sample of the training
 * text). Reported: the median over positions of the median and of the minimum c_bg of a
 * position's rows, and the share of the read weight (Σ lookup weights) on rows the background
 * never reads and on rows it reads ≤ 10 times.
 */
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { defineFlags, parseArgvOrExit } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { loadBackgroundReads } from '@mnemo/memory-layer';
import { BACKGROUND_READS_FILE, loadCheckpoint } from '@mnemo/model';
import { type Fact, generateFacts, preset, statementOf } from '../src/index';
import { NEW_SEED, newFacts } from './teach-facts';

const { values: flags } = parseArgvOrExit(defineFlags({ n: { type: 'int', min: 1, default: 100, description: 'facts of each kind' } }), {
  name: 'teach-reads bench',
  synopsis: 'usage: npm run bench:teach-reads -w trainer [-- --n 100]',
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;

async function main(): Promise<void> {
  const startedAt = Date.now();
  await initBackend({ log: false });
  const cfg = preset('memoryPlus', { out: 'runs/teach-base' });
  const dir = path.resolve(cfg.out, 'checkpoint');
  const bg = loadBackgroundReads(path.join(dir, BACKGROUND_READS_FILE));
  const ck = loadCheckpoint(dir);
  const train = generateFacts({ count: cfg.data.facts, seed: cfg.data.factsSeed }).facts;
  let used = 0;
  for (const c of bg.counts) if (c > 0) used++;
  const report = new BenchReport('teach-reads', {
    startedAt,
    title: 'Where a fact’s memory reads land: specificity of the value rows new and old facts read',
    command: `npm run bench:teach-reads -w trainer -- --n ${flags.n}`,
    description:
      `The teach bench's base (Memory+ preset, runs/teach-base). ${flags.n} new facts (generateFacts seed ${NEW_SEED}, entities ` +
      `not in training) and the first ${flags.n} training facts, each read as its evaluation-template statement. c_bg = how often ` +
      `the background sample (${bg.tokens} tokens of training text, ${bg.reads} reads) read a row; per position, the heads × k rows ` +
      `it reads. Pool: ${bg.slots} rows, ${used} (${((100 * used) / bg.slots).toFixed(1)}%) read by the background at all.`,
  });
  const sites = new Map<string, Record<'new' | 'old', { med: number[]; min: number[]; w: number; w0: number; w10: number }>>();
  const measure = (facts: Fact[], kind: 'new' | 'old') => {
    for (const f of facts) {
      const ids = ck.tokenizer.encode(` ${statementOf(f, 0)}`);
      for (const m of ck.model.inspectMemory(ids.slice(0, -1))) {
        const key = `block ${m.block} (${m.site})`;
        const fresh = () => ({ med: [], min: [], w: 0, w0: 0, w10: 0 });
        const s = sites.get(key) ?? { new: fresh(), old: fresh() };
        sites.set(key, s);
        const per = m.heads * m.topK;
        for (let p = 0; p < m.ids.length / per; p++) {
          const cs: number[] = [];
          for (let i = p * per; i < (p + 1) * per; i++) {
            const c = bg.counts[m.ids[i]!]!;
            cs.push(c);
            s[kind].w += m.weights[i]!;
            if (c === 0) s[kind].w0 += m.weights[i]!;
            if (c <= 10) s[kind].w10 += m.weights[i]!;
          }
          s[kind].med.push(median(cs));
          s[kind].min.push(Math.min(...cs));
        }
      }
    }
  };
  measure(newFacts(train, flags.n), 'new');
  measure(train.slice(0, flags.n), 'old');
  for (const [site, s] of sites) {
    for (const kind of ['new', 'old'] as const) {
      const k = s[kind];
      report.addRow({
        site,
        facts: kind,
        positions: k.med.length,
        'median c_bg of a read row': median(k.med),
        'median c_bg of the least-read row': median(k.min),
        'read weight on never-read rows %': Number(((100 * k.w0) / k.w).toFixed(2)),
        'read weight on rows with c_bg ≤ 10 %': Number(((100 * k.w10) / k.w).toFixed(2)),
      });
    }
  }
  report.note(
    `Background: ${bg.tokens} tokens, so a row with c_bg = 400 is read by ~${((400 / bg.tokens) * 100).toFixed(1)}% of training ` +
      'tokens; a write to it moves the output at every one of them.',
  );
  ck.model.dispose();
  for (const t of Object.values(ck.extraTensors)) t.dispose();
  report.write();
}

await main();
