/**
 * The one description of the optimizer-state layout (state-layout.ts) against the store files
 * ValueStore writes, for every optimizer kind and variant: the table lists exactly the tensors of
 * the file (names, order, dtypes, shapes, offsets), and load(save(x)) gives back the table and
 * every state array byte for byte, in memory laid out as the table says (skew).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type OptimizerConfig, type StorageDtype, ValueStore, nativeAvailable, resolveOptimizer } from './index';
import { stateArraysOf, tableOf } from './internal';
import { STATE_SKEW, stateBytes, storeLayout } from './state-layout';
import { bagBatch } from './testing';

const N = 13;
const dv = 5;
const native = nativeAvailable().available;

/** name, dtype, shape, field, skew — written out by hand: the file format these files have had since v1 */
type Row = [string, string, number[], string | null, boolean];
const SKEW: Row = ['_skew', 'U8', [2112], null, false];
const VARIANTS: { name: string; optimizer: OptimizerConfig; dtype: StorageDtype; rows: Row[] }[] = [
  {
    name: 'sgd',
    optimizer: { kind: 'sgd', lr: 0.1, weightDecay: 0.01 },
    dtype: 'float16',
    rows: [['values', 'F16', [N, dv], 'values', false]],
  },
  {
    name: 'adagrad',
    optimizer: { kind: 'adagrad', lr: 0.1 },
    dtype: 'bfloat16',
    rows: [['adagrad_accum', 'F32', [N, dv], 'accum', true], SKEW, ['values', 'BF16', [N, dv], 'values', false]],
  },
  {
    name: 'adam',
    optimizer: { kind: 'adam', lr: 0.01, clip: { mode: 'global', maxNorm: 1 } },
    dtype: 'float32',
    rows: [
      ['adam_moments', 'F32', [N, 2, dv], 'moments', true],
      ['adam_step', 'I32', [N], 'steps', false],
      SKEW,
      ['values', 'F32', [N, dv], 'values', false],
    ],
  },
  {
    name: 'row-wise adam, f32 m',
    optimizer: { kind: 'adam', lr: 0.01, secondMoment: 'row' },
    dtype: 'float32',
    rows: [
      ['adam_m', 'F32', [N, dv], 'm', true],
      ['adam_row_v', 'F32', [N], 'rowV', false],
      ['adam_step', 'I32', [N], 'steps', false],
      SKEW,
      ['values', 'F32', [N, dv], 'values', false],
    ],
  },
  {
    name: 'row-wise adam, bf16 m',
    optimizer: { kind: 'adam', lr: 0.01, secondMoment: 'row', momentDtype: 'bfloat16' },
    dtype: 'bfloat16',
    rows: [
      ['adam_m', 'BF16', [N, dv], 'm16', true],
      ['adam_row_v', 'F32', [N], 'rowV', false],
      ['adam_step', 'I32', [N], 'steps', false],
      SKEW,
      ['values', 'BF16', [N, dv], 'values', false],
    ],
  },
];

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function header(file: string): {
  tensors: [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
  metadata: Record<string, string>;
} {
  const raw = fs.readFileSync(file);
  const json = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString());
  const { __metadata__: metadata, ...tensors } = json;
  return {
    tensors: Object.entries(tensors as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>).sort(
      (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0],
    ),
    metadata,
  };
}

describe.each(VARIANTS)('state layout: $name', ({ optimizer, dtype, rows }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnemo-layout-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const layout = storeLayout(resolveOptimizer(optimizer), N, dv, dtype);
  const trained = () => {
    const s = ValueStore.create({ rows: N, dim: dv, dtype, optimizer, init: { kind: 'normal', std: 1, seed: 5 } });
    for (const seed of [1, 2]) {
      const { ids, w, gOut } = bagBatch(seed, N, 4, 3, dv);
      s.backward(ids, w, gOut, 3);
    }
    return s;
  };

  it('the layout table is the expected tensor list, with byte sizes', () => {
    expect(layout.map((r) => [r.name, r.dtype, r.shape, r.field, r.skew])).toEqual(rows);
    const size: Record<string, number> = { F32: 4, BF16: 2, F16: 2, I32: 4, U8: 1 };
    for (const r of layout) expect(r.bytes).toBe(r.shape.reduce((a, b) => a * b, size[r.dtype]!));
  });

  it("save() writes exactly the layout's tensors: names, order, dtypes, shapes, back-to-back offsets; _skew is zeros", () => {
    const s = trained();
    const file = path.join(dir, 'a.safetensors');
    s.save(file);
    const h = header(file);
    expect(h.tensors.map(([name, t]) => [name, t.dtype, t.shape])).toEqual(layout.map((r) => [r.name, r.dtype, r.shape]));
    let off = 0;
    for (const [i, [, t]] of h.tensors.entries()) {
      expect(t.data_offsets).toEqual([off, off + layout[i]!.bytes]);
      off += layout[i]!.bytes;
    }
    expect(Object.keys(h.metadata).sort()).toEqual([
      'checksums',
      'dim',
      'dtype',
      'format',
      'optimizer',
      'rowUpdates',
      'rows',
      'steps',
      'version',
    ]);
    expect(h.metadata).toMatchObject({ format: 'mnemo-value-store', version: '1', rows: String(N), dim: String(dv), dtype, steps: '2' });
    const skew = h.tensors.find(([name]) => name === '_skew');
    if (skew) {
      const raw = fs.readFileSync(file);
      const start = 8 + Number(raw.readBigUInt64LE(0)) + skew[1].data_offsets[0];
      expect(raw.subarray(start, start + STATE_SKEW).every((b) => b === 0)).toBe(true);
    }
    expect(s.stats().stateBytes).toBe(stateBytes(layout));
    s.dispose();
  });

  it('load(save(x)) round-trips the table and every state array byte for byte; a re-save is byte-identical', () => {
    const a = trained();
    const file = path.join(dir, 'b.safetensors');
    a.save(file);
    const want = [tableOf(a), ...stateArraysOf(a)].map(bytes);
    expect(want.length).toBe(layout.length - (layout.length > 1 ? 1 : 0)); // every tensor but _skew
    // the state is not all zeros after two updates (so the comparison means something)
    for (const s of want.slice(1)) expect(s.some((b) => b !== 0)).toBe(true);
    const shared = path.join(dir, 'shared.safetensors');
    fs.copyFileSync(file, shared);
    const loads: [string, ValueStore][] = [['read', ValueStore.load(file)]];
    if (native) loads.push(['mmap', ValueStore.load(file, { mmap: true })], ['mmap shared', ValueStore.load(shared, { mmap: 'shared' })]);
    for (const [how, b] of loads) {
      const got = [tableOf(b), ...stateArraysOf(b)].map(bytes);
      expect(got.length, how).toBe(want.length);
      for (const [i, g] of got.entries()) expect(g.equals(want[i]!), `${how}: ${layout.filter((r) => r.field)[i]?.name}`).toBe(true);
      expect(b.stats()).toMatchObject({ steps: 2, stateBytes: stateBytes(layout) });
      const again = path.join(dir, `again-${how}.safetensors`);
      b.save(again);
      expect(fs.readFileSync(again).equals(fs.readFileSync(file)), how).toBe(true);
      b.dispose();
    }
    a.dispose();
  });

  it('in memory, state arrays marked skew start STATE_SKEW bytes into their block, the others at 0 (created and loaded)', () => {
    const a = trained();
    const file = path.join(dir, 'c.safetensors');
    a.save(file);
    const b = ValueStore.load(file);
    const state = layout.filter((r) => r.field && r.field !== 'values');
    for (const s of [a, b]) {
      expect(tableOf(s).byteOffset).toBe(0);
      stateArraysOf(s).forEach((arr, i) => expect(arr.byteOffset, state[i]!.name).toBe(state[i]!.skew ? STATE_SKEW : 0));
    }
    a.dispose();
    b.dispose();
  });
});
