/**
 * A MemoryBank held in RAM with exact cosine search: for tests and small knowledge bases. Nothing
 * survives the process; the on-disk bank has the same contract.
 */
import { ShapeError, ValueError } from '@mnemo/core';
import type { MemoryBank, MemoryEntry, MemoryHit, MemoryInfo, MemoryShape, StoredMemory } from './types';

export function memoryLength(s: MemoryShape): number {
  return s.layers * 2 * s.kvHeads * s.tokens * s.headDim;
}

/** Refuses an entry whose tensors or embedding do not have the bank's shape. */
export function checkEntry(entry: MemoryEntry, shape: MemoryShape, embedDim: number): void {
  const m = entry.memory;
  const same = (['layers', 'kvHeads', 'tokens', 'headDim'] as const).every((k) => m.shape[k] === shape[k]);
  if (!same)
    throw new ShapeError('memory.shape', `memory shape ${JSON.stringify(m.shape)} differs from the bank's ${JSON.stringify(shape)}`);
  if (m.kv.length !== memoryLength(shape)) throw new ShapeError('memory.kv', `has ${m.kv.length} values, expected ${memoryLength(shape)}`);
  if (m.positions.length !== shape.layers * shape.kvHeads * shape.tokens)
    throw new ShapeError('memory.positions', `has ${m.positions.length} values, expected ${shape.layers * shape.kvHeads * shape.tokens}`);
  if (entry.embedding.length !== embedDim) throw new ShapeError('embedding', `has ${entry.embedding.length} dims, the bank ${embedDim}`);
}

export class InMemoryBank implements MemoryBank {
  private readonly records = new Map<number, StoredMemory>();
  private nextId = 1;

  constructor(
    readonly shape: MemoryShape,
    readonly embedDim: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  async add(entries: MemoryEntry[]): Promise<number[]> {
    for (const e of entries) checkEntry(e, this.shape, this.embedDim);
    return entries.map((e) => {
      const id = this.nextId++;
      this.records.set(id, { ...e, id, createdAt: Date.now() });
      return id;
    });
  }

  search(embedding: Float32Array, k: number): MemoryHit[] {
    if (embedding.length !== this.embedDim)
      throw new ShapeError('embedding', `query has ${embedding.length} dims, the bank ${this.embedDim}`);
    const hits: MemoryHit[] = [];
    for (const r of this.records.values()) hits.push({ id: r.id, score: cosine(embedding, r.embedding) });
    return hits.sort((a, b) => b.score - a.score || a.id - b.id).slice(0, k);
  }

  get(id: number): StoredMemory {
    const r = this.records.get(id);
    if (!r) throw new ValueError('id', `memory ${id} is not in the bank`);
    return r;
  }

  async delete(id: number): Promise<boolean> {
    return this.records.delete(id);
  }

  list(opts: { offset?: number; limit?: number } = {}): MemoryInfo[] {
    const all = [...this.records.values()].sort((a, b) => a.id - b.id);
    const from = opts.offset ?? 0;
    return all.slice(from, from + (opts.limit ?? all.length)).map((r) => ({
      id: r.id,
      text: r.text,
      tokens: r.tokens,
      createdAt: r.createdAt,
      bytes: r.memory.kv.length * 4,
    }));
  }

  info(id: number): MemoryInfo | undefined {
    const r = this.records.get(id);
    return r && { id: r.id, text: r.text, tokens: r.tokens, createdAt: r.createdAt, bytes: r.memory.kv.length * 4 };
  }

  async close(): Promise<void> {
    this.records.clear();
  }
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
