/**
 * Seeded randomness of every package: `mulberry32` (a 32-bit state generator, fast and good
 * enough for init and sampling) and `subSeed`, which derives independent integer seeds for each
 * initialiser from one config seed.
 */

/** Uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A non-negative 31-bit seed for the initialiser called `tag`, derived from `seed` (FNV-1a). */
export function subSeed(seed: number, tag: string): number {
  let h = 0x811c9dc5;
  const s = `${seed}:${tag}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & 0x7fffffff;
}
