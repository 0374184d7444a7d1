/**
 * Seeded randomness: `mulberry32` (a 32-bit state generator, fast and good enough for sampling)
 * and `subSeed`, which derives independent integer seeds for each initialiser from one config seed.
 */

/** The seeded RNG used everywhere (from @mnemo/kernels): uniform floats in [0, 1). */
export { mulberry32 } from '@mnemo/kernels';

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
