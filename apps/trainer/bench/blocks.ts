/**
 * Step time and decode speed of the memory designs in one run (issue 12): the dense, Memory+
 * and ultramem presets (D 128, 4 blocks, 16×64 tokens; Memory+ and UltraMem matched in
 * FLOPs/token to within 10%), one AdamW training step per round per model (forward, backward,
 * update, the sparse value update), the models taking turns in each round (order rotated) so
 * machine noise hits all alike; then the server's batched decode step (8 sequences, context 64+),
 * also in turns. Medians. A model's time minus dense's is what its memory blocks cost over the
 * FFNs they replace.
 *
 *   npm run bench:blocks -w trainer [-- --rounds 10 --decode-steps 24]   → docs/benchmarks/blocks.{json,md}
 */
import { BenchReport, summarize } from '@mnemo/bench';
import { defineFlags, mulberry32, parseArgvOrExit } from '@mnemo/core';
import { initBackend } from '@mnemo/kernels';
import { type KVCache, LanguageModel, type ModelConfigInput, modelCounts } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, modelConfigFor, preset } from '../src/index';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    rounds: { type: 'int', min: 1, default: 10, description: 'timed training steps per model' },
    'decode-steps': { type: 'int', min: 1, default: 24, description: 'timed decode steps per model' },
    models: { type: 'string', default: 'dense,memoryPlus,ultramem', description: 'presets to run' },
  }),
  { name: 'blocks bench', synopsis: 'usage: npm run bench:blocks -w trainer [-- --rounds N --decode-steps N]' },
);

const DECODE_BATCH = 8;
const DECODE_CONTEXT = 64;
const log = (s: string) => process.stderr.write(`[blocks] ${s}\n`);

async function main() {
  const backend = await initBackend();
  const names = flags.models.split(',');
  const runs = names.map((name, i) => {
    const cfg = preset(name);
    const model = new LanguageModel({ ...modelConfigFor(cfg, cfg.tokenizer.vocabSize) } as ModelConfigInput);
    const V = model.config.vocabSize;
    const r = mulberry32(5 + i);
    const { batch, seqLen } = cfg.train;
    const ids = tf.tensor2d(
      Int32Array.from({ length: batch * (seqLen + 1) }, () => Math.floor(r() * V)),
      [batch, seqLen + 1],
      'int32',
    );
    const opt = new AdamW(model.trainableVariables());
    const step = () => {
      opt.minimize(() => model.loss(ids, { training: true }), 1e-4);
      model.stepMemory();
    };
    return {
      name,
      model,
      ids,
      opt,
      step,
      tokens: batch * seqLen,
      counts: modelCounts(model.config),
      trainMs: [] as number[],
      decodeMs: [] as number[],
    };
  });
  for (let round = -2; round < flags.rounds; round++) {
    for (let j = 0; j < runs.length; j++) {
      const run = runs[(j + Math.max(0, round)) % runs.length]!;
      const t0 = performance.now();
      run.step();
      if (round >= 0) run.trainMs.push(performance.now() - t0);
    }
    if (round >= 0) log(`train round ${round + 1}/${flags.rounds}`);
  }
  const caches = runs.map((run) =>
    Array.from({ length: DECODE_BATCH }, (_, b) => {
      const c = run.model.newCache();
      run.model.prefill(
        Array.from({ length: DECODE_CONTEXT }, (_, i) => (i * 7 + b * 13) % run.model.config.vocabSize),
        c,
      );
      return c;
    }),
  );
  const toks = Array.from({ length: DECODE_BATCH }, (_, b) => b * 31);
  for (let s = -2; s < flags['decode-steps']; s++) {
    for (let j = 0; j < runs.length; j++) {
      const k = (j + Math.max(0, s)) % runs.length;
      const run = runs[k]!;
      const t0 = performance.now();
      run.model.decodeBatch(
        toks.map((t) => t % run.model.config.vocabSize),
        caches[k] as KVCache[],
      );
      if (s >= 0) run.decodeMs.push(performance.now() - t0);
    }
  }
  const report = new BenchReport('blocks', {
    title: 'Training step and decode step of the dense, Memory+ and ultramem presets, in one run',
    command: `npm run bench:blocks -w trainer -- --rounds ${flags.rounds} --decode-steps ${flags['decode-steps']}`,
    description:
      'The presets of apps/trainer (D 128, 4 blocks, 16×64 tokens; memories in blocks 1 and 3, UltraMem on skip-layer sites) ' +
      `on random tokens. Training: one AdamW step (forward, backward, update, sparse value update) per round per model, the models ` +
      `taking turns in each round (order rotated), ${flags.rounds} timed rounds after 2 warm-up rounds, median. Decode: the ` +
      `server's batched step (decodeBatch, ${DECODE_BATCH} sequences at context ${DECODE_CONTEXT}+), ${flags['decode-steps']} ` +
      `steps per model in turns, median. Backend: ${backend.name} (${backend.provider}).`,
  });
  const dense = runs.find((r) => r.name === 'dense');
  const denseTrain = dense ? summarize(dense.trainMs).median : Number.NaN;
  for (const run of runs) {
    const train = summarize(run.trainMs).median;
    const dec = summarize(run.decodeMs).median;
    report.addRow({
      model: run.name,
      'FLOPs/token': run.counts.flopsPerToken,
      'memory params': run.counts.memoryParams,
      'train step ms': Number(train.toFixed(1)),
      'train tokens/s': Math.round(run.tokens / (train / 1e3)),
      'vs dense': Number((train / denseTrain).toFixed(2)),
      'ms over dense per memory layer': dense
        ? Number(((train - denseTrain) / Math.max(1, run.model.memoryLayers().length)).toFixed(1))
        : null,
      'decode step ms': Number(dec.toFixed(1)),
      'decode tokens/s': Math.round(DECODE_BATCH / (dec / 1e3)),
    });
    report.set(`${run.name}.trainMs`, run.trainMs);
    report.set(`${run.name}.decodeMs`, run.decodeMs);
  }
  const load = (await import('node:os')).loadavg();
  report.note(
    `1-minute load average at the end: ${load[0]!.toFixed(2)} (this 2-core machine is shared; the turns keep the ratios fair, not the absolute times).`,
  );
  report.write([
    'model',
    'FLOPs/token',
    'memory params',
    'train step ms',
    'train tokens/s',
    'vs dense',
    'ms over dense per memory layer',
    'decode step ms',
    'decode tokens/s',
  ]);
  for (const c of caches.flat()) c.dispose();
  for (const run of runs) {
    run.ids.dispose();
    run.opt.dispose();
    run.model.dispose();
  }
}

await main();
