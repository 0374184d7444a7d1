/**
 * Deterministic memories for the store's tests and bench: entry `seed` always has the same text,
 * embedding (unit norm) and K/V, so a test (or a crashed child process's parent) can check any
 * stored memory against what was written.
 */
import { mulberry32 } from '@mnemo/core';
import { memoryLength } from './in-memory-bank';
import { gaussian } from './pq-synthetic';
import type { MemoryEntry, MemoryShape } from './types';

export function fixtureEntry(seed: number, shape: MemoryShape, embedDim: number): MemoryEntry {
  const rng = mulberry32(seed * 2654435761);
  const embedding = Float32Array.from({ length: embedDim }, () => gaussian(rng));
  const norm = Math.hypot(...embedding);
  for (let i = 0; i < embedDim; i++) embedding[i] = embedding[i]! / norm;
  const kv = Float32Array.from({ length: memoryLength(shape) }, () => gaussian(rng));
  const positions = Int32Array.from({ length: shape.layers * shape.kvHeads * shape.tokens }, () => Math.floor(rng() * 128));
  return {
    text: `reference ${seed}: ${'lorem ipsum '.repeat(seed % 5)}`,
    tokens: 16 + (seed % 100),
    embedding,
    memory: { shape, kv, positions },
  };
}
