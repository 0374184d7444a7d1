/**
 * Extension points for memory designs that do not fit the FFN slot (interfaces only; the
 * implementations belong to @mnemo/ultramem and @mnemo/memory3).
 *
 * UltraMem skip-layer wiring (docs/design.md §3): a memory reads the normalised FFN input of
 * block `readBlock` and its output is added to the residual after block `writeBlock` > readBlock,
 * so its lookup overlaps the dense compute of the blocks in between. Memories of a registry kind
 * are declared in `config.skips` ({ read, write, kind }): built on the shared pool, counted, and
 * saved/loaded with the block memories. `SkipLayerMemory` is the lower-level hook for anything
 * else (pass `skips` to the constructor; their variables join the model's under
 * `skips.<i>.<name>`, after the config's; checkpoints do not rebuild them).
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface SkipLayerMemory {
  readonly readBlock: number;
  readonly writeBlock: number;
  /** x [N, D]: block `readBlock`'s normalised FFN input (tokens flattened) → [N, D] */
  apply(x: tf.Tensor2D, opts: { training: boolean }): tf.Tensor2D;
  /** an auxiliary loss to add to the LM loss (UltraMem's Tucker-core penalty), if any */
  aux?(): tf.Scalar | undefined;
  variables(): Record<string, tf.Variable>;
  dispose(): void;
}

/**
 * Memory³ explicit memories (docs/design.md §4.6): sparse K/V of retrieved reference chunks,
 * prepended to the keys/values of the memory-reading blocks for each KV head. The attention's
 * `kv` hook concatenates `[external | own]` along the key axis and widens the mask.
 *
 * Parallel position encoding: the external keys already carry their RoPE positions inside their
 * reference ([0, contextStart), all memories the same interval); the context then starts at
 * position `contextStart`. Pass it to `forward`/`loss` (`{ external }`) or to the cached calls
 * (`prefill`, `decodeBatch`): the KV cache holds the context's K/V only, so memories can be
 * swapped between calls (every 64 tokens).
 *
 *   forward / loss: query t of row b reads get(block, b, ⌊t / chunk⌋) (block-diagonal over chunks)
 *   cached calls:   every new query of row b reads get(block, b, 0) (the current memories)
 */
export interface ExternalKV {
  /** blocks whose attention reads external memories */
  readonly blocks: number[];
  /** the context's first position (default 0, at most EXTERNAL_POSITIONS = 128); fixed for a cache's life */
  readonly contextStart?: number;
  /** forward / loss: tokens per chunk (default: the whole sequence is chunk 0) */
  readonly chunk?: number;
  /** memories of batch row `row`, chunk `chunk` at block `block`: k, v [Hkv, M, dh] after RoPE; undefined = none */
  get(block: number, row: number, chunk: number): { k: tf.Tensor3D; v: tf.Tensor3D } | undefined;
}

/** Positions reserved before the context for external memories (RoPE rows beyond maxSeqLen). */
export const EXTERNAL_POSITIONS = 128;
