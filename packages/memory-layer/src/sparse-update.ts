/**
 * Sparse memory finetuning, the slot side (Lin et al. 2025, "Continual Learning via Sparse
 * Memory Finetuning"). A text is taught by updating ONLY the few value rows most specific to it;
 * this file ranks the slots and restricts a value table's updates to them. The teach loop that
 * runs the model forward/backward lives in @mnemo/model (teach.ts): it knows the blocks.
 *
 * Ranking (TF-IDF over slot reads; every read of slot s by any token, head or memory counts 1):
 *   score(s) = c_text(s) · log((R_bg + 1) / (c_bg(s) + 1))
 *   c_text(s)  reads of s while the model reads the text
 *   c_bg(s)    reads of s over a background sample of the training data
 *   R_bg       total reads of the background sample
 * Slots the text reads often but the background rarely reads score highest; a slot every text
 * reads (c_bg ≈ R_bg) scores ≈ 0. Ties break by the lower slot id (deterministic).
 *
 * Restriction: `restrictUpdates(table, rows)` is a ValueTable that forwards reads unchanged and
 * passes backward the ids of the chosen rows only (the others as −1 = padding), so the table's
 * OWN optimizer updates exactly those rows and no other row or optimizer state changes. The
 * weights' gradient it returns is the full one: for a read of a frozen row it is computed here,
 * <gOut, V[row]>, so queries and keys upstream still learn (the LoRA baseline, issue 18).
 */
import { readFileSync } from 'node:fs';
import { CheckpointError, ConfigError, writeFileAtomic } from '@mnemo/core';
import type { BackwardOptions, StepOptions, ValueTable, ValueTableStats } from '@mnemo/kernels';

/** Read counts over a background sample: the "document frequencies" of the ranking. */
export interface BackgroundReads {
  /** N: slots of the pool */
  slots: number;
  /** tokens of the sample */
  tokens: number;
  /** R_bg: Σ counts */
  reads: number;
  /** c_bg [N] */
  counts: Float64Array;
}

/** Sum read counts (e.g. per text of a sample) into background reads. */
export function backgroundReads(slots: number, perText: Iterable<{ counts: ArrayLike<number>; tokens: number }>): BackgroundReads {
  if (!Number.isInteger(slots) || slots < 1) throw new ConfigError('slots', `must be a whole number ≥ 1, got ${slots}`);
  const counts = new Float64Array(slots);
  let tokens = 0;
  let reads = 0;
  for (const t of perText) {
    if (t.counts.length !== slots) throw new ConfigError('counts', `has ${t.counts.length} entries, expected ${slots}`);
    for (let s = 0; s < slots; s++) {
      const c = t.counts[s]!;
      counts[s] = counts[s]! + c;
      reads += c;
    }
    tokens += t.tokens;
  }
  return { slots, tokens, reads, counts };
}

/** TF-IDF score of every slot (see the file header). */
export function slotScores(textCounts: ArrayLike<number>, bg: BackgroundReads): Float64Array {
  if (textCounts.length !== bg.slots) throw new ConfigError('textCounts', `has ${textCounts.length} entries, expected ${bg.slots}`);
  const out = new Float64Array(bg.slots);
  for (let s = 0; s < bg.slots; s++) {
    const c = textCounts[s]!;
    out[s] = c > 0 ? c * Math.log((bg.reads + 1) / (bg.counts[s]! + 1)) : 0;
  }
  return out;
}

/** The ids of the top-`t` slots by score among those the text reads (fewer if it reads fewer), ascending. */
export function topSlots(textCounts: ArrayLike<number>, bg: BackgroundReads, t: number): Int32Array {
  if (!Number.isInteger(t) || t < 1) throw new ConfigError('t', `must be a whole number ≥ 1, got ${t}`);
  const score = slotScores(textCounts, bg);
  const read: number[] = [];
  for (let s = 0; s < bg.slots; s++) if (textCounts[s]! > 0) read.push(s);
  read.sort((a, b) => score[b]! - score[a]! || a - b);
  return Int32Array.from(read.slice(0, t)).sort();
}

/** A view of `table` whose backward updates only `rows` (reads, save and everything else unchanged). */
export function restrictUpdates(table: ValueTable, rows: Int32Array): ValueTable {
  const allowed = new Uint8Array(table.rows);
  for (const r of rows) {
    if (!Number.isInteger(r) || r < 0 || r >= table.rows) throw new ConfigError('rows', `id ${r} is not in [0, ${table.rows})`);
    allowed[r] = 1;
  }
  return {
    get rows() {
      return table.rows;
    },
    get dim() {
      return table.dim;
    },
    get disposed() {
      return table.disposed;
    },
    forward: (ids, w, K, B, out) => table.forward(ids, w, K, B, out),
    backward: (ids: Int32Array, w: Float32Array, g: Float32Array, K: number, opts?: BackwardOptions) => {
      const masked = new Int32Array(ids.length);
      const frozen: number[] = []; // read but not updated: their weights' gradient still counts
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        masked[i] = id >= 0 && allowed[id] ? id : -1;
        if (id >= 0 && !allowed[id]) frozen.push(i);
      }
      const gw = table.backward(masked, w, g, K, opts);
      if (frozen.length) {
        // gw[b, j] = <gOut[b], V[ids[b, j]]> for the frozen reads (the table returns 0 for padding)
        const dv = table.dim;
        const rows = table.readRows(Int32Array.from(frozen, (i) => ids[i]!));
        for (const [n, i] of frozen.entries()) {
          const b = Math.floor(i / K);
          let dot = 0;
          for (let e = 0; e < dv; e++) dot += g[b * dv + e]! * rows[n * dv + e]!;
          gw[i] = dot;
        }
      }
      return gw;
    },
    step: (opts?: StepOptions) => table.step(opts),
    readRows: (ids) => table.readRows(ids),
    writeRows: (ids, r) => table.writeRows(ids, r),
    stats: (): ValueTableStats => table.stats(),
    save: (file) => table.save(file),
    dispose: () => table.dispose(),
  };
}

const FORMAT = 'mnemo-background-reads/1';

/** Write background reads to `file` (JSON, atomically). */
export function saveBackgroundReads(file: string, bg: BackgroundReads): void {
  writeFileAtomic(
    file,
    JSON.stringify({ format: FORMAT, slots: bg.slots, tokens: bg.tokens, reads: bg.reads, counts: Array.from(bg.counts) }),
  );
}

/** Read background reads written by saveBackgroundReads; CheckpointError naming the file when malformed. */
export function loadBackgroundReads(file: string): BackgroundReads {
  let j: { format?: unknown; slots?: unknown; tokens?: unknown; reads?: unknown; counts?: unknown };
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(file, `cannot read background reads: ${(e as Error).message}`);
  }
  const { slots, tokens, counts } = j;
  if (j.format !== FORMAT || typeof slots !== 'number' || typeof tokens !== 'number' || !Array.isArray(counts) || counts.length !== slots) {
    throw new CheckpointError(file, `is not a ${FORMAT} file with ${String(slots)} counts`);
  }
  const c = Float64Array.from(counts as number[]);
  let reads = 0;
  for (const x of c) reads += x;
  return { slots, tokens, reads, counts: c };
}
