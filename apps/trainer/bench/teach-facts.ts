/** The new facts the teach benches teach: generateFacts with its own seed, entities not among the training facts. */
import { type Fact, generateFacts } from '../src/index';

export const NEW_SEED = 9137;

/** The first `n` new facts (the same prefix whatever `n`: facts are drawn in order). */
export function newFacts(training: readonly Fact[], n: number): Fact[] {
  const known = new Set(training.map((f) => f.entity));
  const fresh = generateFacts({ count: n * 2 + 8, seed: NEW_SEED }).facts.filter((f) => !known.has(f.entity));
  if (fresh.length < n) throw new Error(`only ${fresh.length} new facts for ${n}`);
  return fresh.slice(0, n);
}
