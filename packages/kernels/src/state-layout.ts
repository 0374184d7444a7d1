/**
 * The ONE description of a value table's tensors: for a resolved optimizer, the list of
 * `{ name, dtype, shape, bytes, field, skew }` rows, in store-file order. Allocation, file
 * mappings, load, save/flush and stats (value-store.ts, value-store-io.ts) and the CUDA table's
 * save/load (cuda.ts) all loop over it; nothing else spells the state arrays out.
 *
 *   optimizer                  tensors (file order)                          field
 *   sgd                        values                                         values
 *   adagrad                    adagrad_accum F32 [N, dv]                      accum   (skew)
 *   adam                       adam_moments  F32 [N, 2, dv]  (m, v per row)   moments (skew)
 *                              adam_step     I32 [N]                          steps
 *   adam, secondMoment 'row'   adam_m        F32 [N, dv]  (momentDtype f32)   m       (skew)
 *                                            BF16 [N, dv] (momentDtype bf16)  m16     (skew)
 *                              adam_row_v    F32 [N]                          rowV
 *                              adam_step     I32 [N]                          steps
 *   then, when there is state: _skew U8 [STATE_SKEW] zeros (not in memory)    null
 *   last:                      values F32 | BF16 | F16 [N, dv]                values
 *
 * `field` names the `OptimizerStateArrays` member (ts/embedding-bag.ts) that holds the tensor in
 * memory, with one meaning each; 'values' is the table itself. `skew`: in memory the array
 * starts STATE_SKEW bytes into its own page-aligned block (see STATE_SKEW).
 */
import { ST_BYTES, type StDtype, type TensorSpec } from './store-file';
import type { ResolvedOptimizer } from './optimizers';
import type { StorageDtype } from './table-config';
import type { OptimizerStateArrays } from './ts/embedding-bag';

/**
 * Optimizer-state arrays start STATE_SKEW bytes into their page-aligned block. With both the table
 * and the state page aligned, V[r] and A[r] would share their low 12 address bits, and the
 * update loop's stores to one then stall loads of the other on false "4K aliasing" conflicts
 * (measured: the Adagrad backward ran 2.5x slower). 2 KiB + one cache line moves them apart.
 * The store file holds a `_skew` pad of the same size, so memory-mapped state is skewed too.
 */
export const STATE_SKEW = 2048 + 64;

export type StateField = keyof OptimizerStateArrays;

export interface LayoutRow {
  /** tensor name in the store file */
  name: string;
  dtype: StDtype;
  shape: number[];
  bytes: number;
  /** the OptimizerStateArrays member holding it; 'values' = the table; null = the _skew pad */
  field: StateField | 'values' | null;
  /** allocated STATE_SKEW bytes into its own block */
  skew: boolean;
}

/** A layout row that is optimizer state. */
export type StateRow = LayoutRow & { field: StateField };

export const ST_DTYPE: Record<StorageDtype, StDtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

function row(name: string, dtype: StDtype, shape: number[], field: LayoutRow['field'], skew = false): LayoutRow {
  return { name, dtype, shape, bytes: shape.reduce((a, b) => a * b, ST_BYTES[dtype]), field, skew };
}

/** The tensors of a table with this optimizer, in file order. */
export function storeLayout(opt: ResolvedOptimizer, rows: number, dim: number, dtype: StorageDtype): LayoutRow[] {
  const layout: LayoutRow[] = [];
  if (opt.kind === 'adagrad') layout.push(row('adagrad_accum', 'F32', [rows, dim], 'accum', true));
  if (opt.kind === 'adam' && opt.secondMoment === 'row') {
    // partial row-wise Adam: m [N, dv] (F32 or BF16), v per row [N]
    if (opt.momentDtype === 'bfloat16') layout.push(row('adam_m', 'BF16', [rows, dim], 'm16', true));
    else layout.push(row('adam_m', 'F32', [rows, dim], 'm', true));
    layout.push(row('adam_row_v', 'F32', [rows], 'rowV'));
    layout.push(row('adam_step', 'I32', [rows], 'steps'));
  } else if (opt.kind === 'adam') {
    layout.push(row('adam_moments', 'F32', [rows, 2, dim], 'moments', true));
    layout.push(row('adam_step', 'I32', [rows], 'steps'));
  }
  if (layout.length) layout.push(row('_skew', 'U8', [STATE_SKEW], null));
  layout.push(row('values', ST_DTYPE[dtype], [rows, dim], 'values'));
  return layout;
}

export function stateRows(layout: readonly LayoutRow[]): StateRow[] {
  return layout.filter((r): r is StateRow => r.field !== null && r.field !== 'values');
}

export function valuesRow(layout: readonly LayoutRow[]): LayoutRow {
  return layout.find((r) => r.field === 'values')!;
}

/** Bytes of optimizer state (the _skew pad is not state). */
export function stateBytes(layout: readonly LayoutRow[]): number {
  return stateRows(layout).reduce((a, r) => a + r.bytes, 0);
}

/** What the store-file header records of a row. */
export function specOf(r: LayoutRow): TensorSpec {
  return { name: r.name, dtype: r.dtype, shape: r.shape, length: r.bytes };
}

export type RowArray = Float32Array | Uint16Array | Int32Array | Uint8Array;

/** The typed array of a row over `u8` (its bytes). */
export function viewOf(r: LayoutRow, u8: Uint8Array): RowArray {
  const { buffer, byteOffset, length } = u8;
  if (r.dtype === 'F32') return new Float32Array(buffer, byteOffset, length / 4);
  if (r.dtype === 'BF16' || r.dtype === 'F16') return new Uint16Array(buffer, byteOffset, length / 2);
  if (r.dtype === 'I32') return new Int32Array(buffer, byteOffset, length / 4);
  return u8;
}

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function emptyState(): OptimizerStateArrays {
  return { accum: null, moments: null, m: null, m16: null, rowV: null, steps: null };
}

/** Put a state row's array into `state` (the field's type is the row's dtype). */
export function setState(state: OptimizerStateArrays, r: StateRow, a: RowArray): void {
  (state as unknown as Record<StateField, RowArray>)[r.field] = a;
}
