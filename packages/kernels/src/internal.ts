/**
 * INTERNAL: direct access to a ValueStore's live arrays, for this package's benchmarks
 * (bench/index.ts: the roofline loops run over the very table and state the store updates) and
 * its tests (state bytes after a save/load round trip). Not exported from index.ts; nothing in
 * production code may import it. The store's only hook is one `registerStoreAccess` call in a
 * static block of the class.
 */
import { DisposedError } from '@mnemo/core';
import type { LayoutRow } from './state-layout';
import { stateRows } from './state-layout';
import type { OptimizerStateArrays, Storage } from './ts/embedding-bag';
import type { ValueStore } from './value-store';

interface StoreArrays {
  values: Storage | null;
  state: OptimizerStateArrays;
  layout: readonly LayoutRow[];
}

let access: ((s: ValueStore) => StoreArrays) | undefined;

/** Called once, by ValueStore's static block. */
export function registerStoreAccess(fn: (s: ValueStore) => StoreArrays): void {
  access = fn;
}

function arraysOf(store: ValueStore): StoreArrays & { values: Storage } {
  const a = access!(store); // set: a ValueStore exists, so its class (and static block) ran
  if (!a.values) throw new DisposedError('ValueStore: used after dispose()');
  return a as StoreArrays & { values: Storage };
}

/** The live table [N, dv]. */
export function tableOf(store: ValueStore): Storage {
  return arraysOf(store).values;
}

/** The store's optimizer-state arrays, in layout order (Adagrad A; Adam (m, v), steps; row-wise m, v_r, steps). */
export function stateArraysOf(store: ValueStore): (Float32Array | Uint16Array | Int32Array)[] {
  const { state, layout } = arraysOf(store);
  return stateRows(layout).map((r) => state[r.field]!);
}
