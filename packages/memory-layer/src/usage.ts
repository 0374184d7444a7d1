/**
 * Memory usage metrics (Lample et al. 2019 §4.5; docs/design.md §2.9), accumulated over an
 * evaluation pass from the post-softmax weights of every lookup.
 *
 *   readCounts[s]  how many times slot s was among a token's top-k (any head)
 *   weightMass[s]  Σ of the weights slot s received
 *   z = mass / Σ mass
 *   KL(z ‖ uniform) = log N + Σ_s z_s log z_s          (0 = perfectly even, log N = one slot)
 *   Gini(z) ∈ [0, 1]                                   (0 = even, → 1 = concentrated)
 *   slotsFor(p) = fewest slots whose mass sums to ≥ p  (p = 0.5, 0.9, 0.99)
 */
import { ShapeError, ValueError, checkInt } from '@mnemo/core';

export interface UsageReport {
  slots: number; // N
  lookups: number; // (token, head, j) reads counted
  usedFraction: number; // % of slots read at least once, as a fraction in [0, 1]
  klWeights: number; // KL(z_w ‖ uniform), nats
  klReads: number; // KL(z_u ‖ uniform), nats
  giniWeights: number;
  giniReads: number;
  slotsFor50: number; // slots holding 50% of the weight mass
  slotsFor90: number;
  slotsFor99: number;
}

/** Accumulates read counts and weight mass over many batches; O(N) memory, O(reads) per batch. */
export class UsageTracker {
  readonly readCounts: Float64Array; // [N]
  readonly weightMass: Float64Array; // [N]
  private lookups = 0;

  constructor(readonly slots: number) {
    checkInt('slots', slots, 1);
    this.readCounts = new Float64Array(slots);
    this.weightMass = new Float64Array(slots);
  }

  /** ids, weights: [T, H·k] flattened, the same length; weights post-softmax (or raw, ≥ 0 assumed). */
  add(ids: ArrayLike<number>, weights: ArrayLike<number>): void {
    if (ids.length !== weights.length) {
      throw new ShapeError('weights', `expected ${ids.length} values (one per id), got ${weights.length}`);
    }
    for (let i = 0; i < ids.length; i++) {
      const s = ids[i]!;
      if (s < 0) continue; // padding
      if (s >= this.slots || !Number.isInteger(s)) {
        throw new ValueError('ids', `element ${i} is ${s}; slot ids must be integers in [0, ${this.slots})`);
      }
      this.readCounts[s]! += 1;
      this.weightMass[s]! += Math.abs(weights[i]!);
      this.lookups++;
    }
  }

  reset(): void {
    this.readCounts.fill(0);
    this.weightMass.fill(0);
    this.lookups = 0;
  }

  report(): UsageReport {
    const w = massStats(this.weightMass);
    const u = massStats(this.readCounts);
    let used = 0;
    for (let s = 0; s < this.slots; s++) if (this.readCounts[s]! > 0) used++;
    return {
      slots: this.slots,
      lookups: this.lookups,
      usedFraction: used / this.slots,
      klWeights: w.kl,
      klReads: u.kl,
      giniWeights: w.gini,
      giniReads: u.gini,
      slotsFor50: w.slotsFor(0.5),
      slotsFor90: w.slotsFor(0.9),
      slotsFor99: w.slotsFor(0.99),
    };
  }
}

/** KL to uniform, Gini, and mass-coverage counts of a non-negative vector. */
export function massStats(mass: ArrayLike<number>): {
  kl: number;
  gini: number;
  slotsFor: (p: number) => number;
} {
  const n = mass.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += mass[i]!;
  const sorted = Float64Array.from(mass).sort().reverse(); // descending
  if (total <= 0) return { kl: 0, gini: 0, slotsFor: () => 0 };
  let kl = Math.log(n);
  for (let i = 0; i < n; i++) {
    const z = sorted[i]! / total;
    if (z > 0) kl += z * Math.log(z);
  }
  // Gini on ascending order: G = Σ_i (2i − n − 1) x_i / (n Σ x), i = 1..n
  let g = 0;
  for (let i = 0; i < n; i++) {
    const x = sorted[n - 1 - i]!; // ascending
    g += (2 * (i + 1) - n - 1) * x;
  }
  const gini = g / (n * total);
  const cum = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += sorted[i]!;
    cum[i] = acc / total;
  }
  const slotsFor = (p: number) => {
    // smallest m with cum[m-1] ≥ p (tolerate rounding at p = 1)
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! >= p - 1e-12) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  };
  return { kl: Math.max(0, kl), gini, slotsFor };
}
