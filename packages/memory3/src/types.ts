/**
 * The contract between Memory³'s two halves (docs/design.md §4): the model side (writer, reader)
 * produces and consumes `ExplicitMemory`; the storage side (codec, store, index) keeps them.
 *
 *   one memory = the sparse K/V a reference chunk leaves in the memory-reading blocks:
 *   kv [L_mem, 2 (K, V), H_kv, tokens (8), d_h], keys after RoPE at their positions in the chunk
 */

/** the shape of one memory: [layers, 2, kvHeads, tokens, headDim] */
export interface MemoryShape {
  /** memory-reading blocks (L_mem) */
  layers: number;
  /** KV heads (H_kv) */
  kvHeads: number;
  /** tokens kept per block and head (8) */
  tokens: number;
  /** head dimension (d_h) */
  headDim: number;
}

/** One explicit memory, decoded: ready to prepend to attention. */
export interface ExplicitMemory {
  shape: MemoryShape;
  /** [L_mem, 2, H_kv, tokens, d_h] float32; K after RoPE */
  kv: Float32Array;
  /** [L_mem, H_kv, tokens]: the chunk position of each kept token (inspection, tests) */
  positions: Int32Array;
}

/** What the writer produces for one reference text. */
export interface MemoryEntry {
  /** the reference text (≤ 128 tokens after the prefix) */
  text: string;
  /** its token count (prefix excluded) */
  tokens: number;
  /** the retrieval embedding computed by the model (unit norm) [embedDim] */
  embedding: Float32Array;
  memory: ExplicitMemory;
}

/** A stored memory, as the store returns it. */
export interface StoredMemory extends MemoryEntry {
  id: number;
  /** ms since the epoch */
  createdAt: number;
}

/** A stored memory without its tensors (listing). */
export interface MemoryInfo {
  id: number;
  text: string;
  tokens: number;
  createdAt: number;
  /** encoded bytes on disk for the K/V */
  bytes: number;
}
