/**
 * The dense path of the wasm backend: native BatchMatMul (OpenBLAS via the addon, on the wasm heap
 * in place) against the wasm kernel on random shapes — transposes, batch dims, broadcast batches,
 * empty dims, k = 0 — their gradients, and the selection rules (auto falls back to wasm when
 * native is unavailable; an explicit native that cannot run is an error).
 *
 * Tolerance: max |native − wasm| / max |wasm| < 1e-5 (float32 sums of up to 300 terms in a
 * different order: the error is a few ulp of the largest partial sum, measured ≤ 1e-6).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denseInfo, initBackend, nativeDense, nativeDenseCalls, parseDenseChoice, setDensePath } from './index';
import { randTensor, relErr, rng } from './testing';

const TOL = 1e-5;
const native = nativeDense();
if (!native.addon) console.log(`[dense.test] native dense path skipped: ${native.reason}`);

/** the product on one path, as plain numbers */
function product(p: 'native' | 'wasm', a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean) {
  setDensePath(p);
  const y = tf.matMul(a, b, ta, tb);
  const out = { shape: y.shape, values: y.dataSync().slice() };
  y.dispose();
  return out;
}

describe('dense path selection', () => {
  const saved = process.env.MNEMO_DENSE;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: false });
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.MNEMO_DENSE;
    else process.env.MNEMO_DENSE = saved;
    setDensePath();
  });

  it('parses auto, native, wasm and rejects others', () => {
    expect(parseDenseChoice(undefined)).toBe('auto');
    expect(parseDenseChoice(' Native ')).toBe('native');
    expect(parseDenseChoice('wasm')).toBe('wasm');
    expect(() => parseDenseChoice('blas')).toThrow(/MNEMO_DENSE/);
  });

  it('auto takes native exactly when the addon and a BLAS load; wasm is always selectable', () => {
    const auto = setDensePath('auto');
    expect(auto.path).toBe(native.addon ? 'native' : 'wasm');
    expect(setDensePath('wasm')).toMatchObject({ path: 'wasm', requested: 'wasm' });
    if (native.addon) expect(setDensePath('native').path).toBe('native');
    else expect(() => setDensePath('native')).toThrow(/cannot run/);
    process.env.MNEMO_DENSE = 'wasm';
    expect(setDensePath().path).toBe('wasm');
    delete process.env.MNEMO_DENSE;
  });

  it('initBackend reports and logs the dense path', async () => {
    const logs: string[] = [];
    const info = await initBackend({ backend: 'wasm', dense: 'wasm', log: (l) => logs.push(l) });
    expect(info.dense?.path).toBe('wasm');
    expect(denseInfo()?.path).toBe('wasm');
    const again = await initBackend({ backend: 'wasm', dense: 'auto', log: false });
    expect(again.dense?.path).toBe(native.addon ? 'native' : 'wasm');
  });

  // a child process without BLAS (MNEMO_BLAS=0) or without the addon (MNEMO_NATIVE=0): auto → wasm
  it.each([
    ['MNEMO_BLAS=0', { MNEMO_BLAS: '0' }],
    ['MNEMO_NATIVE=0', { MNEMO_NATIVE: '0' }],
  ])(
    'with %s auto falls back to the wasm path and matmul still works',
    (_, env) => {
      const script = `
        import { initBackend, nativeDenseCalls } from './src/index.ts';
        import * as tf from '@tensorflow/tfjs-core';
        const info = await initBackend({ backend: 'wasm', log: (l) => console.log(l) });
        const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3, 4], [5, 6]]), false, false);
        console.log(JSON.stringify({ path: info.dense.path, reason: info.dense.reason, y: Array.from(y.dataSync()), calls: nativeDenseCalls() }));
      `;
      const root = path.resolve(import.meta.dirname, '..');
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=mnemo-source', '--input-type=module', '-e', script], {
        cwd: root,
        env: { ...process.env, MNEMO_DENSE: 'auto', ...env },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/dense math: wasm \(native unavailable/);
      const out = JSON.parse(lines.at(-1)!);
      expect(out).toMatchObject({ path: 'wasm', y: [13, 16], calls: 0 });
    },
    60_000,
  );
});

describe.runIf(native.addon)('native BatchMatMul vs the wasm kernel', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: false });
  });
  afterAll(() => setDensePath());

  // [aShape (before transposes), bShape] — the last two dims are [m, k] / [k, n] untransposed
  const cases: [number[], number[]][] = [
    [
      [1, 1],
      [1, 1],
    ],
    [
      [7, 33],
      [33, 19],
    ],
    [
      [64, 128],
      [128, 384],
    ],
    [
      [3, 5, 17],
      [3, 17, 9],
    ], // batch
    [
      [4, 2, 16, 8],
      [4, 2, 8, 16],
    ], // rank 4 (attention)
    [
      [6, 12, 10],
      [10, 7],
    ], // rank-2 b broadcast over a's batch
    [
      [11, 13],
      [5, 13, 4],
    ], // rank-2 a broadcast over b's batch
    [
      [1, 9, 6],
      [4, 6, 5],
    ], // batch 1 broadcast
    [
      [2, 3, 4, 5],
      [3, 5, 2],
    ], // b's batch repeats over a leading dim: the wasm path (counted below)
    [
      [0, 4],
      [4, 3],
    ], // empty m
    [
      [3, 0],
      [0, 5],
    ], // k = 0 → zeros
    [
      [7, 96, 64],
      [7, 64, 96],
    ], // many small products (batch·m·n·k ≥ 4M): the batch split over the cores, one BLAS thread each
    [
      [2, 3, 128, 128],
      [2, 3, 128, 64],
    ], // the same split on a rank-4 (attention-shaped) batch
    [
      [5, 128, 96],
      [96, 80],
    ], // the split with b broadcast (stride 0) over a's batch
    [
      [8, 512],
      [512, 1000],
    ], // a skinny product (decode, m < 32, ≥ 1M MACs): columns split over the cores, cut at 16s
    [
      [1, 2048],
      [2048, 600],
    ], // one row (a single sequence's decode step)
    [
      [2, 8, 256],
      [2, 256, 700],
    ], // the column split inside a batch too small for the batch split
  ];
  const r = rng(5);
  for (const [sa, sb] of cases) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`[${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''}`, () => {
        const flip = (s: number[], t: boolean) => (t ? [...s.slice(0, -2), s.at(-1)!, s.at(-2)!] : s);
        const a = randTensor(flip(sa, ta), Math.floor(r() * 1e9));
        const b = randTensor(flip(sb, tb), Math.floor(r() * 1e9));
        const before = nativeDenseCalls();
        const x = product('native', a, b, ta, tb);
        const inPlace = !(sa.length === 4 && sb.length === 3); // the one case native leaves to wasm
        expect(nativeDenseCalls()).toBe(before + (inPlace ? 1 : 0));
        const y = product('wasm', a, b, ta, tb);
        expect(x.shape).toEqual(y.shape);
        // k = 0: the result is zeros (tfjs-wasm returns uninitialised heap for some transposes)
        if (sa.at(-1) === 0) expect(Array.from(x.values).every((v) => v === 0)).toBe(true);
        else if (y.values.length) expect(relErr(x.values, y.values)).toBeLessThan(TOL);
        a.dispose();
        b.dispose();
      });
    }
  }

  it('random shapes, ranks and transposes agree', () => {
    const q = rng(77);
    const int = (lo: number, hi: number) => lo + Math.floor(q() * (hi - lo + 1));
    for (let t = 0; t < 40; t++) {
      const m = int(1, 70);
      const n = int(1, 70);
      const k = int(1, 300);
      const batch = [[], [int(1, 4)], [int(1, 3), int(1, 3)]][int(0, 2)]!;
      const bBatch = q() < 0.3 ? [] : batch; // broadcast a rank-2 b sometimes
      const ta = q() < 0.5;
      const tb = q() < 0.5;
      const a = randTensor([...batch, ...(ta ? [k, m] : [m, k])], t);
      const b = randTensor([...bBatch, ...(tb ? [n, k] : [k, n])], t + 1000);
      const x = product('native', a, b, ta, tb);
      const y = product('wasm', a, b, ta, tb);
      expect(x.shape).toEqual(y.shape);
      expect(relErr(x.values, y.values), `case ${t}: [${a.shape}]${ta}·[${b.shape}]${tb}`).toBeLessThan(TOL);
      a.dispose();
      b.dispose();
    }
  });

  it('a broadcast it cannot do in place ([2,1]×[1,3] batches) takes the wasm path', () => {
    const a = randTensor([2, 1, 4, 5], 1);
    const b = randTensor([1, 3, 5, 2], 2);
    setDensePath('native');
    const before = nativeDenseCalls();
    const run = () => tf.matMul(a, b);
    // tfjs-wasm itself cannot broadcast this pair; the native path must not claim it either
    let nativeErr: unknown;
    try {
      run().dispose();
    } catch (e) {
      nativeErr = e;
    }
    expect(nativeDenseCalls()).toBe(before);
    setDensePath('wasm');
    let wasmErr: unknown;
    try {
      run().dispose();
    } catch (e) {
      wasmErr = e;
    }
    expect(Boolean(nativeErr)).toBe(Boolean(wasmErr));
  });

  it('gradients of a matmul chain agree (the backward uses both transposes)', () => {
    const x = randTensor([32, 48], 3);
    const w1 = randTensor([48, 64], 4);
    const w2 = randTensor([64, 16], 5);
    const f = (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(tf.relu(tf.matMul(xx, a)), b)));
    const grads = (p: 'native' | 'wasm') => {
      setDensePath(p);
      const g = tf.grads(f)([x, w1, w2]);
      const out = g.map((t) => t.dataSync().slice());
      tf.dispose(g);
      return out;
    };
    const gn = grads('native');
    const gw = grads('wasm');
    for (let i = 0; i < 3; i++) expect(relErr(gn[i]!, gw[i]!)).toBeLessThan(TOL);
  });

  it('survives a heap growth between output allocation and the call', () => {
    setDensePath('native');
    const a = randTensor([200, 300], 8);
    const b = randTensor([300, 250], 9);
    const keep: tf.Tensor[] = [];
    for (let i = 0; i < 20; i++) keep.push(tf.matMul(a, b)); // allocations grow the heap meanwhile
    const ref = product('wasm', a, b, false, false);
    for (const t of keep) expect(relErr(t.dataSync(), ref.values)).toBeLessThan(TOL);
    tf.dispose([a, b, ...keep]);
  });
});

describe('FMA peak loop', () => {
  it.skipIf(!native.addon)('measures the vector width the CPU has (AVX-512 when /proc/cpuinfo lists avx512f)', async () => {
    const { readFileSync } = await import('node:fs');
    const { fmaPeakGflops, fmaPeakIsa } = await import('./index');
    let flags = '';
    try {
      flags = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      console.log('[dense.test] no /proc/cpuinfo: ISA check skipped');
    }
    if (flags) expect(fmaPeakIsa()).toBe(/\bavx512f\b/.test(flags) ? 'avx512' : 'avx2');
    const g = fmaPeakGflops(1, 0.05)!;
    // one core does at least 2 GHz × 8 lanes × 2 flops even in AVX2, and no CPU core beats 1 TFLOP/s
    expect(g).toBeGreaterThan(5);
    expect(g).toBeLessThan(1000);
  });
});
