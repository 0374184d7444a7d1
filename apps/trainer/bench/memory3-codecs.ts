/**
 * The recall cost of compressing Memory³ memories (bench:memory3's second table): the facts'
 * references written by the trained model with the kept-token count of training and the paper's
 * 8, stored f32 / bf16 / PQ / OPQ (codebooks trained on other references' memories), then read
 * back as the fact's own reference alone (retrieval left out, so only the storage differs).
 *
 *   bytes/ref (kv) = L_mem × H_kv × M × 2 × d_h × bytes      (PQ: × (m_K + m_V) / (2 d_h) per vector)
 *   full KV        = layers × H × 128 × 2 × d_h × 2           (every token of a 128-token chunk, all blocks and heads, bf16:
 *                                                            the paper's reference point, as memory3-compression.md counts it)
 *   rel. error     = Σ‖kv − decode(encode(kv))‖² / Σ‖kv‖²      over the read slots of the evaluated references
 */
import { type CodecKind, type ExplicitMemory, KnowledgeBase, type MemoryReader, makeCodec, trainKvQuantizer } from '@mnemo/memory3';
import type { BpeTokenizer, LanguageModel } from '@mnemo/model';

export interface CodecRecallRow {
  [k: string]: string | number;
  'kept tokens': number;
  codec: string;
  'kv bytes/ref': number;
  '× vs full KV': number;
  'rel. error': number;
  'recall, own reference %': number;
}

export interface CodecRecallOptions {
  /** tokens kept per block and KV head in training (the first variant), then the paper's 8 */
  keep: number;
  /** the evaluated references (one per question, in order) */
  references: string[];
  /** other references, for training the quantisers */
  training: string[];
  /** recall of the questions, each reading only its own reference (ids[i]) through `reader` */
  recallOwn: (reader: MemoryReader, ids: number[]) => number;
  log: (s: string) => void;
}

/** Σ‖a − b‖² / Σ‖a‖² over the slots a reader reads (positions ≥ 0; zero padding left out). */
function relError(a: ExplicitMemory[], b: ExplicitMemory[]): number {
  let num = 0;
  let den = 0;
  a.forEach((m, i) => {
    const { layers: L, kvHeads: Hk, tokens: M, headDim: dh } = m.shape;
    const d = b[i]!.kv;
    for (let l = 0; l < L; l++)
      for (let kind = 0; kind < 2; kind++)
        for (let g = 0; g < Hk; g++)
          for (let s = 0; s < M; s++) {
            if (m.positions[(l * Hk + g) * M + s]! < 0) continue;
            const at = (((l * 2 + kind) * Hk + g) * M + s) * dh;
            for (let j = at; j < at + dh; j++) {
              num += (m.kv[j]! - d[j]!) ** 2;
              den += m.kv[j]! ** 2;
            }
          }
  });
  return den === 0 ? 0 : num / den;
}

export async function codecRecall(model: LanguageModel, tok: BpeTokenizer, o: CodecRecallOptions): Promise<CodecRecallRow[]> {
  const { layers, heads, dim } = model.config;
  const dh = dim / heads;
  const full = layers * heads * 128 * 2 * dh * 2;
  const rows: CodecRecallRow[] = [];
  for (const tokens of [...new Set([o.keep, 8])]) {
    const base = KnowledgeBase.inMemory(model, tok, { tokens });
    const entries = base.write(o.references);
    const sample = base.write(o.training).map((e) => e.memory);
    const subspaces = Math.max(1, Math.floor(dh / 4)); // 4 dims per byte: 8× below bf16
    const variants: [string, CodecKind, Parameters<typeof makeCodec>[1]][] = [
      ['f32', 'f32', null],
      ['bf16', 'bf16', null],
      [`PQ m=${subspaces}×8 bit`, 'pq', trainKvQuantizer(sample, { subspaces, seed: 1 })],
      [`OPQ m=${subspaces}×8 bit`, 'pq', trainKvQuantizer(sample, { subspaces, seed: 1, rotation: true })],
    ];
    for (const [name, kind, quantizer] of variants) {
      const codec = makeCodec(kind, quantizer);
      const shape = entries[0]!.memory.shape;
      const decoded = entries.map((e) => ({
        ...e,
        memory: { ...e.memory, kv: codec.decode(codec.encode(e.memory.kv, shape), shape) },
      }));
      const kb = KnowledgeBase.inMemory(model, tok, { tokens });
      const ids = await kb.bank.add(decoded);
      const reader = kb.reader();
      const bytes = codec.bytes(shape);
      const row: CodecRecallRow = {
        'kept tokens': tokens,
        codec: name,
        'kv bytes/ref': bytes,
        '× vs full KV': Number((full / bytes).toFixed(1)),
        'rel. error': Number(
          relError(
            entries.map((e) => e.memory),
            decoded.map((e) => e.memory),
          ).toExponential(2),
        ),
        'recall, own reference %': Number((100 * o.recallOwn(reader, ids)).toFixed(1)),
      };
      reader.dispose();
      o.log(`codecs: ${JSON.stringify(row)}`);
      rows.push(row);
    }
  }
  return rows;
}
