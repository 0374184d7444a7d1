/**
 * The deferred-mode queue every value table shares: backward() pushes a copy of its batch,
 * step() takes all queued batches as ONE batch — bags concatenated in queue order, each padded
 * to the largest K with id −1 (weight 0) — and runs one optimizer update over it.
 */

export interface QueuedBatch {
  ids: Int32Array; // [ΣB, K] (−1 padding)
  weights: Float32Array; // [ΣB, K]
  gOut: Float32Array; // [ΣB, dv]
  bagSize: number; // K = the largest queued bag size
  batch: number; // ΣB
}

interface Pending {
  ids: Int32Array;
  weights: Float32Array;
  gOut: Float32Array;
  bagSize: number;
}

export class GradientQueue {
  private pending: Pending[] = [];

  constructor(private readonly dim: number) {}

  /** batches queued */
  get length(): number {
    return this.pending.length;
  }

  /** Queue copies of a validated batch (an empty one is dropped: it would update nothing). */
  push(ids: Int32Array, weights: Float32Array, gOut: Float32Array, bagSize: number): void {
    if (ids.length > 0) this.pending.push({ ids: ids.slice(), weights: weights.slice(), gOut: gOut.slice(), bagSize });
  }

  clear(): void {
    this.pending = [];
  }

  /** The queued batches as one (see the file header) and an empty queue; null when nothing is queued. */
  take(): QueuedBatch | null {
    if (this.pending.length === 0) return null;
    const dim = this.dim;
    const K = Math.max(...this.pending.map((p) => p.bagSize));
    const B = this.pending.reduce((s, p) => s + p.gOut.length / dim, 0);
    const ids = new Int32Array(B * K).fill(-1); // [ΣB, K]
    const weights = new Float32Array(B * K);
    const gOut = new Float32Array(B * dim); // [ΣB, dv]
    let b0 = 0;
    for (const p of this.pending) {
      const pb = p.gOut.length / dim;
      for (let b = 0; b < pb; b++) {
        ids.set(p.ids.subarray(b * p.bagSize, (b + 1) * p.bagSize), (b0 + b) * K);
        weights.set(p.weights.subarray(b * p.bagSize, (b + 1) * p.bagSize), (b0 + b) * K);
      }
      gOut.set(p.gOut, b0 * dim);
      b0 += pb;
    }
    this.pending = [];
    return { ids, weights, gOut, bagSize: K, batch: B };
  }
}
