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

/** A retrieval hit: a memory id and its cosine similarity to the query embedding. */
export interface MemoryHit {
  id: number;
  score: number;
}

/**
 * Where memories live: a store of records plus a nearest-neighbour index over their embeddings.
 * The reader calls `search` and `get` synchronously inside generation; writes are async and
 * durable once their promise resolves. `InMemoryBank` is the RAM implementation (tests, small
 * stores); the on-disk default is built on lmdb + usearch; a networked store implements the same.
 */
export interface MemoryBank {
  readonly shape: MemoryShape;
  readonly embedDim: number;
  /** memories stored */
  readonly size: number;
  /** store entries; resolves with their ids once they are durable */
  add(entries: MemoryEntry[]): Promise<number[]>;
  /** the k nearest memories by cosine similarity, best first (fewer when the bank holds fewer) */
  search(embedding: Float32Array, k: number): MemoryHit[];
  /** one memory, decoded; throws a MnemoError naming the id when it is missing or corrupt */
  get(id: number): StoredMemory;
  /** true when it existed */
  delete(id: number): Promise<boolean>;
  list(opts?: { offset?: number; limit?: number }): MemoryInfo[];
  /** one memory's listing entry without decoding it; undefined when missing (optional: get() answers too) */
  info?(id: number): MemoryInfo | undefined;
  close(): Promise<void>;
}
