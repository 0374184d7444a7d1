/**
 * An emulated CUDA addon for tests (not exported from index.ts): the exports of
 * native/cuda/addon.cc with the same arguments, device buffers and lazy state allocation, computed
 * on the CPU by the TypeScript kernels. It lets cuda-emulated.test.ts run CudaValueTable's own
 * code (option checks, deferred queue, state save/load with Adam's m and v as separate device
 * buffers) on machines without a GPU. It checks the arguments the real addon checks.
 */
import type { CudaAddon } from './cuda-addon';
import { bagBackwardTs, bagForwardTs } from './ts/embedding-bag';

interface FakeTable {
  rows: number;
  dv: number;
  freed: boolean;
  values: Float32Array; // [rows, dv]
  /** device state buffers by addon name, allocated (zeros) at the first step that needs them */
  state: Map<string, Uint8Array>;
}

const STATE_BYTES: Record<string, (t: FakeTable) => number> = {
  accum: (t) => t.rows * t.dv * 4,
  moment1: (t) => t.rows * t.dv * 4,
  moment2: (t) => t.rows * t.dv * 4,
  moment1_bf16: (t) => t.rows * t.dv * 2,
  steps: (t) => t.rows * 4,
  row_v: (t) => t.rows * 4,
};

export interface FakeCudaAddon extends CudaAddon {
  /** tableBackwardStep calls so far, with their optimizer arguments */
  calls: { kind: number; lr: number; rowWise: number; momentBf16: number }[];
}

export function fakeCudaAddon(): FakeCudaAddon {
  const tables = new WeakMap<object, FakeTable>();
  const live = (h: object): FakeTable => {
    const t = tables.get(h);
    if (!t) throw new Error('handle: not a CUDA table handle');
    if (t.freed) throw new Error('handle: the CUDA table was freed');
    return t;
  };
  const slot = (t: FakeTable, name: string, allocate: boolean): Uint8Array | undefined => {
    const bytes = STATE_BYTES[name];
    if (!bytes) throw new Error(`name: unknown optimizer-state buffer '${name}'`);
    if (allocate && !t.state.has(name)) t.state.set(name, new Uint8Array(bytes(t)));
    return t.state.get(name);
  };
  const f32 = (u8: Uint8Array) => new Float32Array(u8.buffer, u8.byteOffset, u8.length / 4);
  const calls: FakeCudaAddon['calls'] = [];
  return {
    calls,
    deviceCount: () => ({ count: 1, device: 0, reason: '' }),
    tableCreate(values, rows, dv) {
      if (values.length !== rows * dv) throw new Error('values: length must be rows * dv');
      const h = {};
      tables.set(h, { rows, dv, freed: false, values: values.slice(), state: new Map() });
      return h;
    },
    tableUpload(h, values) {
      const t = live(h);
      if (values.length !== t.values.length) throw new Error('values: length must be rows * dv');
      t.values.set(values);
    },
    tableDownload: (h) => live(h).values.slice(),
    tableFree(h) {
      const t = tables.get(h);
      if (t) t.freed = true;
    },
    tableStateDownload(h, name) {
      const b = slot(live(h), name, false);
      return b ? b.slice() : null;
    },
    tableStateUpload(h, name, bytes) {
      const b = slot(live(h), name, true)!;
      if (bytes.length !== b.length) throw new Error(`bytes: length must be ${b.length}`);
      b.set(bytes);
    },
    tableForward(h, ids, weights, batch, bagSize) {
      const t = live(h);
      if (ids.length !== batch * bagSize || weights.length !== ids.length) throw new Error('ids: length must be batch * bagSize');
      for (const id of ids) if (id < -1 || id >= t.rows) throw new Error(`ids: ${id} outside [-1, rows)`);
      const out = new Float32Array(batch * t.dv);
      if (bagSize > 0) bagForwardTs(t.values, 0, t.dv, ids, weights, bagSize, out);
      return out;
    },
    tableBackwardStep(h, ids, weights, gradOut, batch, bagSize, kind, lr, beta1, beta2, eps, rowWise, momentBf16) {
      const t = live(h);
      if (ids.length !== batch * bagSize || weights.length !== ids.length) throw new Error('ids: length must be batch * bagSize');
      if (gradOut.length !== batch * t.dv) throw new Error('gradOut: length must be batch * dv');
      for (const id of ids) if (id < -1 || id >= t.rows) throw new Error(`ids: ${id} outside [-1, rows)`);
      if (momentBf16 && !(kind === 2 && rowWise)) throw new Error('momentBf16: needs kind adam with rowWise 1');
      calls.push({ kind, lr, rowWise, momentBf16 });
      const gw = new Float32Array(ids.length);
      if (ids.length === 0) return { gradWeights: gw, touchedRows: 0 };
      const { rows, dv } = t;
      const state = { accum: null, moments: null, m: null, m16: null, rowV: null, steps: null } as Parameters<typeof bagBackwardTs>[9];
      let m1: Float32Array | null = null;
      let m2: Float32Array | null = null;
      if (kind === 1) state.accum = f32(slot(t, 'accum', true)!);
      if (kind === 2 && rowWise) {
        if (momentBf16) {
          const u8 = slot(t, 'moment1_bf16', true)!;
          state.m16 = new Uint16Array(u8.buffer, u8.byteOffset, u8.length / 2);
        } else state.m = f32(slot(t, 'moment1', true)!);
        state.rowV = f32(slot(t, 'row_v', true)!);
      }
      if (kind === 2 && !rowWise) {
        // the TS kernel keeps (m, v) per row [N, 2, dv]; the device has m [N, dv] and v [N, dv]
        m1 = f32(slot(t, 'moment1', true)!);
        m2 = f32(slot(t, 'moment2', true)!);
        state.moments = new Float32Array(rows * 2 * dv);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < dv; c++) {
            state.moments[2 * r * dv + c] = m1[r * dv + c]!;
            state.moments[(2 * r + 1) * dv + c] = m2[r * dv + c]!;
          }
        }
      }
      if (kind === 2) state.steps = new Int32Array(slot(t, 'steps', true)!.buffer);
      const params = Float64Array.of(kind, lr, beta1, beta2, eps, 0, 0, 0, rowWise, momentBf16);
      const touched = bagBackwardTs(t.values, 0, dv, ids, weights, gradOut, bagSize, gw, params, state);
      if (m1 && m2 && state.moments) {
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < dv; c++) {
            m1[r * dv + c] = state.moments[2 * r * dv + c]!;
            m2[r * dv + c] = state.moments[(2 * r + 1) * dv + c]!;
          }
        }
      }
      return { gradWeights: gw, touchedRows: touched };
    },
    pkTopK() {
      throw new Error('pkTopK: not emulated');
    },
  };
}
