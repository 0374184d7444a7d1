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
 * Memory³ explicit memories (docs/design.md §4): sparse K/V of retrieved reference chunks,
 * prepended to the keys/values of the memory layers (the first half of the blocks) for each KV
 * head. Plug in at the attention's `kv` hook (attention.ts, AttnContext.kv): concatenate
 * `[external | own]` along the key axis and widen the mask; the external keys already carry
 * their RoPE positions (one shared interval before the context).
 * Not wired yet: LanguageModel takes no ExternalKV today.
 */
export interface ExternalKV {
  /** blocks whose attention reads external memories */
  readonly blocks: number[];
  /** memories for batch row `row` at block `block`: k, v [Hkv, M, dh] after RoPE; undefined = none */
  get(block: number, row: number): { k: tf.Tensor3D; v: tf.Tensor3D } | undefined;
}
