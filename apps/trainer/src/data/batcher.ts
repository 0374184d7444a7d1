/**
 * Deterministic batches of token windows. Batch `step` depends only on (seed, step), so the
 * "data position" of a run is its step number and a resumed run reads exactly the batches an
 * uninterrupted run would have read.
 */
import { mulberry32 } from '@mnemo/core';

export class Batcher {
  constructor(
    readonly tokens: Int32Array,
    readonly batch: number,
    readonly seqLen: number,
    readonly seed: number,
  ) {
    if (tokens.length < seqLen + 2) {
      throw new RangeError(`the corpus has ${tokens.length} tokens, fewer than one window of seqLen + 1 = ${seqLen + 1}`);
    }
  }

  /** ids [batch, seqLen + 1] (inputs and next-token targets) of training step `step`. */
  at(step: number): Int32Array {
    const r = mulberry32((this.seed * 1_000_003 + step * 7919) >>> 0);
    const w = this.seqLen + 1;
    const out = new Int32Array(this.batch * w);
    for (let b = 0; b < this.batch; b++) {
      const start = Math.floor(r() * (this.tokens.length - w));
      out.set(this.tokens.subarray(start, start + w), b * w);
    }
    return out;
  }
}

/** Fixed, non-overlapping windows for evaluation: [n, seqLen + 1]. */
export function evalWindows(tokens: Int32Array, seqLen: number, max: number): Int32Array[] {
  const w = seqLen + 1;
  const out: Int32Array[] = [];
  for (let s = 0; s + w <= tokens.length && out.length < max; s += w) out.push(tokens.slice(s, s + w));
  return out;
}
