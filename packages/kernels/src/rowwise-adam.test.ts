/**
 * Partial row-wise Adam (optimizer option secondMoment: 'row', optionally momentDtype 'bfloat16'):
 * both kernels against a plain float64 reference written here, option validation, and the state
 * in store files (save/load, mmap, refusal of files whose state does not match).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ValueError } from '@mnemo/core';
import { type KernelImpl, type OptimizerConfig, ValueStore, bf16ToF32, f32ToBf16, nativeAvailable } from './index';
import { bagBatch, relErr } from './testing';

const IMPLS: KernelImpl[] = nativeAvailable().available ? ['ts', 'native'] : ['ts'];
const ALL = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

const batch = (seed: number, N: number, B: number, K: number, dv: number) =>
  bagBatch(seed, N, B, K, dv, { pad: 0.1, hot: 0.2, hotRows: 3 }); // rows 0..2 hot

/** The math of partial row-wise Adam in float64, dense and unfused, straight from the definition. */
class RowwiseAdamRef {
  V: Float64Array; // [N, dv]
  m: Float64Array; // [N, dv]
  v: Float64Array; // [N]
  t: Int32Array; // [N]
  constructor(
    readonly N: number,
    readonly dv: number,
    init: Float32Array,
    readonly o: { lr: number; b1: number; b2: number; eps: number; wd: number; bf16m: boolean },
  ) {
    this.V = Float64Array.from(init);
    this.m = new Float64Array(N * dv);
    this.v = new Float64Array(N);
    this.t = new Int32Array(N);
  }
  step(ids: Int32Array, w: Float32Array, gOut: Float32Array, K: number): void {
    const { dv, o } = this;
    const g = new Map<number, Float64Array>(); // row → Σ w · gOut[bag]
    for (let p = 0; p < ids.length; p++) {
      const r = ids[p]!;
      if (r < 0) continue;
      if (!g.has(r)) g.set(r, new Float64Array(dv));
      const gr = g.get(r)!;
      const b = Math.floor(p / K);
      for (let c = 0; c < dv; c++) gr[c]! += w[p]! * gOut[b * dv + c]!;
    }
    for (const [r, gr] of g) {
      const t = ++this.t[r]!;
      let meanSq = 0;
      for (let c = 0; c < dv; c++) meanSq += (gr[c]! * gr[c]!) / dv;
      this.v[r] = o.b2 * this.v[r]! + (1 - o.b2) * meanSq;
      const vHat = this.v[r]! / (1 - o.b2 ** t);
      for (let c = 0; c < dv; c++) {
        const i = r * dv + c;
        const m = o.b1 * this.m[i]! + (1 - o.b1) * gr[c]!;
        this.m[i] = o.bf16m ? bf16ToF32(f32ToBf16(m)) : m; // stored m, rounded once
        const mHat = m / (1 - o.b1 ** t);
        this.V[i] = this.V[i]! * (1 - o.lr * o.wd) - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
      }
    }
  }
}

describe.each(IMPLS)('partial row-wise Adam (%s kernels) vs a float64 reference', (impl) => {
  for (const momentDtype of ['float32', 'bfloat16'] as const) {
    it(`m ${momentDtype}: 5 steps, hot and cold rows, weight decay; rows the batch missed stay put`, () => {
      const N = 200;
      const dv = 19; // odd: SIMD tails
      const K = 6;
      const cfg: OptimizerConfig = { kind: 'adam', lr: 0.02, betas: [0.85, 0.97], weightDecay: 0.05, secondMoment: 'row', momentDtype };
      const store = ValueStore.create({ rows: N, dim: dv, optimizer: cfg, init: { kind: 'normal', std: 0.5, seed: 4 }, impl });
      const ref = new RowwiseAdamRef(N, dv, store.readRows(ALL(N)), {
        lr: 0.02,
        b1: 0.85,
        b2: 0.97,
        eps: 1e-8,
        wd: 0.05,
        bf16m: momentDtype === 'bfloat16',
      });
      const before = store.readRows(ALL(N));
      for (let s = 0; s < 5; s++) {
        const { ids, w, gOut } = batch(10 + s, N, 12, K, dv);
        store.backward(ids, w, gOut, K);
        ref.step(ids, w, gOut, K);
      }
      const after = store.readRows(ALL(N));
      // the update itself (after − before) on its own scale: a real test of the optimizer math
      const dA = after.map((x, i) => x - before[i]!);
      const dR = Float64Array.from(ref.V, (x, i) => x - before[i]!);
      expect(relErr(dA, dR)).toBeLessThan(momentDtype === 'float32' ? 1e-4 : 2e-3);
      // untouched rows are bit-identical; at least one row untouched and several touched
      let untouched = 0;
      for (let r = 0; r < N; r++) {
        if (ref.t[r] === 0) {
          untouched++;
          for (let c = 0; c < dv; c++) expect(after[r * dv + c]).toBe(before[r * dv + c]);
        }
      }
      expect(untouched).toBeGreaterThan(0);
      expect(untouched).toBeLessThan(N - 20);
      // state size: m (4 or 2 bytes per element), one v and one step count per row
      expect(store.stats().stateBytes).toBe(N * dv * (momentDtype === 'float32' ? 4 : 2) + 8 * N);
      store.dispose();
    });
  }

  it('differs from full Adam (the option is really used)', () => {
    const mk = (secondMoment: 'row' | 'element') =>
      ValueStore.create({
        rows: 30,
        dim: 8,
        optimizer: { kind: 'adam', lr: 0.1, secondMoment },
        init: { kind: 'normal', std: 1, seed: 1 },
        impl,
      });
    const a = mk('row');
    const b = mk('element');
    const { ids, w, gOut } = batch(3, 30, 4, 4, 8);
    a.backward(ids, w, gOut, 4);
    b.backward(ids, w, gOut, 4);
    expect(relErr(a.readRows(ALL(30)), b.readRows(ALL(30)))).toBeGreaterThan(1e-3);
    a.dispose();
    b.dispose();
  });
});

describe('row-wise Adam options', () => {
  it('bad values name the field; default is full Adam', () => {
    const make = (optimizer: unknown) => () => ValueStore.create({ rows: 4, dim: 4, optimizer: optimizer as OptimizerConfig });
    expect(make({ kind: 'adam', lr: 1, secondMoment: 'col' })).toThrow(/optimizer\.secondMoment/);
    expect(make({ kind: 'adam', lr: 1, secondMoment: 'row', momentDtype: 'fp8' })).toThrow(/optimizer\.momentDtype/);
    expect(make({ kind: 'adam', lr: 1, momentDtype: 'bfloat16' })).toThrow(/optimizer\.momentDtype.*secondMoment/);
    expect(make({ kind: 'sgd', lr: 1, secondMoment: 'row' })).toThrow(ConfigError);
    expect(make({ kind: 'adagrad', lr: 1, momentDtype: 'float32' })).toThrow(/optimizer\.momentDtype/);
    const s = ValueStore.create({ rows: 4, dim: 4, optimizer: { kind: 'adam', lr: 1 } });
    expect(s.optimizer).toMatchObject({ secondMoment: 'element', momentDtype: 'float32' });
    expect(s.stats().stateBytes).toBe(4 * 2 * 4 * 4 + 4 * 4);
    s.dispose();
  });
});

describe('row-wise Adam state in store files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-rowwise-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const N = 60;
  const dv = 10;

  for (const momentDtype of ['float32', 'bfloat16'] as const) {
    it(`m ${momentDtype}: save/load keeps m, v_r and the step counts (training continues identically)`, () => {
      const optimizer: OptimizerConfig = { kind: 'adam', lr: 0.05, secondMoment: 'row', momentDtype };
      const a = ValueStore.create({ rows: N, dim: dv, optimizer });
      const c1 = batch(21, N, 8, 4, dv);
      a.backward(c1.ids, c1.w, c1.gOut, 4);
      const file = path.join(dir, `rw-${momentDtype}.safetensors`);
      a.save(file);
      const raw = fs.readFileSync(file);
      const header = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString());
      expect(header.adam_m.dtype).toBe(momentDtype === 'float32' ? 'F32' : 'BF16');
      expect(header.adam_row_v.shape).toEqual([N]);
      expect(header.adam_moments).toBeUndefined();
      const loads = [ValueStore.load(file), ...(nativeAvailable().available ? [ValueStore.load(file, { mmap: true })] : [])];
      for (const b of loads) {
        expect(b.optimizer).toEqual(a.optimizer);
        expect(b.readRows(ALL(N))).toEqual(a.readRows(ALL(N)));
      }
      // a second step on rows touched before depends on m, v_r and t: all must have survived
      const c2 = batch(21, N, 8, 4, dv);
      a.backward(c2.ids, c2.w, c2.gOut, 4);
      for (const b of loads) {
        b.backward(c2.ids, c2.w, c2.gOut, 4);
        expect(b.readRows(ALL(N))).toEqual(a.readRows(ALL(N)));
        b.dispose();
      }
      // a fresh store from the same start would step differently (t = 1 bias correction)
      const fresh = ValueStore.create({ rows: N, dim: dv, optimizer });
      fresh.backward(c2.ids, c2.w, c2.gOut, 4);
      expect(relErr(fresh.readRows(ALL(N)), a.readRows(ALL(N)))).toBeGreaterThan(1e-4);
      fresh.dispose();
      a.dispose();
    });
  }

  it('file-backed row-wise store (mmap shared) trains in place and reloads', () => {
    if (!nativeAvailable().available) return;
    const file = path.join(dir, 'rw-backed.safetensors');
    const optimizer: OptimizerConfig = { kind: 'adam', lr: 0.05, secondMoment: 'row', momentDtype: 'bfloat16' };
    const init = { kind: 'normal' as const, std: 1, seed: 3 };
    const ref = ValueStore.create({ rows: N, dim: dv, optimizer, init });
    const a = ValueStore.create({ rows: N, dim: dv, optimizer, init, file });
    const c = batch(5, N, 8, 4, dv);
    for (const s of [a, ref]) s.backward(c.ids, c.w, c.gOut, 4);
    a.dispose();
    const b = ValueStore.load(file, { mmap: 'shared' });
    for (const s of [b, ref]) s.backward(c.ids, c.w, c.gOut, 4);
    expect(b.readRows(ALL(N))).toEqual(ref.readRows(ALL(N)));
    b.dispose();
    ref.dispose();
  });

  it('old full-Adam files still load; mismatched options and missing state tensors are refused', () => {
    const a = ValueStore.create({ rows: N, dim: dv, optimizer: { kind: 'adam', lr: 0.05 } });
    const full = path.join(dir, 'full.safetensors');
    a.save(full);
    a.dispose();
    const b = ValueStore.load(full);
    expect(b.optimizer.secondMoment).toBe('element');
    b.dispose();
    expect(() => ValueStore.load(full, { optimizer: { kind: 'adam', lr: 0.05, secondMoment: 'row' } })).toThrow(/optimizer\.secondMoment/);
    const rw = ValueStore.create({ rows: N, dim: dv, optimizer: { kind: 'adam', lr: 0.05, secondMoment: 'row' } });
    const rwFile = path.join(dir, 'rw.safetensors');
    rw.save(rwFile);
    rw.dispose();
    expect(() => ValueStore.load(rwFile, { optimizer: { kind: 'adam', lr: 0.05 } })).toThrow(/optimizer\.secondMoment/);
    expect(() => ValueStore.load(rwFile, { optimizer: { kind: 'adam', lr: 0.05, secondMoment: 'row', momentDtype: 'bfloat16' } })).toThrow(
      /optimizer\.momentDtype/,
    );
    // a full-Adam file whose metadata claims row-wise state: the row-wise tensors are missing
    const buf = Buffer.from(fs.readFileSync(full));
    const hlen = Number(buf.readBigUInt64LE(0));
    const head = buf.subarray(8, 8 + hlen).toString();
    const needle = '\\"kind\\":\\"adam\\"';
    const extra = ',\\"secondMoment\\":\\"row\\"';
    expect(head).toContain(needle);
    const edited = head.replace(needle, needle + extra).padEnd(hlen + 64, ' '); // data offsets are relative
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hlen + 64));
    const bad = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(bad, Buffer.concat([len, Buffer.from(edited), buf.subarray(8 + hlen)]));
    expect(() => ValueStore.load(bad)).toThrow(ValueError);
    expect(() => ValueStore.load(bad)).toThrow(/'adam_m' is missing/);
  });
});
