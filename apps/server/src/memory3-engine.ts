/**
 * Memory3Engine: a ModelEngine whose completions read a Memory³ knowledge base (docs/design.md
 * §4.6). Every 64 tokens a sequence drops its memories and retrieves new ones: a prompt chunk by
 * its own text, a generated chunk by the 64 tokens before it. The memories' K/V are prepended in
 * the memory-reading blocks (parallel position encoding: the context starts at position 128) and
 * are never stored in the KV cache, so swapping them leaves the cache correct.
 *
 * Each sequence holds its own copy of its current memories' tensors (a few KB), so a reference
 * deleted while a completion reads it never breaks that completion; later chunks cannot find it.
 */
import type { KVCache, LanguageModel, TextCodec } from '@mnemo/model';
import { type KnowledgeBase, type MemoryEntry, type MemoryReader, type MemorySession, REFERENCE_POSITIONS } from '@mnemo/memory3';
import * as tf from '@tensorflow/tfjs-core';
import type { EngineCache, EngineMemories, ReferenceInfo, WrittenReferences } from './engine';
import { ModelEngine } from './model-engine';

/** tokens per chunk: memories are retrieved again at every multiple of it */
const CHUNK = 64;

type BlockKV = { k: tf.Tensor3D; v: tf.Tensor3D } | undefined;

class Memory3Cache implements EngineCache {
  /** tokens fed so far (the next retrieval reads the last 64) */
  readonly fed: number[] = [];
  /** per memory block, this sequence's current memories (kept tensors, owned here) */
  current: BlockKV[] = [];

  constructor(
    readonly kv: KVCache,
    readonly session: MemorySession,
  ) {}

  get length(): number {
    return this.kv.length;
  }

  get references(): readonly number[] {
    return this.session.references;
  }

  /** Retrieve by `span` and keep copies of the memories' tensors for each memory block. */
  refresh(blocks: number[], span: number[]): void {
    const ext = this.session.refresh(span);
    const next = blocks.map((b) =>
      tf.tidy(() => {
        const t = ext.get(b, 0, 0);
        return t ? { k: tf.clone(t.k), v: tf.clone(t.v) } : undefined; // concat results are freed, cache tensors untouched
      }),
    );
    this.release();
    this.current = next;
  }

  release(): void {
    for (const t of this.current) if (t) tf.dispose([t.k, t.v]);
    this.current = [];
  }

  dispose(): void {
    this.release();
    this.kv.dispose();
  }
}

interface Written extends WrittenReferences {
  entries: MemoryEntry[];
}

export class Memory3Engine extends ModelEngine {
  readonly memories: EngineMemories;
  readonly reader: MemoryReader;

  constructor(
    model: LanguageModel,
    tokenizer: TextCodec,
    id: string,
    readonly knowledge: KnowledgeBase,
  ) {
    super(model, tokenizer, id);
    this.reader = knowledge.reader();
    this.memories = new KnowledgeMemories(knowledge, this.reader, Math.min(REFERENCE_POSITIONS, model.config.maxSeqLen) - 1);
  }

  override newCache(): EngineCache {
    return new Memory3Cache(this.model.newCache(), this.reader.session());
  }

  /** Prompt tokens, fed chunk by chunk: each chunk retrieves by its own text before it is fed. */
  override prefill(tokens: number[], cache: EngineCache): Float32Array {
    const c = cache as Memory3Cache;
    let logits: Float32Array | undefined;
    for (let i = 0; i < tokens.length; ) {
      const pos = c.length;
      const seg = tokens.slice(i, i + (CHUNK - (pos % CHUNK))); // up to the next chunk boundary
      if (pos % CHUNK === 0) c.refresh(this.reader.options.blocks, seg);
      logits = this.model.prefill(seg, c.kv, { external: this.external([c]) });
      c.fed.push(...seg);
      i += seg.length;
    }
    return logits ?? super.prefill(tokens, c.kv); // empty: the model refuses it by name
  }

  /** One token per sequence; a sequence starting a new chunk first retrieves by the 64 tokens before. */
  override decodeBatch(tokens: number[], caches: EngineCache[]): Float32Array[] {
    const cs = caches as Memory3Cache[];
    for (const c of cs) if (c.length > 0 && c.length % CHUNK === 0) c.refresh(this.reader.options.blocks, c.fed.slice(-CHUNK));
    const out = this.model.decodeBatch(
      tokens,
      cs.map((c) => c.kv),
      { external: this.external(cs) },
    );
    tokens.forEach((t, b) => cs[b]!.fed.push(t));
    return out;
  }

  /** free the model and the decoded memories, then close the knowledge base's store */
  override async dispose(): Promise<void> {
    this.reader.dispose();
    super.dispose();
    await this.knowledge.bank.close();
  }

  /** The rows' current memories as the model's ExternalKV (row b: caches[b]'s). */
  private external(caches: Memory3Cache[]) {
    const blocks = this.reader.options.blocks;
    return {
      blocks,
      contextStart: REFERENCE_POSITIONS,
      get: (block: number, row: number) => caches[row]?.current[blocks.indexOf(block)],
    };
  }
}

/** The server's view of a knowledge base (EngineMemories). */
class KnowledgeMemories implements EngineMemories {
  constructor(
    private readonly kb: KnowledgeBase,
    private readonly reader: MemoryReader,
    readonly maxReferenceTokens: number,
  ) {}

  get size(): number {
    return this.kb.size;
  }

  write(text: string): Written {
    const entries = this.kb.write([text]);
    return { count: entries.length, entries };
  }

  async store(written: WrittenReferences): Promise<ReferenceInfo[]> {
    const { entries } = written as Written;
    const ids = await this.kb.bank.add(entries);
    return ids.map((id, i) => this.get(id) ?? { id, text: entries[i]!.text, tokens: entries[i]!.tokens, createdAt: Date.now(), bytes: 0 });
  }

  list(offset: number, limit: number): ReferenceInfo[] {
    return this.kb.list({ offset, limit });
  }

  get(id: number): ReferenceInfo | undefined {
    const bank = this.kb.bank;
    if (bank.info) return bank.info(id);
    try {
      const m = bank.get(id);
      return { id, text: m.text, tokens: m.tokens, createdAt: m.createdAt, bytes: m.memory.kv.byteLength };
    } catch {
      return undefined;
    }
  }

  async delete(id: number): Promise<boolean> {
    const existed = await this.kb.delete(id);
    this.reader.evict(id); // sequences reading it keep their own copies
    return existed;
  }

  references(tokens: number[]): { start: number; end: number; ids: number[] }[] {
    const out = [];
    for (let start = 0; start < tokens.length; start += CHUNK) {
      const end = Math.min(tokens.length, start + CHUNK);
      out.push({ start, end, ids: this.reader.retrieve(tokens.slice(start, end)).map((h) => h.id) });
    }
    return out;
  }
}
