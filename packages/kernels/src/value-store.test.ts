import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError, ConfigError, DisposedError, ShapeError, ValueError } from '@mnemo/core';
import { type KernelImpl, type OptimizerConfig, type StorageDtype, ValueStore, nativeAvailable } from './index';
import { rng } from './testing';

const IMPLS: KernelImpl[] = nativeAvailable().available ? ['ts', 'native'] : ['ts'];

interface Case {
  N: number;
  dv: number;
  B: number;
  K: number;
  ids: Int32Array; // [B, K]
  w: Float32Array; // [B, K]
  gOut: Float32Array; // [B, dv]
}

/** Random case with duplicates within and across bags, padding, and an all-padding bag. */
function makeCase(seed: number, N: number, dv: number, B: number, K: number): Case {
  const r = rng(seed);
  const ids = new Int32Array(B * K);
  const w = new Float32Array(B * K);
  for (let p = 0; p < B * K; p++) {
    const u = r();
    ids[p] = u < 0.1 ? -1 : u < 0.3 ? p % 3 : Math.floor(r() * N); // rows 0..2 are hot
    w[p] = r() * 2 - 1;
  }
  if (K >= 2) ids[1] = ids[0]!; // duplicate inside bag 0
  if (B >= 2) for (let j = 0; j < K; j++) ids[(B - 1) * K + j] = -1; // last bag empty
  const gOut = Float32Array.from({ length: B * dv }, () => r() * 2 - 1);
  return { N, dv, B, K, ids, w, gOut };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Dense tfjs reference: out = W V with W [B, N] built from one-hots; grads by tf.grads. */
function denseReference(c: Case, V: Float32Array, opt: OptimizerConfig) {
  return tf.tidy(() => {
    const ids = tf.tensor2d(c.ids, [c.B, c.K], 'int32');
    const oneHot = tf.oneHot(ids, c.N); // [B, K, N], id −1 → zero row
    const f = (w: tf.Tensor, Vt: tf.Tensor) => {
      const W = tf.sum(tf.mul(oneHot, tf.expandDims(w, 2)), 1); // [B, N]
      return tf.matMul(W as tf.Tensor2D, Vt as tf.Tensor2D); // [B, dv]
    };
    const w = tf.tensor2d(c.w, [c.B, c.K]);
    const Vt = tf.tensor2d(V, [c.N, c.dv]);
    const out = f(w, Vt);
    const gOut = tf.tensor2d(c.gOut, [c.B, c.dv]);
    const [gw, G] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b), gOut)))([w, Vt]);
    const lr = opt.lr;
    const eps = opt.eps ?? (opt.kind === 'adagrad' ? 1e-10 : 1e-8);
    let Vnext: tf.Tensor;
    if (opt.kind === 'sgd') Vnext = tf.sub(Vt, tf.mul(lr, G!));
    else if (opt.kind === 'adagrad') Vnext = tf.sub(Vt, tf.div(tf.mul(lr, G!), tf.add(tf.sqrt(tf.square(G!)), eps)));
    else {
      const [b1, b2] = opt.betas ?? [0.9, 0.999];
      const m = tf.mul(1 - b1, G!);
      const v = tf.mul(1 - b2, tf.square(G!));
      Vnext = tf.sub(Vt, tf.div(tf.mul(lr, tf.div(m, 1 - b1)), tf.add(tf.sqrt(tf.div(v, 1 - b2)), eps)));
    }
    return { out: out.dataSync() as Float32Array, gw: gw!.dataSync() as Float32Array, V: Vnext.dataSync() as Float32Array };
  });
}

const ALL_ROWS = (N: number) => Int32Array.from({ length: N }, (_, i) => i);
const OPTS: OptimizerConfig[] = [
  { kind: 'sgd', lr: 0.1 },
  { kind: 'adagrad', lr: 0.05 },
  { kind: 'adam', lr: 0.01 },
];

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe.each(IMPLS)('ValueStore (%s kernels) vs dense tfjs reference', (impl) => {
  for (const opt of OPTS) {
    it(`forward, gw and the table after one ${opt.kind} step`, () => {
      const c = makeCase(7, 40, 19, 6, 5);
      const store = ValueStore.create({ rows: c.N, dim: c.dv, optimizer: opt, impl, init: { kind: 'normal', std: 0.5, seed: 3 } });
      const V0 = store.readRows(ALL_ROWS(c.N));
      const ref = denseReference(c, V0, opt);
      const out = store.forward(c.ids, c.w, c.K);
      expect(maxAbsDiff(out, ref.out)).toBeLessThan(1e-5);
      expect(Array.from(out.subarray((c.B - 1) * c.dv))).toEqual(new Array(c.dv).fill(0)); // empty bag
      const gw = store.backward(c.ids, c.w, c.gOut, c.K);
      expect(maxAbsDiff(gw, ref.gw)).toBeLessThan(1e-5);
      expect(maxAbsDiff(store.readRows(ALL_ROWS(c.N)), ref.V)).toBeLessThan(2e-5);
      const touched = new Set(Array.from(c.ids).filter((r) => r >= 0)).size;
      expect(store.stats().touchedRows).toBe(touched);
      store.dispose();
    });
  }

  it('forward into a caller-owned output buffer', () => {
    const c = makeCase(8, 30, 5, 4, 3);
    const store = ValueStore.create({ rows: 30, dim: 5, optimizer: { kind: 'sgd', lr: 0.1 }, impl });
    const out = new Float32Array(4 * 5).fill(7);
    expect(store.forward(c.ids, c.w, 3, undefined, out)).toBe(out);
    expect(out).toEqual(store.forward(c.ids, c.w, 3));
    expect(() => store.forward(c.ids, c.w, 3, undefined, new Float32Array(19))).toThrow(/out: must be a Float32Array \[B=4, dv=5\]/);
    store.dispose();
  });

  it('bagSize 0 gives zero outputs and changes nothing', () => {
    const store = ValueStore.create({ rows: 8, dim: 4, optimizer: { kind: 'adam', lr: 0.1 }, impl });
    const before = store.readRows(ALL_ROWS(8));
    const out = store.forward(new Int32Array(0), new Float32Array(0), 0, 3);
    expect(Array.from(out)).toEqual(new Array(12).fill(0));
    const gw = store.backward(new Int32Array(0), new Float32Array(0), new Float32Array(12).fill(1), 0);
    expect(gw.length).toBe(0);
    expect(store.readRows(ALL_ROWS(8))).toEqual(before);
    store.dispose();
  });

  it('deferred mode: two queued batches + step() equal one fused update on both', () => {
    const a = makeCase(11, 30, 8, 4, 3);
    const b = makeCase(12, 30, 8, 5, 2);
    const opt: OptimizerConfig = { kind: 'adam', lr: 0.02 };
    const init = { kind: 'normal' as const, std: 1, seed: 5 };
    const s1 = ValueStore.create({ rows: 30, dim: 8, optimizer: opt, impl, init, deferred: true });
    const s2 = ValueStore.create({ rows: 30, dim: 8, optimizer: opt, impl, init });
    const gwA = s1.backward(a.ids, a.w, a.gOut, 3);
    s1.backward(b.ids, b.w, b.gOut, 2);
    expect(s1.stats().pending).toBe(2);
    expect(s1.readRows(ALL_ROWS(30))).toEqual(s2.readRows(ALL_ROWS(30))); // nothing applied yet
    s1.step();
    // the same two batches as one batch with K = 3 (b padded with −1)
    const ids = new Int32Array(9 * 3).fill(-1);
    const w = new Float32Array(9 * 3);
    ids.set(a.ids);
    w.set(a.w);
    for (let i = 0; i < 5; i++) {
      ids.set(b.ids.subarray(2 * i, 2 * i + 2), 12 + 3 * i);
      w.set(b.w.subarray(2 * i, 2 * i + 2), 12 + 3 * i);
    }
    const g = new Float32Array(9 * 8);
    g.set(a.gOut);
    g.set(b.gOut, 4 * 8);
    const gw2 = s2.backward(ids, w, g, 3);
    expect(maxAbsDiff(gwA, gw2.subarray(0, 12))).toBe(0);
    expect(maxAbsDiff(s1.readRows(ALL_ROWS(30)), s2.readRows(ALL_ROWS(30)))).toBeLessThan(1e-6);
    s1.dispose();
    s2.dispose();
  });

  it('clipping: row mode bounds each row step, global mode scales all rows alike', () => {
    const c = makeCase(21, 20, 6, 8, 4);
    for (const mode of ['row', 'global'] as const) {
      const big = Float32Array.from(c.gOut, (x) => 100 * x);
      const s = ValueStore.create({ rows: 20, dim: 6, optimizer: { kind: 'sgd', lr: 1, clip: { mode, maxNorm: 0.5 } }, impl });
      const V0 = s.readRows(ALL_ROWS(20));
      s.backward(c.ids, c.w, big, 4);
      const V1 = s.readRows(ALL_ROWS(20));
      let total = 0;
      for (let r = 0; r < 20; r++) {
        let sq = 0;
        for (let d = 0; d < 6; d++) sq += (V1[r * 6 + d]! - V0[r * 6 + d]!) ** 2;
        total += sq;
        if (mode === 'row') expect(Math.sqrt(sq)).toBeLessThanOrEqual(0.5 + 1e-5);
      }
      if (mode === 'global') expect(Math.sqrt(total)).toBeCloseTo(0.5, 4);
      s.dispose();
    }
  });
});

describe('bad input gives clear typed errors', () => {
  const store = ValueStore.create({ rows: 10, dim: 4, optimizer: { kind: 'sgd', lr: 0.1 } });
  const ids = Int32Array.of(1, 2, 3, 4);
  const w = Float32Array.of(1, 1, 1, 1);
  it('out-of-range ids', () => {
    expect(() => store.forward(Int32Array.of(1, 10), Float32Array.of(1, 1), 2)).toThrow(ValueError);
    expect(() => store.forward(Int32Array.of(1, -2), Float32Array.of(1, 1), 2)).toThrow(/ids: element 1 is -2/);
  });
  it('NaN weights and gradients', () => {
    expect(() => store.forward(ids, Float32Array.of(1, Number.NaN, 1, 1), 2)).toThrow(/weights: element 1 is NaN/);
    expect(() => store.backward(ids, w, new Float32Array(8).fill(Number.POSITIVE_INFINITY), 2)).toThrow(/gOut/);
  });
  it('shape mismatches', () => {
    expect(() => store.forward(ids, Float32Array.of(1, 1), 2)).toThrow(ShapeError);
    expect(() => store.forward(ids, w, 3)).toThrow(/multiple of bagSize/);
    expect(() => store.backward(ids, w, new Float32Array(7), 2)).toThrow(/gOut: expected \[B=2, dv=4\]/);
    expect(() => store.forward(new Int32Array(0), new Float32Array(0), 0)).toThrow(/batch/);
    expect(() => store.forward(Array.from(ids) as unknown as Int32Array, w, 2)).toThrow(/Int32Array/);
  });
  it('bad configs name the field', () => {
    expect(() => ValueStore.create({ rows: 0, dim: 4, optimizer: { kind: 'sgd', lr: 1 } })).toThrow(/rows/);
    expect(() => ValueStore.create({ rows: 4, dim: 4, optimizer: { kind: 'rmsprop' as 'sgd', lr: 1 } })).toThrow(ConfigError);
    expect(() => ValueStore.create({ rows: 4, dim: 4, optimizer: { kind: 'adam', lr: 1, betas: [1, 0.9] } })).toThrow(/betas\[0\]/);
    expect(() => ValueStore.create({ rows: 4, dim: 4, dtype: 'int8' as StorageDtype, optimizer: { kind: 'sgd', lr: 1 } })).toThrow(/dtype/);
  });
  it('use after dispose throws DisposedError', () => {
    const s = ValueStore.create({ rows: 4, dim: 2, optimizer: { kind: 'sgd', lr: 1 } });
    s.dispose();
    s.dispose(); // idempotent
    expect(s.disposed).toBe(true);
    expect(() => s.forward(Int32Array.of(0), Float32Array.of(1), 1)).toThrow(DisposedError);
    expect(() => s.backward(Int32Array.of(0), Float32Array.of(1), Float32Array.of(1, 1), 1)).toThrow(DisposedError);
    expect(() => s.readRows(Int32Array.of(0))).toThrow(DisposedError);
    expect(() => s.stats()).toThrow(DisposedError);
  });
  afterAll(() => store.dispose());
});

describe('16-bit storage', () => {
  for (const dtype of ['bfloat16', 'float16'] as StorageDtype[]) {
    it(`${dtype}: writeRows/readRows round trip within one rounding`, () => {
      const s = ValueStore.create({ rows: 16, dim: 8, dtype, optimizer: { kind: 'sgd', lr: 0.1 }, init: 'zeros' });
      const r = rng(4);
      const rows = Float32Array.from({ length: 128 }, () => (r() * 2 - 1) * 4);
      s.writeRows(ALL_ROWS(16), rows);
      const back = s.readRows(ALL_ROWS(16));
      const rel = dtype === 'bfloat16' ? 2 ** -8 : 2 ** -11;
      for (let i = 0; i < 128; i++) expect(Math.abs(back[i]! - rows[i]!)).toBeLessThanOrEqual(Math.abs(rows[i]!) * rel + 1e-7);
      expect(s.stats().valueBytes).toBe(16 * 8 * 2);
      s.dispose();
    });
  }
});

describe('save / load', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-store-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [opt, dtype] of [
    [{ kind: 'adam', lr: 0.01 }, 'float32'],
    [{ kind: 'adagrad', lr: 0.1 }, 'bfloat16'],
    [{ kind: 'sgd', lr: 0.1, weightDecay: 0.01 }, 'float16'],
  ] as [OptimizerConfig, StorageDtype][]) {
    it(`round trip (${opt.kind}, ${dtype}): the loaded store continues training identically`, () => {
      const c = makeCase(31, 50, 12, 8, 4);
      const a = ValueStore.create({ rows: 50, dim: 12, dtype, optimizer: opt });
      a.backward(c.ids, c.w, c.gOut, 4);
      const file = path.join(dir, `s-${opt.kind}.safetensors`);
      a.save(file);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
      const b = ValueStore.load(file);
      expect(b.dtype).toBe(dtype);
      expect(b.optimizer).toEqual(a.optimizer);
      expect(b.stats().steps).toBe(1);
      expect(b.readRows(ALL_ROWS(50))).toEqual(a.readRows(ALL_ROWS(50)));
      a.backward(c.ids, c.w, c.gOut, 4);
      b.backward(c.ids, c.w, c.gOut, 4);
      expect(b.readRows(ALL_ROWS(50))).toEqual(a.readRows(ALL_ROWS(50)));
      a.dispose();
      b.dispose();
    });
  }

  it('the file is plain safetensors: header JSON, F32 values [N, dv] at the given offsets', () => {
    const a = ValueStore.create({ rows: 5, dim: 3, optimizer: { kind: 'sgd', lr: 1 } });
    const file = path.join(dir, 'plain.safetensors');
    a.save(file);
    const buf = fs.readFileSync(file);
    const hlen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString());
    expect(header.values.dtype).toBe('F32');
    expect(header.values.shape).toEqual([5, 3]);
    const [s, e] = header.values.data_offsets;
    const vals = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 + hlen + s, buf.byteOffset + 8 + hlen + e));
    expect(vals).toEqual(a.readRows(ALL_ROWS(5)));
    expect((8 + hlen) % 64).toBe(0);
    a.dispose();
  });

  it('refuses corrupt, truncated and foreign files', () => {
    const a = ValueStore.create({ rows: 20, dim: 4, optimizer: { kind: 'adam', lr: 1 } });
    const file = path.join(dir, 'good.safetensors');
    a.save(file);
    a.dispose();
    const good = fs.readFileSync(file);
    const flip = Buffer.from(good);
    flip[flip.length - 5]! ^= 0x40;
    fs.writeFileSync(path.join(dir, 'flip.safetensors'), flip);
    expect(() => ValueStore.load(path.join(dir, 'flip.safetensors'))).toThrow(/checksum of 'values'/);
    fs.writeFileSync(path.join(dir, 'trunc.safetensors'), good.subarray(0, good.length - 16));
    expect(() => ValueStore.load(path.join(dir, 'trunc.safetensors'))).toThrow(/truncated/);
    fs.writeFileSync(path.join(dir, 'tiny.safetensors'), good.subarray(0, 4));
    expect(() => ValueStore.load(path.join(dir, 'tiny.safetensors'))).toThrow(ValueError);
    fs.writeFileSync(path.join(dir, 'junk.safetensors'), Buffer.from('hello world, not a store'));
    expect(() => ValueStore.load(path.join(dir, 'junk.safetensors'))).toThrow(/not a valid Mnemo value-store file/);
    expect(() => ValueStore.load(file, { optimizer: { kind: 'sgd', lr: 1 } })).toThrow(/adam state/);
  });

  it('file-backed store: trains in the file, flush/dispose make it loadable; mmap shared continues in place', () => {
    const file = path.join(dir, 'backed.safetensors');
    const opts = {
      rows: 300,
      dim: 16,
      optimizer: { kind: 'adagrad', lr: 0.05 } as OptimizerConfig,
      init: { kind: 'normal' as const, std: 1, seed: 2 },
    };
    if (!nativeAvailable().available) {
      expect(() => ValueStore.create({ ...opts, file })).toThrow(BackendError);
      return;
    }
    const c = makeCase(51, 300, 16, 8, 4);
    const ref = ValueStore.create(opts); // in memory, same init and steps
    const a = ValueStore.create({ ...opts, file });
    expect(a.stats()).toMatchObject({ file, mapped: true });
    for (const s of [a, ref]) s.backward(c.ids, c.w, c.gOut, 4);
    expect(a.readRows(ALL_ROWS(300))).toEqual(ref.readRows(ALL_ROWS(300)));
    a.dispose(); // flushes: checksums recorded
    const b = ValueStore.load(file, { mmap: 'shared' });
    expect(b.readRows(ALL_ROWS(300))).toEqual(ref.readRows(ALL_ROWS(300)));
    for (const s of [b, ref]) s.backward(c.ids, c.w, c.gOut, 4);
    expect(b.flush()).toBe(true);
    b.dispose();
    const d = ValueStore.load(file); // plain read of the updated file
    expect(d.readRows(ALL_ROWS(300))).toEqual(ref.readRows(ALL_ROWS(300)));
    expect(d.stats().steps).toBe(2);
    expect(d.flush()).toBe(false);
    d.dispose();
    ref.dispose();
  });

  it('memory-mapped load reads the same table and trains copy-on-write (needs the addon)', () => {
    const c = makeCase(41, 64, 16, 8, 4);
    const a = ValueStore.create({ rows: 64, dim: 16, optimizer: { kind: 'adam', lr: 0.01 } });
    const file = path.join(dir, 'mmap.safetensors');
    a.save(file);
    if (!nativeAvailable().available) {
      expect(() => ValueStore.load(file, { mmap: true })).toThrow(BackendError);
      a.dispose();
      return;
    }
    const before = fs.readFileSync(file);
    const b = ValueStore.load(file, { mmap: true });
    expect(b.stats().mapped).toBe(true);
    expect(b.readRows(ALL_ROWS(64))).toEqual(a.readRows(ALL_ROWS(64)));
    a.backward(c.ids, c.w, c.gOut, 4);
    b.backward(c.ids, c.w, c.gOut, 4);
    expect(b.readRows(ALL_ROWS(64))).toEqual(a.readRows(ALL_ROWS(64)));
    b.dispose();
    expect(fs.readFileSync(file).equals(before)).toBe(true); // the file was not written
    a.dispose();
  });
});
