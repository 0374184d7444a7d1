/**
 * Memory³ stage 2 (docs/design.md §4.7): continual training in which every 64-token chunk of a
 * training window reads the explicit memories of references retrieved by its own text.
 *
 *   references: written by the CURRENT model without gradient, rewritten every `refreshEvery` steps
 *   chunk c of row b: hits = retrieve(chunk tokens, 2·topK); drop references whose tokens overlap
 *                     the chunk > maxOverlap (token multiset); keep the best topK
 *   loss(ids, { external: chunked memories })   the memories are constants: gradients reach the
 *                     model through the queries reading them (and the writer at the next refresh)
 *   withGradient():   the same memories written again on the tape (writer-grad.ts), so the loss
 *                     also trains the writing side: the keys a question must match, the values
 *
 * Stage 1 (steps ≤ fromStep) trains without memory, else the model learns to ignore it.
 */
import { KnowledgeBase, type MemoryKV, type MemoryReader, TrainableMemories, defaultOptions } from '@mnemo/memory3';
import type { BpeTokenizer, LanguageModel } from '@mnemo/model';

export interface Memory3TrainOptions {
  /** the last step of stage 1; memory reading starts after it */
  fromStep: number;
  /** references read per chunk (5) */
  topK: number;
  /** rewrite the references with the current model every this many stage-2 steps */
  refreshEvery: number;
  /** a reference whose tokens overlap the chunk more than this is not read (0.9) */
  maxOverlap: number;
  /** tokens per chunk (64) */
  chunk: number;
  /** the embedding's residual stream (memory3's embedLayer, 0 = token embeddings) */
  embedLayer: number;
  /** tokens the writer keeps per block and KV head (memory3's `tokens`, default 8 as in the paper) */
  tokens?: number;
}

/** Fraction of the reference's tokens found in the chunk (multiset intersection / reference length). */
export function tokenOverlap(reference: ArrayLike<number>, chunk: ArrayLike<number>): number {
  if (reference.length === 0) return 0;
  const left = new Map<number, number>();
  for (let i = 0; i < chunk.length; i++) left.set(chunk[i]!, (left.get(chunk[i]!) ?? 0) + 1);
  let hit = 0;
  for (let i = 0; i < reference.length; i++) {
    const n = left.get(reference[i]!) ?? 0;
    if (n > 0) {
      hit++;
      left.set(reference[i]!, n - 1);
    }
  }
  return hit / reference.length;
}

/** The reference texts of a run and their memories, rewritten by the model as it trains. */
export class ReferenceMemory {
  private kb: KnowledgeBase | undefined;
  private reader: MemoryReader | undefined;
  private refTokens = new Map<number, number[]>(); // memory id → reference tokens
  private idOfText = new Map<string, number>(); // reference text → memory id
  /** memories read in the last batch / chunks that read at least one */
  lastRead = 0;
  lastFiltered = 0;
  /** the memory ids each row and chunk of the last batch read */
  lastTable: number[][][] = [];

  constructor(
    readonly model: LanguageModel,
    readonly tokenizer: BpeTokenizer,
    readonly texts: string[],
    readonly opts: Memory3TrainOptions,
  ) {}

  /** Write every reference with the current model (replacing the previous memories). */
  async refresh(): Promise<void> {
    this.dispose();
    const kb = KnowledgeBase.inMemory(this.model, this.tokenizer, {
      embedLayer: this.opts.embedLayer,
      ...(this.opts.tokens !== undefined && { tokens: this.opts.tokens }),
    });
    const ids = await kb.addTexts(this.texts);
    this.refTokens = new Map(ids.map((id) => [id, this.tokenizer.encode(kb.bank.get(id).text)]));
    this.idOfText = new Map(ids.map((id) => [kb.bank.get(id).text, id]));
    this.kb = kb;
    this.reader = kb.reader({ topK: 2 * this.opts.topK, every: this.opts.chunk, cacheSize: 4096 });
  }

  /**
   * Memories for the inputs of a batch `ids` [B, W] (the loss predicts ids[:, 1:] from ids[:, :-1]).
   * `include[b]`: reference texts row b reads in every chunk before the retrieved ones (still
   * overlap-filtered, still at most topK in all): a training curriculum's "oracle" hits.
   */
  external(ids: Int32Array, B: number, W: number, include?: string[][]): MemoryKV {
    if (!this.reader) throw new Error('ReferenceMemory.refresh() must run before external()');
    const { chunk, topK, maxOverlap } = this.opts;
    const T = W - 1;
    const table: number[][][] = [];
    this.lastRead = 0;
    this.lastFiltered = 0;
    for (let b = 0; b < B; b++) {
      const row: number[][] = [];
      for (let s = 0; s < T; s += chunk) {
        const inputs = Array.from(ids.subarray(b * W + s, b * W + Math.min(s + chunk, T)));
        const seen = ids.subarray(b * W + s, b * W + Math.min(s + chunk, T) + 1); // with the last target
        const kept: number[] = [];
        const forced = (include?.[b] ?? []).map((t) => {
          const id = this.idOfText.get(t);
          if (id === undefined) throw new Error(`ReferenceMemory.external: include[${b}] names a text that is not a reference: ${t}`);
          return id;
        });
        for (const id of [...forced, ...this.reader.retrieve(inputs).map((h) => h.id)]) {
          if (kept.length >= topK) break;
          if (kept.includes(id)) continue;
          if (tokenOverlap(this.refTokens.get(id)!, seen) > maxOverlap) this.lastFiltered++;
          else kept.push(id);
        }
        this.lastRead += kept.length;
        row.push(kept);
      }
      table.push(row);
    }
    this.lastTable = table;
    return this.reader.chunked(table, chunk);
  }

  /**
   * The last external()'s table, its memories written again WITH gradient (@mnemo/memory3's
   * TrainableMemories: same tokens kept, K/V on the tape). Call inside the loss closure and
   * dispose() after the step; `external` is undefined when no row read anything.
   */
  withGradient(): { external: MemoryKV | undefined; dispose(): void } {
    const ids = [...new Set(this.lastTable.flat(2))];
    if (ids.length === 0) return { external: undefined, dispose: () => {} };
    const at = new Map(ids.map((id, i) => [id, i]));
    const tm = new TrainableMemories(
      this.model,
      ids.map((id) => this.refTokens.get(id)!),
      defaultOptions(this.tokenizer, {
        embedLayer: this.opts.embedLayer,
        ...(this.opts.tokens !== undefined && { tokens: this.opts.tokens }),
      }),
    );
    const table = this.lastTable.map((row) => row.map((c) => c.map((id) => at.get(id)!)));
    return { external: tm.external(table, this.opts.chunk), dispose: () => tm.dispose() };
  }

  /** The reference text of a memory id. */
  textOf(id: number): string {
    if (!this.kb) throw new Error('ReferenceMemory.refresh() must run first');
    return this.kb.bank.get(id).text;
  }

  dispose(): void {
    this.reader?.dispose();
    this.reader = undefined;
    this.kb = undefined;
  }
}
