/**
 * Throughput of issue 15: the wasm backend's dense math on today's path (tfjs-wasm's kernel, one
 * thread) vs the native path (OpenBLAS on both cores, @mnemo/kernels), and a torch CPU reference
 * of the same shapes (bench/throughput_torch.py, Debian's python3-torch, run with /usr/bin/python3
 * when torch imports there; two worker processes, 1 and 2 threads), all interleaved in one run.
 *
 *   npm run bench:throughput -w trainer [-- --rounds 12 --profile]
 *     →   docs/benchmarks/throughput.{json,md}
 *
 * Models: the dense and Memory+ presets (D 128, 4 blocks, 16×64 tokens) and a wide model (D 512,
 * 8 blocks, 8/4 heads, SwiGLU 4·D, vocab 1024, 4×256 tokens). Training: one AdamW step (forward,
 * backward, update, Memory+'s sparse value update) per round per (model, lane); each round runs
 * every lane once (wasm, native, torch 1 thread, torch 2 threads), the order rotated each round,
 * so machine noise hits all alike; median. torch times its own step (perf_counter in the worker),
 * ours are timed in-process, so neither includes the pipe between them.
 * Decode: the server's batched step (`decodeBatch`, 8 sequences, context 64 after a prefill),
 * median of the steps. Matmul: GFLOP/s of the model's products on each path vs the FMA peak.
 * --profile: a per-kernel profile of one more training step and decode step per (model, path).
 */
import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { BenchReport, summarize } from '@mnemo/bench';
import { defineFlags, mulberry32, parseArgvOrExit } from '@mnemo/core';
import {
  type DensePath,
  denseAdamW,
  fmaPeakGflops,
  fmaPeakIsa,
  initBackend,
  installKernelProfiler,
  kernelProfile,
  nativeDense,
  resetKernelProfile,
  setDensePath,
  sumOfSquares,
} from '@mnemo/kernels';
import { type KVCache, LanguageModel, type ModelConfigInput, modelCounts, parseModelConfig } from '@mnemo/model';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, modelConfigFor, preset } from '../src/index';

const { values: flags } = parseArgvOrExit(
  defineFlags({
    rounds: { type: 'int', min: 1, default: 12, description: 'timed training steps per (model, path)' },
    'decode-steps': { type: 'int', min: 1, default: 24, description: 'timed decode steps per (model, path)' },
    profile: { type: 'boolean', description: 'add a per-kernel profile of each (model, path)' },
    torch: { type: 'string', default: '/usr/bin/python3', description: 'python with torch for the reference row' },
    models: { type: 'string', default: 'dense,memoryPlus,wide', description: 'models to run' },
  }),
  { name: 'throughput bench', synopsis: 'usage: npm run bench:throughput -w trainer [-- --rounds N --decode-steps N --profile]' },
);

interface Spec {
  name: string;
  model: ModelConfigInput;
  batch: number;
  seqLen: number;
}

function presetSpec(name: string): Spec {
  const cfg = preset(name);
  const model = { ...modelConfigFor(cfg, cfg.tokenizer.vocabSize) } as ModelConfigInput;
  return { name, model, batch: cfg.train.batch, seqLen: cfg.train.seqLen };
}

const WIDE: Spec = {
  name: 'wide',
  model: { vocabSize: 1024, dim: 512, layers: 8, heads: 8, kvHeads: 4, ffnHidden: 2048, maxSeqLen: 512, seed: 7 },
  batch: 4,
  seqLen: 256,
};
/** Linux /proc/stat: all CPUs' steal ticks and total ticks (null elsewhere). */
function cpuSteal(): { steal: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

const DECODE_BATCH = 8;
const DECODE_CONTEXT = 64;
const PATHS: DensePath[] = ['wasm', 'native'];
type TorchLane = 'torch1' | 'torch2';
type Lane = DensePath | TorchLane;
const isTorch = (l: Lane): l is TorchLane => l === 'torch1' || l === 'torch2';
/** The lanes in round r's order: rotated by r, so each lane takes each place equally often. */
const rotate = <T>(xs: readonly T[], r: number): T[] => xs.map((_, i) => xs[(((i + r) % xs.length) + xs.length) % xs.length]!);

async function main() {
  await initBackend({ backend: 'wasm' });
  const nat = nativeDense();
  if (!nat.addon) throw new Error(`the native dense path cannot run here: ${nat.reason}`);
  const specs = flags.models.split(',').map((m) => (m === 'wide' ? WIDE : presetSpec(m)));
  const report = new BenchReport('throughput', {
    title: 'Training and decode throughput: tfjs-wasm dense math vs native OpenBLAS on both cores',
    command: `npm run bench:throughput -w trainer -- --rounds ${flags.rounds} --decode-steps ${flags['decode-steps']}${flags.profile ? ' --profile' : ''}`,
    description:
      'tfjs wasm backend (single-threaded SIMD) for everything; the dense path decides who runs BatchMatMul: `wasm` = ' +
      "tfjs-wasm's XNNPACK kernel with explicit transposes and tfjs ops for AdamW (today's path), `native` = OpenBLAS cblas_sgemm on 2 threads " +
      'on the wasm heap in place, AdamW fused into one pass per parameter on 2 threads (kernel MnemoDenseAdamW, Σ g² read in place), ' +
      'Add / Sub / Multiply of ≥ 1M elements on 2 threads, RMSNorm, attention softmax and the SwiGLU gate fused into one kernel each ' +
      'forward and backward on 2 threads (siluMul, maskedSoftmax, rmsNorm), ' +
      'and Identity / same-dtype Cast sharing their input buffer instead of copying it (@mnemo/kernels, MNEMO_DENSE=native, the default when OpenBLAS loads). ' +
      `Training: one AdamW step per round per lane on the same batch, the lanes' order rotated each round, ${flags.rounds} timed ` +
      "rounds after 2 warm-up rounds, median step → tokens/s. Decode: the server's batched step `decodeBatch` of " +
      `${DECODE_BATCH} sequences at context ${DECODE_CONTEXT}+, ${flags['decode-steps']} steps per lane, rotated the same way, median. ` +
      'torch: the same shapes in PyTorch (bench/throughput_torch.py: dense transformer, RMSNorm, RoPE, GQA, SwiGLU, AdamW; ' +
      'no Memory+ layer), two worker processes on 1 and on 2 threads, their steps interleaved with ours: every round runs each ' +
      'lane (wasm, native, torch 1 thread, torch 2 threads) once, the order rotated each round; torch times its step itself.',
  });
  // best of 5: the loop cannot run faster than the machine, only slower when others use it
  const best = (threads: number) => Math.max(...Array.from({ length: 5 }, () => fmaPeakGflops(threads, 0.3) ?? 0));
  const peak1 = best(1);
  const peak2 = best(2);
  report.set('peak', { fma1: peak1, fma2: peak2 });
  const load = (await import('node:os')).loadavg();
  report.note(`1-minute load average at the start: ${load[0]!.toFixed(2)}; dense path native: ${nat.reason}.`);

  const torch = await startTorch();
  report.note(`torch reference: ${torch.reason}.`);
  const profiles: Record<string, { kernel: string; calls: number; ms: number }[]> = {};

  for (const spec of specs) {
    const steal0 = cpuSteal();
    const model = new LanguageModel(spec.model);
    const counts = modelCounts(model.config);
    const opt = new AdamW(model.trainableVariables());
    const r = mulberry32(5);
    const V = model.config.vocabSize;
    const ids = tf.tensor2d(
      Int32Array.from({ length: spec.batch * (spec.seqLen + 1) }, () => Math.floor(r() * V)),
      [spec.batch, spec.seqLen + 1],
      'int32',
    );
    const step = () => {
      opt.minimize(() => model.loss(ids, { training: true }), 1e-4);
      model.stepMemory();
    };
    const withTorch = torch.workers !== undefined && spec.name !== 'memoryPlus';
    const lanes: Lane[] = withTorch ? [...PATHS, 'torch1', 'torch2'] : PATHS;
    if (withTorch) for (const w of Object.values(torch.workers!)) await w.call({ op: 'init', key: spec.name, spec: torchSpec(spec) });
    const lap = async (lane: Lane, op: 'train' | 'decode', run: () => void): Promise<number> => {
      if (isTorch(lane)) return (await torch.workers![lane].call({ op, key: spec.name })).ms!;
      setDensePath(lane);
      const t0 = performance.now();
      run();
      return performance.now() - t0;
    };
    const trainMs: Record<Lane, number[]> = { wasm: [], native: [], torch1: [], torch2: [] };
    process.stderr.write(`[throughput] ${spec.name}: training, ${flags.rounds} rounds × ${lanes.join('/')}\n`);
    for (let round = -2; round < flags.rounds; round++) {
      for (const lane of rotate(lanes, round)) {
        const ms = await lap(lane, 'train', step);
        if (round >= 0) trainMs[lane].push(ms);
      }
    }
    // the optimizer alone: AdamW over every parameter with fixed gradients, paths alternating
    const grads = tf.tidy(() => model.trainableVariables().map((x, i) => tf.mul(tf.randomNormal(x.shape, 0, 1, 'float32', i), 1e-3)));
    const adamMs: Record<DensePath, number[]> = { wasm: [], native: [] };
    const params = grads.reduce((n, g) => n + g.size, 0);
    for (let round = -1; round < 6; round++) {
      for (const p of PATHS) {
        setDensePath(p);
        const t0 = performance.now();
        const sq = sumOfSquares(grads);
        model.trainableVariables().forEach((x, i) => {
          const r = denseAdamW(x, opt.m[i]!, opt.v[i]!, grads[i]!, {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weightDecay: 0,
            t: 10,
            scale: sq > 0 ? 1 : 0,
          });
          tf.dispose([r.x, r.m, r.v]);
        });
        if (round >= 0) adamMs[p].push(performance.now() - t0);
      }
    }
    tf.dispose(grads);
    // decode: one set of caches per path, filled by the same prompts
    const caches: Record<DensePath, KVCache[]> = { wasm: [], native: [] };
    for (const p of PATHS) {
      setDensePath(p);
      for (let b = 0; b < DECODE_BATCH; b++) {
        const c = model.newCache();
        model.prefill(
          Array.from({ length: DECODE_CONTEXT }, (_, i) => (i * 7 + b * 13) % V),
          c,
        );
        caches[p].push(c);
      }
    }
    const decodeMs: Record<Lane, number[]> = { wasm: [], native: [], torch1: [], torch2: [] };
    const toks = Array.from({ length: DECODE_BATCH }, (_, b) => (b * 31) % V);
    for (let s = -2; s < flags['decode-steps']; s++) {
      for (const lane of rotate(lanes, s)) {
        const ms = await lap(lane, 'decode', () => model.decodeBatch(toks, caches[lane as DensePath]));
        if (s >= 0) decodeMs[lane].push(ms);
      }
    }
    if (withTorch) for (const w of Object.values(torch.workers!)) await w.call({ op: 'free', key: spec.name });
    const tokens = spec.batch * spec.seqLen;
    const trainTps = (p: Lane) => tokens / (summarize(trainMs[p]).median / 1e3);
    const decodeTps = (p: Lane) => DECODE_BATCH / (summarize(decodeMs[p]).median / 1e3);
    const t = withTorch
      ? { train1: trainTps('torch1'), trainN: trainTps('torch2'), decode1: decodeTps('torch1'), decodeN: decodeTps('torch2') }
      : undefined;
    const noTorch = torch.workers ? 'n/a (no Memory+ layer in the torch reference)' : torch.reason;
    if (t) {
      // paired within each round: the host's drift between rounds cancels
      const best: TorchLane = t.train1 >= t.trainN ? 'torch1' : 'torch2';
      const paired = summarize(trainMs.native.map((ms, i) => trainMs[best][i]! / ms)).median;
      report.set(`${spec.name}.trainNativeOverTorchPaired`, paired);
      report.note(
        `${spec.name}: native / torch (${best === 'torch1' ? '1 thread' : '2 threads'}) training, the median of the ${flags.rounds} per-round ratios: ${paired.toFixed(2)}×.`,
      );
    }
    const shape = `D ${model.config.dim}, ${model.config.layers} blocks, ${spec.batch}×${spec.seqLen}`;
    report.addRow({
      model: spec.name,
      shape,
      measure: 'train tokens/s',
      'wasm path': Math.round(trainTps('wasm')),
      'native path': Math.round(trainTps('native')),
      'native / wasm': Number((trainTps('native') / trainTps('wasm')).toFixed(2)),
      'torch 1 thread': t ? Math.round(t.train1) : noTorch,
      'torch 2 threads': t ? Math.round(t.trainN) : noTorch,
      'native / best torch': t ? Number((trainTps('native') / Math.max(t.train1, t.trainN)).toFixed(2)) : null,
    });
    report.addRow({
      model: spec.name,
      shape: `${DECODE_BATCH} sequences, context ${DECODE_CONTEXT}+`,
      measure: 'decode tokens/s',
      'wasm path': Math.round(decodeTps('wasm')),
      'native path': Math.round(decodeTps('native')),
      'native / wasm': Number((decodeTps('native') / decodeTps('wasm')).toFixed(2)),
      'torch 1 thread': t ? Math.round(t.decode1) : noTorch,
      'torch 2 threads': t ? Math.round(t.decodeN) : noTorch,
      'native / best torch': t ? Number((decodeTps('native') / Math.max(t.decode1, t.decodeN)).toFixed(2)) : null,
    });
    const adam = (p: DensePath) => summarize(adamMs[p]).median;
    report.addRow({
      model: spec.name,
      shape: `${(params / 1e6).toFixed(2)} M parameters`,
      measure: 'AdamW step ms (lower is better)',
      'wasm path': Number(adam('wasm').toFixed(1)),
      'native path': Number(adam('native').toFixed(1)),
      'native / wasm': Number((adam('wasm') / adam('native')).toFixed(2)),
    });
    report.set(`${spec.name}.adamMs`, adamMs);
    report.set(`${spec.name}.trainMs`, trainMs);
    report.set(`${spec.name}.decodeMs`, decodeMs);
    report.set(`${spec.name}.counts`, counts);
    const steal1 = cpuSteal();
    if (steal0 && steal1 && steal1.total > steal0.total) {
      // time the hypervisor ran other guests on our vCPUs: slows 2-thread lanes most
      const pct = (100 * (steal1.steal - steal0.steal)) / (steal1.total - steal0.total);
      report.set(`${spec.name}.stealPct`, Number(pct.toFixed(1)));
      report.note(`${spec.name}: CPU steal (host time given to other guests) during its lanes: ${pct.toFixed(1)}%.`);
    }

    if (flags.profile) {
      installKernelProfiler('wasm');
      for (const p of PATHS) {
        setDensePath(p);
        step(); // warm (the profiler's first call of each kernel)
        resetKernelProfile();
        step();
        profiles[`${spec.name} train ${p}`] = kernelProfile();
        resetKernelProfile();
        model.decodeBatch(toks, caches[p]);
        profiles[`${spec.name} decode ${p}`] = kernelProfile();
      }
    }
    for (const p of PATHS) for (const c of caches[p]) c.dispose();
    ids.dispose();
    opt.dispose();
    model.dispose();
  }

  matmulRows(report, peak2);
  report.note(
    `Peak: a tight ${fmaPeakIsa() === 'avx512' ? 'AVX-512 (zmm)' : 'AVX2'} FMA loop (12 independent chains) runs ${peak1.toFixed(1)} GFLOP/s on one thread and ` +
      `${peak2.toFixed(1)} on two; GFLOP/s columns of the matmul rows are against the two-thread figure.`,
  );
  if (flags.profile) {
    report.set('profiles', profiles);
    for (const [key, rows] of Object.entries(profiles)) {
      const total = rows.reduce((s, x) => s + x.ms, 0);
      const top = rows
        .slice(0, 6)
        .map((x) => `${x.kernel} ${((100 * x.ms) / total).toFixed(0)}%`)
        .join(', ');
      report.note(`profile, ${key}: ${total.toFixed(1)} ms in kernels — ${top}`);
    }
  }
  setDensePath();
  if (torch.workers) for (const w of Object.values(torch.workers)) w.close();
  report.write([
    'model',
    'shape',
    'measure',
    'wasm path',
    'native path',
    'native / wasm',
    'torch 1 thread',
    'torch 2 threads',
    'native / best torch',
    'wasm GFLOP/s',
    'native GFLOP/s',
    'native % of peak',
  ]);
}

/** GFLOP/s of the models' products on both paths, interleaved. */
function matmulRows(report: BenchReport, peak: number) {
  // [name, m, k, n, transA, transB]: forward x·W, backward dy·Wᵀ and xᵀ·dy of the FFN and QKV
  const shapes: [string, number, number, number, boolean, boolean][] = [
    ['preset FFN up x·W [1024,128]·[128,512]', 1024, 128, 512, false, false],
    ['preset FFN dx = dy·Wᵀ [1024,512]·[512,128]ᵀ', 1024, 512, 128, false, true],
    ['preset FFN dW = xᵀ·dy [128,1024]ᵀ·[1024,512]', 128, 1024, 512, true, false],
    ['wide FFN up x·W [1024,512]·[512,2048]', 1024, 512, 2048, false, false],
    ['wide FFN dx = dy·Wᵀ [1024,2048]·[2048,512]ᵀ', 1024, 2048, 512, false, true],
    ['wide FFN dW = xᵀ·dy [512,1024]ᵀ·[1024,2048]', 512, 1024, 2048, true, false],
    ['decode logits [8,512]·[512,1024]', 8, 512, 1024, false, false],
  ];
  const r = mulberry32(9);
  for (const [name, m, k, n, ta, tb] of shapes) {
    const a = tf.tensor(
      Float32Array.from({ length: m * k }, () => r() - 0.5),
      ta ? [k, m] : [m, k],
    );
    const b = tf.tensor(
      Float32Array.from({ length: k * n }, () => r() - 0.5),
      tb ? [n, k] : [k, n],
    );
    const ms: Record<DensePath, number[]> = { wasm: [], native: [] };
    for (let round = -2; round < 15; round++) {
      for (const p of PATHS) {
        setDensePath(p);
        const t0 = performance.now();
        const reps = m * n * k < 1e7 ? 20 : 1;
        for (let i = 0; i < reps; i++) tf.matMul(a, b, ta, tb).dispose();
        if (round >= 0) ms[p].push((performance.now() - t0) / reps);
      }
    }
    const gf = (p: DensePath) => (2 * m * n * k) / (summarize(ms[p]).median / 1e3) / 1e9;
    report.addRow({
      model: 'matmul',
      shape: name,
      measure: 'GFLOP/s',
      'wasm GFLOP/s': Number(gf('wasm').toFixed(1)),
      'native GFLOP/s': Number(gf('native').toFixed(1)),
      'native / wasm': Number((gf('native') / gf('wasm')).toFixed(2)),
      'native % of peak': Number(((100 * gf('native')) / peak).toFixed(0)),
    });
    tf.dispose([a, b]);
  }
}

/** One torch worker process (bench/throughput_torch.py THREADS): a JSON line per request and reply. */
class TorchWorker {
  private readonly waiting: ((reply: TorchReply) => void)[] = [];
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private exited: string | null = null;

  constructor(py: string, script: string, threads: number) {
    this.child = spawn(py, [script, String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.waiting.shift()?.(JSON.parse(line) as TorchReply));
    this.child.on('exit', (code) => {
      this.exited = `torch worker (${threads} threads) exited with code ${code}`;
      for (const w of this.waiting.splice(0)) w({ error: this.exited });
    });
  }

  /** Send one request; the reply, or an Error naming what the worker said. */
  async call(req: Record<string, unknown>): Promise<TorchReply> {
    if (this.exited) throw new Error(this.exited);
    const reply = new Promise<TorchReply>((resolve) => this.waiting.push(resolve));
    if (req.op !== 'ready') this.child.stdin.write(`${JSON.stringify(req)}\n`);
    const r = await reply;
    if (r.error) throw new Error(`torch worker, ${String(req.op)}: ${r.error}`);
    return r;
  }

  close(): void {
    this.child.stdin.end();
  }
}

interface TorchReply {
  ready?: boolean;
  torch?: string;
  threads?: number;
  ok?: boolean;
  ms?: number;
  error?: string;
}

interface TorchLanes {
  workers?: Record<TorchLane, TorchWorker>;
  reason: string;
}

/** The two torch workers (1 and 2 threads), or why there are none. */
async function startTorch(): Promise<TorchLanes> {
  const py = flags.torch;
  const script = path.join(import.meta.dirname, 'throughput_torch.py');
  if (!existsSync(py)) return { reason: `torch not installed (no ${py})` };
  const probe = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) return { reason: `torch not installed (${py} cannot import it)` };
  const workers = { torch1: new TorchWorker(py, script, 1), torch2: new TorchWorker(py, script, 2) };
  const ready = await Promise.all(Object.values(workers).map((w) => w.call({ op: 'ready' })));
  process.stderr.write(
    `[throughput] torch ${ready[0]!.torch} reference (${py}), workers on ${ready.map((r) => r.threads).join(' and ')} threads\n`,
  );
  return { workers, reason: `torch ${ready[0]!.torch} (${py}), worker processes on ${ready.map((r) => r.threads).join(' and ')} threads` };
}

function torchSpec(s: Spec) {
  const c = parseModelConfig(s.model);
  return {
    name: s.name,
    dim: c.dim,
    layers: c.layers,
    heads: c.heads,
    kvHeads: c.kvHeads,
    ffnHidden: c.ffnHidden,
    vocab: c.vocabSize,
    batch: s.batch,
    seqLen: s.seqLen,
    decodeBatch: DECODE_BATCH,
    decodeContext: DECODE_CONTEXT,
  };
}

await main();
