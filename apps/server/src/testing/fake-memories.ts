/**
 * A stand-in knowledge base for the HTTP tests (no model): texts are split into references of at
 * most `maxReferenceTokens` bytes; a 64-token chunk "reads" the (at most 5) references sharing the
 * most words with it. Stores resolve on a later tick, like a durable write.
 */
import type { EngineMemories, ReferenceInfo, WrittenReferences } from '../engine';

interface FakeWritten extends WrittenReferences {
  texts: string[];
}

export class FakeMemories implements EngineMemories {
  readonly maxReferenceTokens: number;
  private readonly refs = new Map<number, ReferenceInfo>();
  private nextId = 1;
  writes = 0;

  constructor(opts: { maxReferenceTokens?: number } = {}) {
    this.maxReferenceTokens = opts.maxReferenceTokens ?? 128;
  }

  get size(): number {
    return this.refs.size;
  }

  write(text: string): FakeWritten {
    this.writes++;
    const bytes = new TextEncoder().encode(text);
    const texts: string[] = [];
    for (let i = 0; i < bytes.length; i += this.maxReferenceTokens) {
      texts.push(new TextDecoder().decode(bytes.slice(i, i + this.maxReferenceTokens)));
    }
    return { count: texts.length, texts };
  }

  async store(written: WrittenReferences): Promise<ReferenceInfo[]> {
    await new Promise((r) => setImmediate(r));
    return (written as FakeWritten).texts.map((text) => {
      const info = { id: this.nextId++, text, tokens: new TextEncoder().encode(text).length, createdAt: Date.now(), bytes: 1024 };
      this.refs.set(info.id, info);
      return info;
    });
  }

  list(offset: number, limit: number): ReferenceInfo[] {
    return [...this.refs.values()].slice(offset, offset + limit);
  }

  get(id: number): ReferenceInfo | undefined {
    return this.refs.get(id);
  }

  async delete(id: number): Promise<boolean> {
    await new Promise((r) => setImmediate(r));
    return this.refs.delete(id);
  }

  references(tokens: number[]): { start: number; end: number; ids: number[] }[] {
    const out = [];
    for (let start = 0; start < tokens.length; start += 64) {
      const end = Math.min(tokens.length, start + 64);
      out.push({ start, end, ids: this.retrieve(tokens.slice(start, end)) });
    }
    return out;
  }

  /** the references a chunk reads: most shared words first, at most 5 */
  retrieve(chunk: number[]): number[] {
    const words = new Set(words_(new TextDecoder().decode(new Uint8Array(chunk.filter((t) => t < 256)))));
    return [...this.refs.values()]
      .map((r) => ({ id: r.id, n: words_(r.text).filter((w) => words.has(w)).length }))
      .filter((h) => h.n > 0)
      .sort((a, b) => b.n - a.n || a.id - b.id)
      .slice(0, 5)
      .map((h) => h.id);
  }
}

function words_(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]{3,}/g) ?? [];
}
