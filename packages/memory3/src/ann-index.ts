/**
 * The reference index (docs/design.md §4.5): an approximate nearest-neighbour graph (usearch HNSW,
 * cosine metric, f32) over the embedding of each stored memory, keyed by memory id.
 *
 *   search(q, k): the k ids whose embeddings have the highest cos(q, e), score = 1 − distance
 *
 * The file is written atomically (temp file, fsync, rename) and its crc32 is kept by the caller
 * (the bank's meta record); `load` refuses a file whose crc differs or that usearch cannot read.
 * The index is derived data: the bank rebuilds it from the store whenever it is in doubt.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ShapeError, tempPath } from '@mnemo/core';
import { createRequire } from 'node:module';
import type { Index } from 'usearch';
import type { MemoryHit } from './types';

// usearch's CommonJS build: its ESM build finds its prebuilt addon from the caller's stack and the
// working directory, and recurses without end from some (`node -e`, cwd outside the repo)
const { Index: UsearchIndex, MetricKind, ScalarKind } = createRequire(import.meta.url)('usearch') as typeof import('usearch');

export interface AnnOptions {
  /** HNSW edges per node (default 16) */
  connectivity?: number;
  /** candidate list while inserting (default 128) */
  expansionAdd?: number;
  /** candidate list while searching (default 64): raise for recall, lower for speed */
  expansionSearch?: number;
}

/** why `load` gave no index */
export type LoadFailure = 'missing' | 'corrupt';

export class AnnIndex {
  private index: Index;

  constructor(
    readonly dim: number,
    private readonly opts: AnnOptions = {},
  ) {
    this.index = this.fresh();
  }

  private fresh(): Index {
    return new UsearchIndex({
      dimensions: this.dim,
      metric: MetricKind.Cos,
      quantization: ScalarKind.F32,
      connectivity: this.opts.connectivity ?? 16,
      expansion_add: this.opts.expansionAdd ?? 128,
      expansion_search: this.opts.expansionSearch ?? 64,
      multi: false,
    });
  }

  get size(): number {
    return this.index.size();
  }

  /** embedding [dim] under id (replaces nothing: ids are never reused) */
  add(id: number, embedding: Float32Array): void {
    if (embedding.length !== this.dim) throw new ShapeError('embedding', `has ${embedding.length} dims, the index ${this.dim}`);
    this.index.add(BigInt(id), embedding, 1);
  }

  remove(id: number): void {
    if (this.contains(id)) this.index.remove(BigInt(id));
  }

  contains(id: number): boolean {
    return this.index.contains(BigInt(id)) as boolean;
  }

  /** the k nearest ids by cosine, best first */
  search(query: Float32Array, k: number): MemoryHit[] {
    if (query.length !== this.dim) throw new ShapeError('embedding', `query has ${query.length} dims, the index ${this.dim}`);
    if (k <= 0 || this.index.size() === 0) return [];
    const m = this.index.search(query, k, 1);
    const hits: MemoryHit[] = [];
    for (let i = 0; i < m.keys.length; i++) hits.push({ id: Number(m.keys[i]!), score: 1 - m.distances[i]! });
    return hits;
  }

  /** drop every entry */
  clear(): void {
    this.index = this.fresh();
  }

  /** Write the index to `file` atomically; its crc32 and byte length (for the caller's meta). */
  save(file: string): { crc: number; bytes: number } {
    const tmp = tempPath(file);
    try {
      this.index.save(tmp);
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      const bytes = readFileSync(tmp);
      renameSync(tmp, file);
      return { crc: crc32(bytes), bytes: bytes.length };
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Replace the contents with `file` when it exists, has the expected crc and usearch reads it;
   * else keep the index empty and say why.
   */
  load(file: string, expected: { crc: number; bytes: number } | null): LoadFailure | null {
    if (!existsSync(file)) return 'missing';
    const bytes = readFileSync(file);
    if (!expected || bytes.length !== expected.bytes || crc32(bytes) !== expected.crc) return 'corrupt';
    const next = this.fresh();
    try {
      next.load(file);
    } catch {
      return 'corrupt';
    }
    if (next.dimensions() !== this.dim) return 'corrupt';
    this.index = next;
    return null;
  }
}
