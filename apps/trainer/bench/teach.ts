/**
 * Teaching a trained Memory+ model new facts (issue 18): sparse memory finetuning vs all memory
 * values vs full finetuning, at the same steps per fact.
 *
 *   npm run bench:teach -w trainer [-- --steps 400 --ns 10,100 --reuse]
 *     → docs/benchmarks/teach.{json,md}
 *
 *   base      the Memory+ preset trained `--steps` steps (runs/teach-base; --reuse keeps it)
 *   new facts generateFacts with another seed, entities not in the training facts; each taught as
 *             its evaluation-template statement (" The capital of X is Y.") one after another
 *   methods   sparse: teachText top-t; memory: teachText with t = every pool row; full: AdamW on
 *             every dense weight plus the pool's values (sparse Adam); lora: rank-r factors of
 *             every block matrix (src/lora.ts), values frozen; `--fact-steps` steps each
 *   measures  taught recall (greedy answer, factRecall), recall and statement loss of up to 100
 *             OLD training facts the base answered right, val loss, per fact: ms and value rows /
 *             bytes written. Every (method, N) starts from a fresh load of the base checkpoint.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BenchReport } from '@mnemo/bench';
import { UsageError, defineFlags, parseArgvOrExit } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { loadBackgroundReads, saveBackgroundReads, type BackgroundReads } from '@mnemo/memory-layer';
import { BACKGROUND_READS_FILE, type LanguageModel, TEACH_DEFAULTS, loadCheckpoint, teachText } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import {
  AdamW,
  type QaPair,
  evalWindows,
  factRecall,
  generateFacts,
  prepareData,
  preset,
  runTraining,
  sequencesLoss,
  statementOf,
} from '../src/index';
import { LoraAdapter } from '../src/lora';
import { NEW_SEED, newFacts } from './teach-facts';
import { backgroundFromText } from '../src/teach';
import { withFields } from './config-field';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    steps: { type: 'int', min: 1, default: 400, description: 'training steps of the base Memory+ model' },
    ns: { type: 'string', default: '10,100', description: 'numbers of facts taught, comma-separated' },
    methods: { type: 'string', default: 'sparse,memory,full,lora', description: 'methods, comma-separated' },
    t: { type: 'int', min: 1, default: TEACH_DEFAULTS.t, description: 'sparse: value rows per fact' },
    factSteps: { type: 'int', min: 1, default: TEACH_DEFAULTS.steps, description: 'optimizer steps per fact (every method)' },
    valueLr: { type: 'string', default: String(TEACH_DEFAULTS.valueLr), description: 'value LR while teaching (sparse, memory)' },
    fullLr: { type: 'string', default: '1e-3', description: 'full finetuning: AdamW LR of the dense weights' },
    loraRank: { type: 'int', min: 1, default: 8, description: 'LoRA: rank of each adapted matrix' },
    loraLr: { type: 'string', default: '1e-3', description: 'LoRA: Adam LR of the factors' },
    old: { type: 'int', min: 1, default: 100, description: 'old facts measured for forgetting' },
    out: { type: 'string', default: 'teach', description: 'report name under docs/benchmarks' },
    reuse: { type: 'boolean', description: 'reuse runs/teach-base when it holds a finished checkpoint' },
    'base-set': {
      type: 'string',
      placeholder: 'FIELD=V,...',
      description:
        'the base changed from the preset, e.g. model.memory.topK=32,model.memory.valueLr=0.1 (its own runs/teach-base-… folder)',
    },
  }),
  { name: 'teach bench', synopsis: 'usage: npm run bench:teach -w trainer [-- --steps N --ns 10,100 --reuse]' },
);

const log = (s: string) => process.stderr.write(`[teach bench] ${s}\n`);
const ANSWER_TOKENS = 6;

interface Row {
  method: string;
  n: number;
  taughtRecall: number;
  oldRecallBefore: number;
  oldRecallAfter: number;
  oldLossDrift: number;
  valLossDrift: number;
  msPerFact: number;
  rowsPerFact: number;
  bytesPerFact: number;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const baseSet = (flags['base-set'] as string | undefined) ?? '';
  const baseTag = baseSet ? `-${baseSet.replace(/model\.|memory\./g, '').replace(/[^\w.]+/g, '-')}` : '';
  const cfg = withFields(preset('memoryPlus', { steps: flags.steps, out: `runs/teach-base${baseTag}` }), baseSet, '--base-set');
  const ckptDir = path.resolve(cfg.out, 'checkpoint');
  if (!(flags.reuse && existsSync(ckptDir))) {
    log(`training the Memory+ base, ${flags.steps} steps → ${cfg.out}`);
    await runTraining(cfg, { quiet: false });
  } else {
    await initBackend({ log: false });
    log(`reusing ${ckptDir}`);
  }
  const data = prepareData(cfg, () => {});
  const trainFacts = generateFacts({ count: cfg.data.facts, seed: cfg.data.factsSeed });
  const fresh = newFacts(trainFacts.facts, Math.max(...flags.ns.split(',').map(Number)));

  const base = loadCheckpoint(ckptDir);
  const tok = base.tokenizer;
  const bgFile = path.join(ckptDir, BACKGROUND_READS_FILE);
  let bg: BackgroundReads;
  if (existsSync(bgFile)) bg = loadBackgroundReads(bgFile);
  else {
    bg = backgroundFromText(base.model, tok, data.trainText);
    saveBackgroundReads(bgFile, bg);
  }
  const valWindows = evalWindows(Int32Array.from(tok.encode(data.valText)), cfg.train.seqLen, 32);
  // old facts the base knew: greedy answer right on the evaluation question
  const oldQa: QaPair[] = [];
  const oldStatements: Int32Array[] = [];
  for (const [i, q] of trainFacts.qa.entries()) {
    if (oldQa.length >= flags.old) break;
    if (factRecall(base.model, tok, [q], ANSWER_TOKENS) === 1) {
      oldQa.push(q);
      oldStatements.push(Int32Array.from(tok.encode(` ${statementOf(trainFacts.facts[i]!, 0)}`)));
    }
  }
  const baseVal = sequencesLoss(base.model, valWindows);
  const baseOldLoss = sequencesLoss(base.model, oldStatements);
  log(`base: ${oldQa.length} old facts known, val loss ${baseVal.toFixed(3)}, old-statement loss ${baseOldLoss.toFixed(3)}`);
  const rowsTotal = base.model.pool!.rows;
  const rowBytes = base.model.pool!.dim * 4;
  base.model.dispose();
  for (const t of Object.values(base.extraTensors)) t.dispose();

  const rows: Row[] = [];
  for (const n of flags.ns.split(',').map(Number)) {
    const facts = fresh.slice(0, n);
    const qa = facts.map((f) => {
      const s = statementOf(f, 0);
      return { prompt: ` ${s.slice(0, s.lastIndexOf(f.object)).trimEnd()}`, answer: f.object };
    });
    const texts = facts.map((f) => tok.encode(` ${statementOf(f, 0)}`));
    for (const method of flags.methods.split(',')) {
      const ck = loadCheckpoint(ckptDir);
      const model: LanguageModel = ck.model;
      let written = 0;
      const t0 = performance.now();
      if (method === 'full') {
        const opt = new AdamW(model.trainableVariables(), { weightDecay: 0, clip: 1 });
        model.pool!.setLearningRate(Number(flags.valueLr));
        for (const ids of texts) {
          const x = tf.tensor2d(Int32Array.from(ids), [1, ids.length], 'int32');
          const read = new Set<number>();
          for (const m of model.inspectMemory(ids.slice(0, -1))) for (const id of m.ids) if (id >= 0) read.add(id);
          for (let s = 0; s < flags.factSteps; s++) {
            opt.minimize(() => model.loss(x, { aux: false }), Number(flags.fullLr));
            model.stepMemory();
          }
          written += read.size;
          x.dispose();
        }
        model.pool!.setLearningRate(undefined);
        opt.dispose();
      } else if (method === 'lora') {
        const lora = new LoraAdapter(model, { rank: flags.loraRank, lr: Number(flags.loraLr) });
        for (const ids of texts) {
          const x = tf.tensor2d(Int32Array.from(ids), [1, ids.length], 'int32');
          for (let s = 0; s < flags.factSteps; s++) lora.step(() => model.loss(x, { aux: false }));
          x.dispose();
        }
        lora.dispose(); // the adapted weights stay in the model; its factors are freed
      } else {
        const t = method === 'memory' ? rowsTotal : flags.t;
        for (const ids of texts) {
          const r = teachText(model, ids, bg, { t, steps: flags.factSteps, valueLr: Number(flags.valueLr) });
          written += r.slots.length;
        }
      }
      const ms = (performance.now() - t0) / n;
      const row: Row = {
        method,
        n,
        taughtRecall: factRecall(model, tok, qa, ANSWER_TOKENS),
        oldRecallBefore: 1,
        oldRecallAfter: factRecall(model, tok, oldQa, ANSWER_TOKENS),
        oldLossDrift: sequencesLoss(model, oldStatements) - baseOldLoss,
        valLossDrift: sequencesLoss(model, valWindows) - baseVal,
        msPerFact: ms,
        rowsPerFact: written / n,
        bytesPerFact: (written / n) * rowBytes,
      };
      rows.push(row);
      log(
        `${method} N=${n}: taught ${(row.taughtRecall * 100).toFixed(1)}%, old ${(row.oldRecallAfter * 100).toFixed(1)}%, ` +
          `val Δ ${row.valLossDrift.toFixed(3)}, ${ms.toFixed(0)} ms/fact, ${row.rowsPerFact.toFixed(0)} rows/fact`,
      );
      model.dispose();
      for (const x of Object.values(ck.extraTensors)) x.dispose();
    }
  }

  const cmd = `npm run bench:teach -w trainer -- --steps ${flags.steps} --ns ${flags.ns} --t ${flags.t} --factSteps ${flags.factSteps} --valueLr ${flags.valueLr} --fullLr ${flags.fullLr} --loraRank ${flags.loraRank} --loraLr ${flags.loraLr}${flags.methods !== 'sparse,memory,full,lora' ? ` --methods ${flags.methods}` : ''}${baseSet ? ` --base-set ${baseSet}` : ''}`;
  const report = new BenchReport(flags.out, {
    startedAt,
    title: 'Teaching a trained Memory+ model new facts: sparse memory finetuning vs baselines',
    command: cmd,
    description:
      `Base: the Memory+ preset (apps/trainer presets.ts)${baseSet ? ` with ${baseSet}` : ''} trained ${flags.steps} steps on its 1000 synthetic facts. ` +
      `New facts: generateFacts seed ${NEW_SEED}, entities not among the training facts, each taught (one after another, ` +
      `${flags.factSteps} steps each, every method) as its evaluation-template statement. sparse = teachText top-${flags.t} ` +
      `rows (value LR ${flags.valueLr}); memory = teachText with t = all ${rowsTotal} rows (every row the text reads is written); ` +
      `full = AdamW (LR ${flags.fullLr}) on every dense weight plus the pool's sparse value update (LR ${flags.valueLr}); ` +
      `lora = rank-${flags.loraRank} factors W = W0 + A·B of every block matrix (Adam LR ${flags.loraLr}; values and all else frozen; ` +
      '0 value rows written: its bytes are the factors, not counted). ' +
      `Old facts: the first ${oldQa.length} training facts the base answered right (recall before = 100% by construction); ` +
      `old loss = next-token loss of their statements. Each (method, N) starts from a fresh load of the base checkpoint. ` +
      `Bytes = value rows written × ${rowBytes} bytes (f32 row).`,
  });
  for (const r of rows) {
    report.addRow({
      method: r.method,
      N: r.n,
      'taught recall %': Number((r.taughtRecall * 100).toFixed(1)),
      'old recall %': Number((r.oldRecallAfter * 100).toFixed(1)),
      'old recall lost (points)': Number(((1 - r.oldRecallAfter) * 100).toFixed(1)),
      'old loss drift': Number(r.oldLossDrift.toFixed(3)),
      'val loss drift': Number(r.valLossDrift.toFixed(3)),
      'ms/fact': Math.round(r.msPerFact),
      'rows/fact': Math.round(r.rowsPerFact),
      'KB/fact': Number((r.bytesPerFact / 1024).toFixed(1)),
    });
  }
  report.set('baseValLoss', baseVal);
  report.set('baseOldLoss', baseOldLoss);
  report.set('oldKnown', oldQa.length);
  report.write([
    'method',
    'N',
    'taught recall %',
    'old recall %',
    'old recall lost (points)',
    'old loss drift',
    'val loss drift',
    'ms/fact',
    'rows/fact',
    'KB/fact',
  ]);
}

main().catch((e) => {
  if (e instanceof UsageError) {
    console.error(`teach bench: ${e.message}`);
    process.exit(2);
  }
  console.error(e);
  process.exit(1);
});
