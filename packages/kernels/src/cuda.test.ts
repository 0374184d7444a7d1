import { execFileSync } from 'node:child_process';
import fs, { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError, ConfigError, DisposedError, ShapeError, ValueError, mulberry32 } from '@mnemo/core';
import { CudaValueTable, type OptimizerConfig, type StorageDtype, ValueStore, cudaAddonPath, cudaPkTopK, cudaStatus } from './index';
import { productKeyTopK } from './pk-topk';
import { relErr } from './testing';

// ---- plain float64 CPU references (what the GPU results are judged by) -----------------------

/** out [B, dv] = Σ_j w[b, j] · V[ids[b, j]]; id -1 skipped. */
function refForward(values: Float32Array, dv: number, ids: Int32Array, w: Float32Array, bagSize: number, batch: number): Float64Array {
  const out = new Float64Array(batch * dv);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < bagSize; j++) {
      const id = ids[b * bagSize + j]!;
      if (id < 0) continue;
      for (let c = 0; c < dv; c++) out[b * dv + c]! += w[b * bagSize + j]! * values[id * dv + c]!;
    }
  }
  return out;
}

interface RefState {
  values: Float64Array; // [rows, dv]
  accum: Float64Array; // Adagrad
  m: Float64Array; // Adam
  v: Float64Array;
  t: Int32Array; // Adam per-row steps
}

function refState(values: Float32Array): RefState {
  const n = values.length;
  return {
    values: Float64Array.from(values),
    accum: new Float64Array(n),
    m: new Float64Array(n),
    v: new Float64Array(n),
    t: new Int32Array(n),
  };
}

type Opt = { kind: 'sgd' | 'adagrad' | 'adam'; lr: number; beta1: number; beta2: number; eps: number };

/** The table's optimizer config for a reference Opt. */
const config = (o: Opt): OptimizerConfig => ({ kind: o.kind, lr: o.lr, betas: [o.beta1, o.beta2], eps: o.eps });

/** A GPU table holding `values` [rows, dv]. */
function gpuTable(values: Float32Array, rows: number, dv: number, optimizer: OptimizerConfig = { kind: 'sgd', lr: 0.1 }): CudaValueTable {
  const t = CudaValueTable.create({ rows, dim: dv, optimizer, init: 'zeros' });
  t.upload(values);
  return t;
}

/** gw [B, L] with V before the step, then the optimizer on every touched row. */
function refBackwardStep(
  s: RefState,
  dv: number,
  ids: Int32Array,
  w: Float32Array,
  gOut: Float32Array,
  bagSize: number,
  opt: Opt,
): Float64Array {
  const positions = ids.length;
  const gw = new Float64Array(positions);
  const gV = new Map<number, Float64Array>();
  for (let p = 0; p < positions; p++) {
    const id = ids[p]!;
    if (id < 0) continue;
    const b = Math.floor(p / bagSize);
    let dot = 0;
    for (let c = 0; c < dv; c++) dot += gOut[b * dv + c]! * s.values[id * dv + c]!;
    gw[p] = dot;
    let g = gV.get(id);
    if (!g) {
      g = new Float64Array(dv);
      gV.set(id, g);
    }
    for (let c = 0; c < dv; c++) g[c]! += w[p]! * gOut[b * dv + c]!;
  }
  for (const [r, g] of gV) {
    if (opt.kind === 'adam') s.t[r]! += 1;
    const t = s.t[r]!;
    for (let c = 0; c < dv; c++) {
      const i = r * dv + c;
      if (opt.kind === 'sgd') {
        s.values[i]! -= opt.lr * g[c]!;
      } else if (opt.kind === 'adagrad') {
        s.accum[i]! += g[c]! * g[c]!;
        s.values[i]! -= (opt.lr * g[c]!) / (Math.sqrt(s.accum[i]!) + opt.eps);
      } else {
        s.m[i] = opt.beta1 * s.m[i]! + (1 - opt.beta1) * g[c]!;
        s.v[i] = opt.beta2 * s.v[i]! + (1 - opt.beta2) * g[c]! * g[c]!;
        const mHat = s.m[i]! / (1 - opt.beta1 ** t);
        const vHat = s.v[i]! / (1 - opt.beta2 ** t);
        s.values[i]! -= (opt.lr * mHat) / (Math.sqrt(vHat) + opt.eps);
      }
    }
  }
  return gw;
}

/** Brute force over all n² slots of each head, float64; ties → lower slot id. */
function refPkTopK(q: Float32Array, keys: Float32Array, batch: number, heads: number, n: number, dk: number, k: number) {
  const half = dk / 2;
  const scores = new Float64Array(batch * heads * k);
  const ids = new Int32Array(batch * heads * k);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const qo = (b * heads + h) * dk;
      const dot = (half0: number, row: number) => {
        let x = 0;
        const ko = ((h * 2 + half0) * n + row) * half;
        for (let c = 0; c < half; c++) x += q[qo + half0 * half + c]! * keys[ko + c]!;
        return x;
      };
      const s1 = Array.from({ length: n }, (_, i) => dot(0, i));
      const s2 = Array.from({ length: n }, (_, j) => dot(1, j));
      const all: [number, number][] = [];
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) all.push([s1[i]! + s2[j]!, i * n + j]);
      all.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
      for (let t = 0; t < k; t++) {
        scores[(b * heads + h) * k + t] = all[t]![0];
        ids[(b * heads + h) * k + t] = all[t]![1];
      }
    }
  }
  return { scores, ids };
}

const rng = mulberry32;

function randn(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${what}: worst relative error at ${at} (got ${got[at]}, want ${want[at]})`).toBeLessThanOrEqual(tol);
}

/** bf16 m is rounded once per update, on GPU and CPU at slightly different values: looser */
const momentTol = (o: OptimizerConfig) => (o.momentDtype === 'bfloat16' ? 2e-3 : 1e-4);

function nvccOnPath(): boolean {
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const status = cudaStatus();

/** Runs `body` only on a machine with a usable GPU; elsewhere says why it did not. */
function onGpu(body: () => void): () => void {
  return () => {
    if (!status.available) {
      console.log('skip: ' + status.reason);
      return;
    }
    body();
  };
}

// ---- build and status (run everywhere) -------------------------------------------------------

describe('CUDA addon build and status', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-cuda-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** a store file written by a CPU ValueStore with these options */
  const saved = (name: string, opts: Parameters<typeof ValueStore.create>[0]): string => {
    const file = path.join(dir, `${name}.safetensors`);
    const s = ValueStore.create(opts);
    s.save(file);
    s.dispose();
    return file;
  };
  it('the addon was compiled by the install step when nvcc is on PATH, and it loads', () => {
    if (!nvccOnPath()) {
      console.log('skip: nvcc is not on PATH, so no CUDA build is expected');
      expect(status.available).toBe(false);
      return;
    }
    expect(existsSync(cudaAddonPath()), `${cudaAddonPath()} should exist after install`).toBe(true);
    const addon = createRequire(import.meta.url)(cudaAddonPath()) as { deviceCount(): { count: number; reason: string } };
    const probe = addon.deviceCount(); // answers, never throws, with or without a driver
    expect(typeof probe.count).toBe('number');
    expect(probe.count === 0 ? probe.reason.length > 0 : true).toBe(true);
    expect(status.built).toBe(true);
  });

  it('cudaStatus() never throws and explains itself', () => {
    const s = cudaStatus();
    expect(typeof s.available).toBe('boolean');
    expect(typeof s.built).toBe('boolean');
    expect(s.reason.length).toBeGreaterThan(0);
    expect(s.available ? s.devices > 0 && s.built : s.devices === 0).toBe(true);
    // No NVIDIA device node means no GPU: the status must say so, not crash.
    if (!existsSync('/dev/nvidiactl')) {
      expect(s.available).toBe(false);
      console.log('cudaStatus here: ' + s.reason);
    }
  });

  it('without a GPU, every kernel entry point throws BackendError with the reason', () => {
    if (status.available) return; // covered by the runtime tests below
    const opts = { rows: 2, dim: 4, optimizer: { kind: 'sgd', lr: 1 } } as const;
    expect(() => CudaValueTable.create(opts)).toThrow(BackendError);
    expect(() => CudaValueTable.create(opts)).toThrow(status.reason);
    expect(() => CudaValueTable.load(saved('ok', opts))).toThrow(BackendError);
    const q = new Float32Array(4);
    const keys = new Float32Array(2 * 2 * 2);
    expect(() => cudaPkTopK(q, keys, { batch: 1, heads: 1, n: 2, dk: 4, k: 1 })).toThrow(BackendError);
  });

  it('options are validated before the device is needed (ValueStore names and checks), errors name the field', () => {
    const make = (o: object) => () => CudaValueTable.create({ rows: 2, dim: 4, optimizer: { kind: 'sgd', lr: 1 }, ...o });
    expect(make({ rows: 0 })).toThrow(/rows/);
    expect(make({ dim: 4.5 })).toThrow(ConfigError);
    expect(make({ dim: 4.5 })).toThrow(/dim/);
    expect(make({ optimizer: { kind: 'rmsprop', lr: 1 } })).toThrow(/optimizer\.kind/);
    expect(make({ optimizer: { kind: 'adam', lr: -1 } })).toThrow(/optimizer\.lr/);
    expect(make({ optimizer: { kind: 'adam', lr: 1, betas: [1, 0.9] } })).toThrow(/optimizer\.betas\[0\]/);
    expect(make({ init: { kind: 'uniform' } })).toThrow(/init/);
    expect(make({ deferred: 'yes' })).toThrow(/deferred/);
    // what the CUDA kernels cannot do
    for (const [o, field] of [
      [{ dtype: 'bfloat16' }, /dtype/],
      [{ optimizer: { kind: 'sgd', lr: 1, clip: { mode: 'row', maxNorm: 1 } } }, /optimizer\.clip/],
      [{ optimizer: { kind: 'adam', lr: 1, weightDecay: 0.01 } }, /optimizer\.weightDecay/],
      [{ file: path.join(dir, 'x.safetensors') }, /file/],
      [{ impl: 'ts' }, /impl/],
    ] as [object, RegExp][]) {
      expect(make(o)).toThrow(ConfigError);
      expect(make(o)).toThrow(field);
    }
    // files: checked before the device too
    const sgd = { kind: 'sgd', lr: 1 } as const;
    expect(() => CudaValueTable.load(saved('bf16', { rows: 3, dim: 2, dtype: 'bfloat16' as StorageDtype, optimizer: sgd }))).toThrow(
      /dtype/,
    );
    const clip = saved('clip', { rows: 3, dim: 2, optimizer: { ...sgd, clip: { mode: 'global', maxNorm: 1 } } });
    expect(() => CudaValueTable.load(clip)).toThrow(/optimizer\.clip/);
    expect(() => CudaValueTable.load(saved('plain', { rows: 3, dim: 2, optimizer: sgd }), { mmap: true })).toThrow(/mmap/);
    expect(() => CudaValueTable.load(saved('plain', { rows: 3, dim: 2, optimizer: sgd }), { impl: 'ts' })).toThrow(/impl/);
    fs.writeFileSync(path.join(dir, 'junk.safetensors'), 'not a store');
    expect(() => CudaValueTable.load(path.join(dir, 'junk.safetensors'))).toThrow(ValueError);
    expect(() => cudaPkTopK(new Float32Array(3), new Float32Array(8), { batch: 1, heads: 1, n: 2, dk: 4, k: 1 })).toThrow(/queries/);
    expect(() => cudaPkTopK(new Float32Array(4), new Float32Array(8), { batch: 1, heads: 1, n: 2, dk: 4, k: 3 })).toThrow(/k: must be ≤ n/);
    const nan = Float32Array.of(0, Number.NaN, 0, 0);
    expect(() => cudaPkTopK(nan, new Float32Array(8), { batch: 1, heads: 1, n: 2, dk: 4, k: 1 })).toThrow(ValueError);
  });
});

// ---- the references themselves (run everywhere: they judge the GPU) ---------------------------

describe('CPU references used by the CUDA runtime tests', () => {
  it('refForward: hand-computed bags with a duplicate, padding and an empty bag', () => {
    const values = Float32Array.of(1, 2, 10, 20, 100, 200); // [3, 2]
    const ids = Int32Array.of(0, 2, 0, -1, 1, -1, -1, -1, -1); // [3, 3]
    const w = Float32Array.of(1, 0.5, 2, 9, 3, 9, 9, 9, 9);
    expect(Array.from(refForward(values, 2, ids, w, 3, 3))).toEqual([53, 106, 30, 60, 0, 0]);
  });

  it('refBackwardStep (SGD): gw uses V before the step; duplicate ids sum their gradients', () => {
    const s = refState(Float32Array.of(1, 2, 10, 20)); // [2, 2]
    const ids = Int32Array.of(0, 0, 1, -1); // [2, 2]
    const w = Float32Array.of(1, 2, 3, 5);
    const gOut = Float32Array.of(1, -1, 0.5, 0.5); // [2, 2]
    const gw = refBackwardStep(s, 2, ids, w, gOut, 2, { kind: 'sgd', lr: 0.1, beta1: 0, beta2: 0, eps: 1 });
    expect(Array.from(gw)).toEqual([-1, -1, 15, 0]);
    // gV[0] = 3 · (1, -1); gV[1] = 3 · (0.5, 0.5)
    expectClose(s.values, [1 - 0.3, 2 + 0.3, 10 - 0.15, 20 - 0.15], 1e-12, 'values');
  });

  it('refBackwardStep (Adam): per-row step counts advance only for touched rows', () => {
    const s = refState(new Float32Array(4)); // [4, 1]
    const opt: Opt = { kind: 'adam', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    refBackwardStep(s, 1, Int32Array.of(0, 1), Float32Array.of(1, 1), Float32Array.of(1), 2, opt);
    refBackwardStep(s, 1, Int32Array.of(1, 3), Float32Array.of(1, 1), Float32Array.of(1), 2, opt);
    expect(Array.from(s.t)).toEqual([1, 2, 0, 1]);
    // first Adam step moves by lr · sign(g) (bias-corrected), whatever the global step is
    expectClose([s.values[0]!, s.values[3]!], [-0.01, -0.01], 1e-6, 'first steps');
    expect(s.values[2]).toBe(0);
  });

  it('refPkTopK agrees with the TypeScript product-key kernel', () => {
    const r = rng(7);
    const [batch, heads, n, dk, k] = [3, 2, 9, 6, 5];
    const q = randn(batch * heads * dk, r);
    const keys = randn(heads * 2 * n * (dk / 2), r);
    const ref = refPkTopK(q, keys, batch, heads, n, dk, k);
    const ts = productKeyTopK(q, keys, { batch, heads, n, dk, k }, { impl: 'ts' });
    expect(Array.from(ts.ids)).toEqual(Array.from(ref.ids));
    expectClose(ts.scores, ref.scores, 1e-6, 'scores');
  });
});

// ---- CUDA runtime (only with a GPU; otherwise each prints why it did not run) ------------------

describe('CUDA kernels on the GPU', () => {
  const dvs = [36, 7]; // float4 path (dv % 4 == 0) and scalar path

  function bags(r: () => number, batch: number, bagSize: number, rows: number): { ids: Int32Array; w: Float32Array } {
    const ids = Int32Array.from({ length: batch * bagSize }, () => Math.floor(r() * rows));
    ids[1] = ids[0]!; // duplicate inside a bag
    ids[bagSize] = ids[0]!; // and across bags
    ids[2] = -1; // padding
    for (let j = 0; j < bagSize; j++) ids[(batch - 1) * bagSize + j] = -1; // an empty bag
    return { ids, w: randn(batch * bagSize, r) };
  }

  it(
    'forward matches the reference (duplicates, padding, an all-padding bag)',
    onGpu(() => {
      for (const dv of dvs) {
        const r = rng(11 + dv);
        const [rows, batch, bagSize] = [50, 9, 6];
        const values = randn(rows * dv, r);
        const { ids, w } = bags(r, batch, bagSize, rows);
        const table = gpuTable(values, rows, dv);
        const out = table.forward(ids, w, bagSize);
        expectClose(out, refForward(values, dv, ids, w, bagSize, batch), 1e-5, `forward dv=${dv}`);
        expect(Array.from(out.subarray((batch - 1) * dv))).toEqual(new Array(dv).fill(0));
        expect(Array.from(table.download())).toEqual(Array.from(values)); // forward leaves V alone
        table.dispose();
      }
    }),
  );

  it(
    'empty bags: bagSize 0 gives zeros and a step that touches nothing',
    onGpu(() => {
      const values = randn(4 * 8, rng(3));
      const table = gpuTable(values, 4, 8, { kind: 'adam', lr: 1 });
      expect(Array.from(table.forward(new Int32Array(0), new Float32Array(0), 0, 3))).toEqual(new Array(24).fill(0));
      const gw = table.backward(new Int32Array(0), new Float32Array(0), new Float32Array(16), 0);
      expect(gw.length).toBe(0);
      const allPad = table.backward(Int32Array.of(-1, -1), Float32Array.of(1, 1), randn(8, rng(4)), 2);
      expect(Array.from(allPad)).toEqual([0, 0]);
      expect(table.stats().touchedRows).toBe(0);
      expect(Array.from(table.download())).toEqual(Array.from(values));
      table.dispose();
    }),
  );

  for (const kind of ['sgd', 'adagrad', 'adam'] as const) {
    it(
      `backward + fused ${kind} over 3 steps matches the reference (gw, touched rows, untouched rows)`,
      onGpu(() => {
        for (const dv of dvs) {
          const r = rng(100 + dv);
          const [rows, batch, bagSize] = [40, 12, 8];
          const values = randn(rows * dv, r, 0.5);
          const opt: Opt = { kind, lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-6 };
          const table = gpuTable(values, rows, dv, config(opt));
          const ref = refState(values);
          for (let step = 0; step < 3; step++) {
            // rows 0..rows/2 in step 0, then the whole table: Adam step counts differ per row
            const { ids, w } = bags(r, batch, bagSize, step === 0 ? rows / 2 : rows);
            const gOut = randn(batch * dv, r);
            const gw = table.backward(ids, w, gOut, bagSize);
            const want = refBackwardStep(ref, dv, ids, w, gOut, bagSize, opt);
            expectClose(gw, want, 1e-5, `${kind} dv=${dv} step ${step} gw`);
            expectClose(table.download(), ref.values, 1e-5, `${kind} dv=${dv} step ${step} values`);
          }
          const untouched = ref.values.findIndex((x, i) => x === values[i]);
          if (untouched >= 0) expect(table.download()[untouched]).toBe(values[untouched]);
          table.dispose();
          expect(() => table.download()).toThrow(DisposedError);
        }
      }),
    );
  }

  it(
    'a hot row read by every position sums all its readers',
    onGpu(() => {
      const [rows, dv, batch, bagSize] = [3, 64, 70, 5]; // 350 readers of row 1: > 32, several warps' worth
      const r = rng(5);
      const values = randn(rows * dv, r);
      const ids = new Int32Array(batch * bagSize).fill(1);
      const w = randn(batch * bagSize, r);
      const gOut = randn(batch * dv, r);
      const opt: Opt = { kind: 'sgd', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
      const table = gpuTable(values, rows, dv, config(opt));
      const ref = refState(values);
      expectClose(table.backward(ids, w, gOut, bagSize), refBackwardStep(ref, dv, ids, w, gOut, bagSize, opt), 1e-5, 'gw');
      expectClose(table.download(), ref.values, 1e-4, 'values');
      table.dispose();
    }),
  );

  it(
    'every optimizer the table takes matches the CPU ValueStore over 3 steps; state survives save → ValueStore.load → CudaValueTable.load',
    onGpu(() => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-cuda-state-'));
      const [rows, dv, batch, bagSize] = [40, 12, 10, 6];
      for (const optimizer of [
        { kind: 'adagrad', lr: 0.05 },
        { kind: 'adam', lr: 0.02, betas: [0.8, 0.95] },
        { kind: 'adam', lr: 0.02, secondMoment: 'row' },
        { kind: 'adam', lr: 0.02, secondMoment: 'row', momentDtype: 'bfloat16' },
      ] as OptimizerConfig[]) {
        const what = JSON.stringify(optimizer);
        const init = { kind: 'normal', std: 0.5, seed: 3 } as const;
        const gpu = CudaValueTable.create({ rows, dim: dv, optimizer, init });
        const cpu = ValueStore.create({ rows, dim: dv, optimizer, init, impl: 'ts' });
        const all = Int32Array.from({ length: rows }, (_, i) => i);
        expect(gpu.readRows(all)).toEqual(cpu.readRows(all)); // same init, same numbers
        const r = rng(17);
        const batches = [0, 1, 2, 3, 4].map(() => ({ ...bags(r, batch, bagSize, rows), gOut: randn(batch * dv, r) }));
        for (const b of batches.slice(0, 3)) {
          expectClose(gpu.backward(b.ids, b.w, b.gOut, bagSize), cpu.backward(b.ids, b.w, b.gOut, bagSize), 1e-5, `${what} gw`);
        }
        expect(relErr(gpu.readRows(all), cpu.readRows(all)), `${what} values`).toBeLessThan(momentTol(optimizer));
        // the GPU's state in the store file: the CPU store continues as the GPU table does
        const file = path.join(dir, 'gpu.safetensors');
        gpu.save(file);
        const onCpu = ValueStore.load(file, { impl: 'ts' });
        const back = CudaValueTable.load(file);
        expect(onCpu.readRows(all)).toEqual(gpu.readRows(all));
        expect(back.readRows(all)).toEqual(gpu.readRows(all));
        expect(onCpu.stats().steps).toBe(3);
        for (const b of batches.slice(3)) for (const t of [gpu, onCpu, back]) t.backward(b.ids, b.w, b.gOut, bagSize);
        expect(relErr(onCpu.readRows(all), gpu.readRows(all)), `${what} after reload`).toBeLessThan(momentTol(optimizer));
        expect(back.readRows(all)).toEqual(gpu.readRows(all)); // same kernels, same state: bit-identical
        // without the state (a fresh Adam/Adagrad on the same values) the update differs
        const fresh = ValueStore.create({ rows, dim: dv, optimizer, init: 'zeros', impl: 'ts' });
        const reread = ValueStore.load(file, { impl: 'ts' });
        fresh.writeRows(all, reread.readRows(all));
        reread.dispose();
        for (const b of batches.slice(3)) fresh.backward(b.ids, b.w, b.gOut, bagSize);
        expect(relErr(fresh.readRows(all), onCpu.readRows(all)), `${what} state matters`).toBeGreaterThan(1e-4);
        for (const t of [gpu, cpu, onCpu, back, fresh]) t.dispose();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }),
  );

  it(
    'ids outside [-1, rows) are refused with ValueError',
    onGpu(() => {
      const table = gpuTable(new Float32Array(8), 2, 4);
      expect(() => table.forward(Int32Array.of(0, 2), Float32Array.of(1, 1), 2)).toThrow(ValueError);
      expect(() => table.forward(Int32Array.of(-2, 0), Float32Array.of(1, 1), 2)).toThrow(ValueError);
      // and a table of the wrong size is refused
      expect(() => table.upload(new Float32Array(7))).toThrow(ShapeError);
      table.dispose();
    }),
  );

  it(
    'product-key top-k matches brute force over all n² slots, including exact ties',
    onGpu(() => {
      for (const [batch, heads, n, dk, k] of [
        [4, 2, 16, 8, 4],
        [2, 3, 33, 66, 7], // dk/2 = 33 > 32 lanes, n not a multiple of the warp count
        [1, 1, 8, 4, 8], // k = n
      ] as const) {
        const r = rng(batch * 1000 + n);
        const q = randn(batch * heads * dk, r);
        const keys = randn(heads * 2 * n * (dk / 2), r);
        const got = cudaPkTopK(q, keys, { batch, heads, n, dk, k });
        const want = refPkTopK(q, keys, batch, heads, n, dk, k);
        expect(Array.from(got.ids), `ids n=${n} k=${k}`).toEqual(Array.from(want.ids));
        expectClose(got.scores, want.scores, 1e-5, `scores n=${n} k=${k}`);
      }
      // ties: sub-key rows 1 and 3 of each half are equal, so slots tie exactly; lower id first
      const [n, dk, k] = [6, 4, 5];
      const q = Float32Array.of(1, 0.5, 0.25, 1);
      const keys = randn(2 * n * (dk / 2), rng(9));
      for (const halfOff of [0, n * (dk / 2)]) {
        keys[halfOff + 3 * 2] = 3;
        keys[halfOff + 3 * 2 + 1] = 3;
        keys[halfOff + 1 * 2] = 3;
        keys[halfOff + 1 * 2 + 1] = 3;
      }
      const got = cudaPkTopK(q, keys, { batch: 1, heads: 1, n, dk, k });
      expect(Array.from(got.ids)).toEqual(Array.from(refPkTopK(q, keys, 1, 1, n, dk, k).ids));
      expect(Array.from(got.ids.subarray(0, 4))).toEqual([1 * n + 1, 1 * n + 3, 3 * n + 1, 3 * n + 3]);
    }),
  );
});
