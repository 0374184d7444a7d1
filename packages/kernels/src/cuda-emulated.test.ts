/**
 * CudaValueTable's own code — option checks, the shared deferred queue, the mapping of the
 * resolved optimizer to the addon's codes, readRows/writeRows, and save/load of the optimizer
 * state in the store-file format (Adam's m and v are two device buffers, one [N, 2, dv] tensor in
 * the file) — over the emulated addon of testing-cuda.ts, so it runs without a GPU. The kernels
 * themselves are tested on a GPU in cuda.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CudaValueTable, type OptimizerConfig, ValueStore } from './index';
import { type FakeCudaAddon, fakeCudaAddon } from './testing-cuda';
import { bagBatch } from './testing';
import { valueTableContract } from './value-table-contract';

const fake = vi.hoisted(() => ({ addon: null as FakeCudaAddon | null }));
vi.mock('./cuda-addon', async (importOriginal) => {
  const real = await importOriginal<typeof import('./cuda-addon')>();
  const { fakeCudaAddon: make } = await import('./testing-cuda');
  fake.addon = make();
  const status = { available: true, built: true, devices: 1, reason: 'emulated CUDA addon (testing-cuda.ts)' };
  return { ...real, requireAddon: () => fake.addon!, loadAddon: () => ({ addon: fake.addon!, status }), cudaStatus: () => ({ ...status }) };
});

valueTableContract({
  name: 'CudaValueTable (emulated addon)',
  skip: null,
  create: (opts) => CudaValueTable.create(opts),
  load: (file) => CudaValueTable.load(file),
  tol: 1e-6,
});

describe('CudaValueTable over the emulated addon', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-cuda-emu-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [N, dv, B, K] = [30, 6, 5, 4];
  const all = Int32Array.from({ length: N }, (_, i) => i);
  const init = { kind: 'normal', std: 0.5, seed: 2 } as const;

  it('is the emulation (fakeCudaAddon is what the table calls)', () => {
    expect(fakeCudaAddon().deviceCount().count).toBe(1);
    const t = CudaValueTable.create({ rows: 2, dim: 2, optimizer: { kind: 'sgd', lr: 1 } });
    const before = fake.addon!.calls.length;
    t.backward(Int32Array.of(0), Float32Array.of(1), Float32Array.of(1, 1), 1);
    expect(fake.addon!.calls.length).toBe(before + 1);
    t.dispose();
  });

  for (const optimizer of [
    { kind: 'sgd', lr: 0.1 },
    { kind: 'adagrad', lr: 0.1, eps: 1e-6 },
    { kind: 'adam', lr: 0.02, betas: [0.8, 0.9] },
    { kind: 'adam', lr: 0.02, secondMoment: 'row' },
    { kind: 'adam', lr: 0.02, secondMoment: 'row', momentDtype: 'bfloat16' },
  ] as OptimizerConfig[]) {
    it(`${JSON.stringify(optimizer)}: same numbers as a ValueStore (ts); its file is a ValueStore file; state round-trips both ways`, () => {
      const cpu = ValueStore.create({ rows: N, dim: dv, optimizer, init, impl: 'ts' });
      const gpu = CudaValueTable.create({ rows: N, dim: dv, optimizer, init });
      const o = gpu.optimizer;
      const c = [1, 2, 3].map((s) => bagBatch(s, N, B, K, dv));
      for (const t of [cpu, gpu]) for (const x of c.slice(0, 2)) t.backward(x.ids, x.w, x.gOut, K);
      // the addon got the resolved optimizer's codes
      const last = fake.addon!.calls.at(-1)!;
      expect(last).toEqual({
        kind: { sgd: 0, adagrad: 1, adam: 2 }[o.kind],
        lr: o.lr,
        rowWise: o.secondMoment === 'row' ? 1 : 0,
        momentBf16: o.momentDtype === 'bfloat16' ? 1 : 0,
      });
      expect(gpu.readRows(all)).toEqual(cpu.readRows(all));
      expect(gpu.stats()).toEqual({ ...cpu.stats(), impl: undefined, mapped: undefined, file: undefined });
      // GPU → file: byte-identical to the CPU store's file (same state, same counters)
      const fg = path.join(dir, 'gpu.safetensors');
      const fc = path.join(dir, 'cpu.safetensors');
      gpu.save(fg);
      cpu.save(fc);
      expect(fs.readFileSync(fg).equals(fs.readFileSync(fc))).toBe(true);
      // file → GPU: the state is uploaded (Adam m, v split per device buffer) and training continues alike
      const back = CudaValueTable.load(fc);
      for (const t of [cpu, back]) t.backward(c[2]!.ids, c[2]!.w, c[2]!.gOut, K);
      expect(back.readRows(all)).toEqual(cpu.readRows(all));
      back.save(fg);
      cpu.save(fc);
      expect(fs.readFileSync(fg).equals(fs.readFileSync(fc))).toBe(true);
      for (const t of [cpu, gpu, back]) t.dispose();
    });
  }

  it('deferred mode asks the addon for gw with an update that changes nothing (SGD, lr 0)', () => {
    const t = CudaValueTable.create({ rows: N, dim: dv, optimizer: { kind: 'adam', lr: 0.1 }, init, deferred: true });
    const V0 = t.readRows(all);
    const x = bagBatch(4, N, B, K, dv);
    t.backward(x.ids, x.w, x.gOut, K);
    expect(fake.addon!.calls.at(-1)).toEqual({ kind: 0, lr: 0, rowWise: 0, momentBf16: 0 });
    expect(t.readRows(all)).toEqual(V0);
    const file = path.join(dir, 'deferred.safetensors');
    t.save(file); // no update yet: Adam's state is still unallocated on the device → zeros in the file
    const s = ValueStore.load(file);
    expect(s.stats().steps).toBe(0);
    s.dispose();
    expect(t.step()).toBeGreaterThan(0);
    expect(fake.addon!.calls.at(-1)!.kind).toBe(2);
    t.dispose();
  });
});
