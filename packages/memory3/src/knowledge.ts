/**
 * A knowledge base: texts in, explicit memories out. `addTexts` splits each text into references
 * of at most 127 tokens (the prefix makes 128 positions), writes their memories with the model
 * (writer.ts) and stores them in any MemoryBank (RAM, lmdb, networked); `reader()` reads them
 * back during generation.
 */
import { ValueError } from '@mnemo/core';
import { type Memory3Options, type MemoryHost, REFERENCE_POSITIONS, memoryShapeOf } from './host';
import { InMemoryBank } from './in-memory-bank';
import { MemoryReader, type ReaderOptions } from './reader';
import type { MemoryBank, MemoryEntry, MemoryInfo, MemoryShape } from './types';
import { writeEntry } from './writer';

/** What the knowledge base needs of a tokenizer (BpeTokenizer has it). */
export interface ReferenceCodec {
  readonly bosId: number;
  encode(text: string): number[];
  decode(ids: number[]): string;
}

/** The bank shape and embedding width a model writes: create the bank with these. */
export function bankShapeFor(host: MemoryHost, opts: Memory3Options): { shape: MemoryShape; embedDim: number } {
  return { shape: memoryShapeOf(host, opts), embedDim: host.config.dim };
}

/** Memory³ options for a model and tokenizer: the tokenizer's BOS is the "Reference:" prefix. */
export function defaultOptions(tokenizer: ReferenceCodec, over: Partial<Memory3Options> = {}): Memory3Options {
  return { prefixId: tokenizer.bosId, ...over };
}

/** Split token ids into references of at most `max` tokens (ends kept together). */
export function splitReferences(ids: number[], max: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < ids.length; i += max) out.push(ids.slice(i, i + max));
  return out;
}

export class KnowledgeBase {
  readonly options: Memory3Options;

  constructor(
    readonly host: MemoryHost,
    readonly tokenizer: ReferenceCodec,
    readonly bank: MemoryBank,
    opts: Partial<Memory3Options> = {},
  ) {
    this.options = defaultOptions(tokenizer, opts);
    const want = bankShapeFor(host, this.options);
    const s = bank.shape;
    if (
      JSON.stringify([s.layers, s.kvHeads, s.tokens, s.headDim]) !==
      JSON.stringify([want.shape.layers, want.shape.kvHeads, want.shape.tokens, want.shape.headDim])
    )
      throw new ValueError(
        'bank.shape',
        `${JSON.stringify(s)} differs from what the model writes, ${JSON.stringify(want.shape)}: create the bank with bankShapeFor(model, options)`,
      );
  }

  /** A knowledge base on a fresh InMemoryBank (tests, small stores). */
  static inMemory(host: MemoryHost, tokenizer: ReferenceCodec, opts: Partial<Memory3Options> = {}): KnowledgeBase {
    const o = defaultOptions(tokenizer, opts);
    const { shape, embedDim } = bankShapeFor(host, o);
    return new KnowledgeBase(host, tokenizer, new InMemoryBank(shape, embedDim), o);
  }

  /** The entries `texts` make (each split into ≤ 127-token references), without storing them. */
  write(texts: string[]): MemoryEntry[] {
    const max = Math.min(REFERENCE_POSITIONS, this.host.config.maxSeqLen) - 1;
    const entries: MemoryEntry[] = [];
    texts.forEach((text, i) => {
      const ids = this.tokenizer.encode(text);
      if (ids.length === 0) throw new ValueError(`texts.${i}`, 'encodes to no tokens; give non-empty text');
      const parts = splitReferences(ids, max);
      for (const p of parts) entries.push(writeEntry(this.host, parts.length === 1 ? text : this.tokenizer.decode(p), p, this.options));
    });
    return entries;
  }

  /** Write and store `texts`; resolves with the ids of their references, in order, once durable. */
  async addTexts(texts: string[]): Promise<number[]> {
    return this.bank.add(this.write(texts));
  }

  delete(id: number): Promise<boolean> {
    return this.bank.delete(id);
  }

  list(opts?: { offset?: number; limit?: number }): MemoryInfo[] {
    return this.bank.list(opts);
  }

  get size(): number {
    return this.bank.size;
  }

  /** A reader over this knowledge base (retrieval every 64 tokens, 5 references). */
  reader(opts: Partial<ReaderOptions> = {}): MemoryReader {
    return new MemoryReader(this.host, this.bank, { ...this.options, ...opts });
  }
}
