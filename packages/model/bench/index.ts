/**
 * Training-step and decoding speed of small LMs with each FFN kind, at the size apps/trainer
 * trains (≈1 M dense parameters): vocab 2048, D = 128, 4 blocks, 4 query / 2 KV heads,
 * batch 16 × 64 tokens.
 *   dense       SwiGLU, hidden 384
 *   moe         4 experts of hidden 192, top-2 (active FFN FLOPs = dense)
 *   memory      PKM in block 2 (N = 128² slots, H = 4, k = 16, dk = 64, dv = 128)
 *   memoryPlus  Memory+ in blocks 1, 2, 3 sharing one pool (same memory shape)
 * A step = forward + backward + Adam on the dense parameters (+ the pool's fused sparse Adam).
 * Steps of the four models are interleaved (dense, moe, memory, memoryPlus, dense, …) so drift
 * in the shared machine's load hits them alike.
 *
 *   npm run bench -w @mnemo/model   →   docs/benchmarks/model.{json,md}
 */
import { BenchReport, summarize } from '@mnemo/bench';
import { initBackend, nativeAvailable } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { type FfnKind, LanguageModel, ffnPlan, modelCounts, parseModelConfig } from '../src/index';
import { mulberry32, parseArgvOrExit } from '@mnemo/core';

const quick = parseArgvOrExit(
  { quick: { type: 'boolean', description: '3 rounds instead of 12 (a smoke run)' } },
  { name: 'model bench', synopsis: 'usage: npm run bench -w @mnemo/model [-- --quick]' },
).values.quick;
const B = 16;
const T = 64;
const KINDS: Array<[string, FfnKind, number | undefined]> = [
  ['dense', 'dense', undefined],
  ['moe', 'moe', undefined],
  ['memory (1 block)', 'memory', 1],
  ['memoryPlus (3 blocks)', 'memoryPlus', 3],
];

function config(kind: FfnKind, blocks: number | undefined) {
  return parseModelConfig({
    vocabSize: 2048,
    dim: 128,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    maxSeqLen: 256,
    ffnHidden: 384,
    ffn: ffnPlan(kind, 4, blocks),
    moe: { experts: 4, hidden: 192 },
    memory: { numKeys: 128, heads: 4, topK: 16, keyDim: 64 },
    seed: 1,
  });
}

async function main() {
  const backend = await initBackend();
  const rng = mulberry32(7);
  const ids = tf.tensor2d(
    Array.from({ length: B * (T + 1) }, () => Math.floor(rng() * 2048)),
    [B, T + 1],
    'int32',
  );
  const runs = KINDS.map(([label, kind, blocks]) => {
    const cfg = config(kind, blocks);
    const model = new LanguageModel(cfg);
    const opt = tf.train.adam(1e-3);
    const step = () => {
      const l = opt.minimize(() => model.loss(ids, { training: true }), true, model.trainableVariables())!;
      l.dataSync();
      l.dispose();
      model.stepMemory();
    };
    return { label, cfg, model, step, ms: [] as number[] };
  });
  const reps = quick ? 3 : 12;
  for (const r of runs) for (let i = 0; i < 2; i++) r.step();
  for (let i = 0; i < reps; i++) {
    for (const r of runs) {
      const t0 = performance.now();
      r.step();
      r.ms.push(performance.now() - t0);
    }
  }

  const report = new BenchReport('model', {
    title: 'Language models on tfjs: training step and decoding speed per FFN kind',
    command: 'npm run bench -w @mnemo/model',
    description:
      `vocab 2048, D = 128, 4 blocks, heads 4 (KV heads 2), step over ${B} × ${T} tokens = forward + backward + Adam ` +
      `(+ sparse Adam of the pool's touched value rows). Memory: N = 128² = 16384 slots, H = 4, k = 16, dk = 64, dv = 128, ` +
      `QK-norm. tfjs backend ${backend.name}; kernels ${nativeAvailable().available ? 'native' : 'TypeScript'}. ` +
      `Medians of ${reps} interleaved steps after 2 warm-up steps each. Decoding: greedy, one sequence ` +
      `(prefill 16 tokens, then 64 single-token steps) and 8 sequences through decodeBatch.`,
  });
  const dense = summarize(runs[0]!.ms).median;
  for (const r of runs) {
    const s = summarize(r.ms);
    const c = modelCounts(r.cfg);
    // decoding speed
    const cache = r.model.newCache();
    let logits = r.model.prefill(
      Array.from({ length: 16 }, (_, i) => i + 1),
      cache,
    );
    const t0 = performance.now();
    for (let i = 0; i < 64; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
      logits = r.model.prefill([best], cache);
    }
    const single = 64 / ((performance.now() - t0) / 1e3);
    cache.dispose();
    const caches = Array.from({ length: 8 }, (_, b) => {
      const k = r.model.newCache();
      r.model.prefill(
        Array.from({ length: 4 + b }, (_, i) => i + 1),
        k,
      );
      return k;
    });
    const t1 = performance.now();
    for (let i = 0; i < 32; i++)
      r.model.decodeBatch(
        caches.map((_, b) => (i + b) % 2048),
        caches,
      );
    const batched = (8 * 32) / ((performance.now() - t1) / 1e3);
    for (const k of caches) k.dispose();
    report.addRow({
      model: r.label,
      'dense params': c.denseParams,
      'memory params': c.memoryParams,
      'fwd FLOPs/token': c.flopsPerToken,
      'step ms': s.median,
      'min ms': s.min,
      'x dense': s.median / dense,
      'train tok/s': (B * T) / (s.median / 1e3),
      'decode tok/s (1 seq)': single,
      'decode tok/s (8 seqs)': batched,
    });
  }
  const before = tf.memory().numTensors;
  for (const r of runs) r.step();
  report.note(`tfjs tensors leaked per step (all four models): ${tf.memory().numTensors - before}.`);
  report.note(
    'Attention runs its batched products through a local wasm kernel that loops 2-D XNNPACK products ' +
      '(tfjs-wasm sends batched BatchMatMul through a slow generic loop: 5–10x slower at these shapes).',
  );
  report.write();
  for (const r of runs) r.model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
