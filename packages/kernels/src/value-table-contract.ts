/**
 * The ValueTable contract (value-table.ts) as ONE test suite, run against every implementation:
 * value-table.test.ts (ValueStore native and ts, CudaValueTable on a GPU) and
 * cuda-emulated.test.ts (CudaValueTable over an emulated addon). Test code, not exported from
 * index.ts. References are float64, computed here from the table's own rows (readRows).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DisposedError, ShapeError, ValueError } from '@mnemo/core';
import type { OptimizerConfig } from './optimizers';
import type { ValueStoreOptions } from './table-config';
import { bagBatch, relErr } from './testing';
import { embeddingBag } from './tfjs-op';
import type { ValueTable } from './value-table';
import { ValueStore } from './value-store';

export interface ContractSubject {
  name: string;
  /** why it cannot run here (the suite prints it and checks nothing), or null */
  skip: string | null;
  create(opts: ValueStoreOptions): ValueTable;
  load(file: string): ValueTable;
  /** relative tolerance against the float64 references */
  tol: number;
}

const N = 50;
const dv = 7; // odd: SIMD and float4 tails
const B = 6;
const K = 5;
const ALL = Int32Array.from({ length: N }, (_, i) => i);
const INIT = { kind: 'normal', std: 0.5, seed: 11 } as const;

/** a batch with padding, duplicates within and across bags (rows 0..3 hot) */
const batch = (seed: number, b = B, k = K) => bagBatch(seed, N, b, k, dv, { pad: 0.1, hot: 0.3, hotRows: 4 });

/** out[b] = Σ_j w[b,j] · V[ids[b,j]] in float64 // [B, dv] */
function gatherSum(V: Float32Array, ids: Int32Array, w: Float32Array, k: number): Float64Array {
  const out = new Float64Array((ids.length / k) * dv);
  for (let p = 0; p < ids.length; p++) {
    if (ids[p]! < 0) continue;
    const b = Math.floor(p / k);
    for (let c = 0; c < dv; c++) out[b * dv + c]! += w[p]! * V[ids[p]! * dv + c]!;
  }
  return out;
}

/** gw[b,j] = <gOut[b], V[ids[b,j]]> in float64 // [B, K] */
function gwOf(V: Float32Array, ids: Int32Array, gOut: Float32Array, k: number): Float64Array {
  const gw = new Float64Array(ids.length);
  for (let p = 0; p < ids.length; p++) {
    if (ids[p]! < 0) continue;
    const b = Math.floor(p / k);
    for (let c = 0; c < dv; c++) gw[p]! += gOut[b * dv + c]! * V[ids[p]! * dv + c]!;
  }
  return gw;
}

/** gV[r] = Σ_{ids[b,j] = r} w[b,j] · gOut[b] in float64 // [N, dv] */
function rowGrads(ids: Int32Array, w: Float32Array, gOut: Float32Array, k: number): Float64Array {
  const g = new Float64Array(N * dv);
  for (let p = 0; p < ids.length; p++) {
    if (ids[p]! < 0) continue;
    const b = Math.floor(p / k);
    for (let c = 0; c < dv; c++) g[ids[p]! * dv + c]! += w[p]! * gOut[b * dv + c]!;
  }
  return g;
}

const distinct = (ids: Int32Array) => new Set(Array.from(ids).filter((r) => r >= 0)).size;

export function valueTableContract(subject: ContractSubject): void {
  const { name, tol } = subject;
  const test = (title: string, body: () => void) =>
    it(title, () => {
      if (subject.skip !== null) {
        console.log(`skip (${name}): ${subject.skip}`);
        return;
      }
      body();
    });
  const make = (optimizer: OptimizerConfig, more: Partial<ValueStoreOptions> = {}) =>
    subject.create({ rows: N, dim: dv, optimizer, init: INIT, ...more });

  describe(`ValueTable contract: ${name}`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-contract-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('forward equals a direct gather-sum; out buffers and K = 0', () => {
      const t = make({ kind: 'sgd', lr: 0.1 });
      expect(t.rows).toBe(N);
      expect(t.dim).toBe(dv);
      const V = t.readRows(ALL); // [N, dv]
      const { ids, w } = batch(1);
      const out = t.forward(ids, w, K); // [B, dv]
      expect(out.length).toBe(B * dv);
      expect(relErr(out, gatherSum(V, ids, w, K))).toBeLessThan(tol);
      const buf = new Float32Array(B * dv).fill(9);
      expect(t.forward(ids, w, K, B, buf)).toBe(buf);
      expect(relErr(buf, out)).toBe(0);
      expect(Array.from(t.forward(new Int32Array(0), new Float32Array(0), 0, 3))).toEqual(new Array(3 * dv).fill(0));
      expect(t.readRows(ALL)).toEqual(V); // forward leaves the table alone
      t.dispose();
    });

    test("backward's gw uses the rows before the update", () => {
      const t = make({ kind: 'sgd', lr: 1 });
      const V0 = t.readRows(ALL);
      const { ids, w, gOut } = batch(2);
      const gw = t.backward(ids, w, gOut, K); // [B, K]
      const V1 = t.readRows(ALL);
      expect(relErr(gw, gwOf(V0, ids, gOut, K))).toBeLessThan(tol);
      // the update was large enough that gw from the updated rows would be told apart
      expect(relErr(gwOf(V1, ids, gOut, K), gwOf(V0, ids, gOut, K))).toBeGreaterThan(1e-2);
      for (let p = 0; p < ids.length; p++) if (ids[p]! < 0) expect(gw[p]).toBe(0);
      t.dispose();
    });

    test('an SGD update is V − lr·gV on the touched rows; the others are untouched', () => {
      const lr = 0.3;
      const t = make({ kind: 'sgd', lr });
      const V0 = t.readRows(ALL);
      const { ids, w, gOut } = batch(3);
      t.backward(ids, w, gOut, K);
      const gV = rowGrads(ids, w, gOut, K);
      const want = Float64Array.from(V0, (v, i) => v - lr * gV[i]!);
      const V1 = t.readRows(ALL);
      expect(relErr(V1, want)).toBeLessThan(tol);
      expect(relErr(V1, V0)).toBeGreaterThan(1e-2);
      const touched = new Set(Array.from(ids).filter((r) => r >= 0));
      expect(touched.size).toBeLessThan(N);
      for (let r = 0; r < N; r++) if (!touched.has(r)) expect(V1.subarray(r * dv, (r + 1) * dv)).toEqual(V0.subarray(r * dv, (r + 1) * dv));
      expect(t.stats()).toMatchObject({ rows: N, dim: dv, steps: 1, touchedRows: touched.size, rowUpdates: touched.size, pending: 0 });
      // a per-call lr overrides the optimizer's: lr 0 changes nothing
      t.backward(ids, w, gOut, K, { lr: 0 });
      expect(t.readRows(ALL)).toEqual(V1);
      t.dispose();
    });

    test('deferred equals fused for one batch (Adam); step() with nothing queued does nothing', () => {
      const opt: OptimizerConfig = { kind: 'adam', lr: 0.05 };
      const deferred = make(opt, { deferred: true });
      const fused = make(opt);
      const V0 = deferred.readRows(ALL);
      const { ids, w, gOut } = batch(4);
      const gwD = deferred.backward(ids, w, gOut, K);
      expect(deferred.readRows(ALL)).toEqual(V0); // queued, not applied
      expect(deferred.stats()).toMatchObject({ pending: 1, steps: 0 });
      expect(deferred.step()).toBe(distinct(ids));
      expect(deferred.stats()).toMatchObject({ pending: 0, steps: 1, touchedRows: distinct(ids) });
      const gwF = fused.backward(ids, w, gOut, K);
      expect(relErr(gwD, gwF)).toBeLessThan(tol);
      expect(relErr(deferred.readRows(ALL), fused.readRows(ALL))).toBeLessThan(tol);
      expect(relErr(deferred.readRows(ALL), V0)).toBeGreaterThan(1e-3);
      expect(deferred.step()).toBe(0);
      // per call: a fused table can queue too
      fused.backward(ids, w, gOut, K, { deferred: true });
      expect(fused.stats().pending).toBe(1);
      expect(fused.step({ lr: 0.05 })).toBe(distinct(ids));
      deferred.dispose();
      fused.dispose();
    });

    test('two queued batches of different K are one update over both', () => {
      const opt: OptimizerConfig = { kind: 'adagrad', lr: 0.1 };
      const a = make(opt, { deferred: true });
      const b = make(opt);
      const x = batch(5, 4, 3);
      const y = batch(6, 3, 5);
      a.backward(x.ids, x.w, x.gOut, 3);
      a.backward(y.ids, y.w, y.gOut, 5);
      a.step();
      // the same as one batch [7, 5]: x padded with −1
      const ids = new Int32Array(7 * 5).fill(-1);
      const w = new Float32Array(7 * 5);
      for (let i = 0; i < 4; i++) {
        ids.set(x.ids.subarray(3 * i, 3 * i + 3), 5 * i);
        w.set(x.w.subarray(3 * i, 3 * i + 3), 5 * i);
      }
      ids.set(y.ids, 20);
      w.set(y.w, 20);
      const g = new Float32Array(7 * dv);
      g.set(x.gOut);
      g.set(y.gOut, 4 * dv);
      b.backward(ids, w, g, 5);
      expect(relErr(a.readRows(ALL), b.readRows(ALL))).toBeLessThan(tol);
      a.dispose();
      b.dispose();
    });

    test('readRows / writeRows: rows round-trip, −1 reads zeros, other rows stay', () => {
      const t = make({ kind: 'sgd', lr: 0.1 });
      const V0 = t.readRows(ALL);
      const ids = Int32Array.of(3, 41, 7);
      const rows = Float32Array.from({ length: 3 * dv }, (_, i) => i / 4 - 2); // [3, dv]
      t.writeRows(ids, rows);
      expect(t.readRows(ids)).toEqual(rows);
      const withPad = t.readRows(Int32Array.of(41, -1)); // [2, dv]
      expect(withPad.subarray(0, dv)).toEqual(rows.subarray(dv, 2 * dv));
      expect(Array.from(withPad.subarray(dv))).toEqual(new Array(dv).fill(0));
      const V1 = t.readRows(ALL);
      for (let r = 0; r < N; r++)
        if (![3, 41, 7].includes(r)) expect(V1.subarray(r * dv, (r + 1) * dv)).toEqual(V0.subarray(r * dv, (r + 1) * dv));
      expect(() => t.writeRows(Int32Array.of(-1), new Float32Array(dv))).toThrow(/ids/);
      expect(() => t.writeRows(ids, new Float32Array(dv))).toThrow(ShapeError);
      expect(() => t.readRows(Int32Array.of(N))).toThrow(ValueError);
      t.dispose();
    });

    test('save → load round trip (own load and ValueStore.load): same rows, counters, and training continues alike', () => {
      const opt: OptimizerConfig = { kind: 'adam', lr: 0.05 };
      const a = make(opt);
      const c1 = batch(7);
      a.backward(c1.ids, c1.w, c1.gOut, K);
      const file = path.join(dir, 'round.safetensors');
      a.save(file);
      const b = subject.load(file);
      const cpu = ValueStore.load(file, { impl: 'ts' }); // the one file format
      for (const t of [b, cpu]) {
        expect(t.readRows(ALL)).toEqual(a.readRows(ALL));
        expect(t.stats()).toMatchObject({ steps: 1, touchedRows: 0, rowUpdates: distinct(c1.ids) });
      }
      const c2 = batch(8);
      for (const t of [a, b, cpu]) t.backward(c2.ids, c2.w, c2.gOut, K);
      expect(b.readRows(ALL)).toEqual(a.readRows(ALL)); // same kernels, same state
      expect(relErr(cpu.readRows(ALL), a.readRows(ALL))).toBeLessThan(10 * tol);
      // Adam's state was saved: a fresh Adam from the same rows steps differently
      const fresh = make(opt, { init: 'zeros' });
      const reread = ValueStore.load(file, { impl: 'ts' });
      fresh.writeRows(ALL, reread.readRows(ALL));
      reread.dispose();
      fresh.backward(c2.ids, c2.w, c2.gOut, K);
      expect(relErr(fresh.readRows(ALL), a.readRows(ALL))).toBeGreaterThan(1e-3);
      for (const t of [a, b, cpu, fresh]) t.dispose();
    });

    test('bad input: typed errors naming the field; use after dispose', () => {
      const t = make({ kind: 'sgd', lr: 0.1 });
      const { ids, w, gOut } = batch(9);
      expect(() => t.forward(Int32Array.of(0, N), Float32Array.of(1, 1), 2)).toThrow(ValueError);
      expect(() => t.forward(Int32Array.of(0, -2), Float32Array.of(1, 1), 2)).toThrow(/ids: element 1 is -2/);
      expect(() =>
        t.forward(
          ids,
          Float32Array.from(w, (x, i) => (i === 3 ? Number.NaN : x)),
          K,
        ),
      ).toThrow(/weights: element 3 is NaN/);
      expect(() => t.forward(ids, w.subarray(1), K)).toThrow(ShapeError);
      expect(() => t.forward(ids, w, 4)).toThrow(/multiple of bagSize/); // 30 positions
      expect(() => t.forward(ids, w, 1.5)).toThrow(/bagSize/);
      expect(() => t.forward(ids, w, K, undefined, new Float32Array(3))).toThrow(/out/);
      expect(() => t.forward(new Int32Array(0), new Float32Array(0), 0)).toThrow(/batch/);
      expect(() => t.backward(ids, w, gOut.subarray(1), K)).toThrow(/gOut: expected \[B=6, dv=7\]/);
      expect(() =>
        t.backward(
          ids,
          w,
          Float32Array.from(gOut, () => Number.POSITIVE_INFINITY),
          K,
        ),
      ).toThrow(/gOut/);
      expect(() => t.backward(ids, w, gOut, K, { lr: -1 })).toThrow(ConfigError);
      expect(() => t.backward(ids, w, gOut, K, { lr: -1 })).toThrow(/lr/);
      expect(() => t.step({ lr: Number.NaN })).toThrow(/lr/);
      expect(() => t.save('')).toThrow(/file/);
      expect(t.stats().steps).toBe(0); // nothing above changed the table
      expect(t.disposed).toBe(false);
      t.dispose();
      t.dispose(); // idempotent
      expect(t.disposed).toBe(true);
      expect(() => t.forward(ids, w, K)).toThrow(DisposedError);
      expect(() => t.backward(ids, w, gOut, K)).toThrow(DisposedError);
      expect(() => t.readRows(ALL)).toThrow(DisposedError);
      expect(() => t.stats()).toThrow(DisposedError);
    });

    describe('inside tfjs', () => {
      beforeAll(async () => {
        await tf.setBackend('cpu');
      });
      test('embeddingBag over the table: value = forward, weight gradient = backward gw, rows updated', () => {
        const t = make({ kind: 'sgd', lr: 0.5 });
        const V0 = t.readRows(ALL);
        const { ids, w, gOut } = batch(10);
        const idsT = tf.tensor2d(ids, [B, K], 'int32');
        const wT = tf.tensor2d(w, [B, K]);
        const gT = tf.tensor2d(gOut, [B, dv]);
        const wv = tf.variable(wT); // [B, K]
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(embeddingBag(t, idsT, wv), gT)) as tf.Scalar, [wv]);
        const out = gatherSum(V0, ids, w, K);
        let want = 0;
        for (let i = 0; i < out.length; i++) want += out[i]! * gOut[i]!;
        expect(Math.abs(value.dataSync()[0]! - want)).toBeLessThan(tol * 10 * Math.max(1, Math.abs(want)));
        expect(relErr(grads[wv.name]!.dataSync(), gwOf(V0, ids, gOut, K))).toBeLessThan(tol);
        expect(t.stats().steps).toBe(1);
        expect(relErr(t.readRows(ALL), V0)).toBeGreaterThan(1e-2); // updated inside the gradient
        tf.dispose([idsT, wT, wv, gT, value, ...Object.values(grads)]);
        t.dispose();
      });
    });
  });
}
