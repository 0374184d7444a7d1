/**
 * Analytic parameter and FLOP counts of a ModelConfig (no model is built).
 *
 * denseParams: every tensor the model's dense optimizer trains EXCEPT the memories' own tensors:
 *   token embedding, attention, norms, dense/MoE FFNs (all experts), the untied head.
 * memoryParams: the shared value pool N·dv, plus each memory's tensors (block FFN slots and
 *   skip-layer sites; for product-key layers: Wq, bq, sub-keys H·n·dk; Memory+ W1, b1, W2, b2, or
 *   PKM's Wo when dv ≠ D). So Σ sizes of trainableVariables() = denseParams + memoryParams − N·dv.
 * flopsPerToken: forward, 2 FLOPs per multiply-add, matmuls only (norms, RoPE, softmax and
 *   activations are left out); attention scores and the weighted sum at a context of
 *   maxSeqLen/2; MoE counts the router and the 2 ACTIVE experts; memories count what their kind's
 *   registry entry says (memoryLayerFlops for product keys); the LM head counts, the embedding
 *   lookup does not. Per-kind counts live in the registry (ffn-kinds.ts).
 */
import type { ModelConfig } from './config';
import { FFN_REGISTRY, isMemoryKind, memoryKind, poolShapeOf } from './ffn-kinds';

export interface ModelCounts {
  denseParams: number;
  memoryParams: number;
  flopsPerToken: number;
  /** of denseParams: the token embedding (and the untied head) */
  embeddingParams: number;
  /** of denseParams: the parameters one token actually uses in MoE blocks (router + 2 experts) */
  activeDenseParams: number;
}

export function modelCounts(c: ModelConfig): ModelCounts {
  const { dim: D, vocabSize: V, heads: H, kvHeads: Hk } = c;
  const dh = D / H;
  const embedding = V * D + (c.tieEmbeddings ? 0 : D * V);
  const attnParams = D * (H + 2 * Hk) * dh + H * dh * D;
  const ctx = c.maxSeqLen / 2;
  const attnFlops = 2 * attnParams + 2 * 2 * H * dh * ctx; // projections + (q·k, p·v)
  let dense = embedding + D; // + final norm
  let active = dense;
  let memories = 0;
  let flops = 2 * D * V; // LM head
  c.ffn.forEach((kind, i) => {
    const norms = 2 * D;
    dense += attnParams + norms;
    active += attnParams + norms;
    flops += attnFlops;
    const f = FFN_REGISTRY[kind].counts(c, i);
    if (isMemoryKind(kind)) memories += f.params;
    else {
      dense += f.params;
      active += f.activeParams;
    }
    flops += f.flops;
  });
  (c.skips ?? []).forEach((s, i) => {
    const f = memoryKind(s.kind, `skips.${i}.kind`).counts(c, `skips.${i}`);
    memories += f.params;
    flops += f.flops;
  });
  const pool = poolShapeOf(c);
  const values = pool ? pool.rows * pool.dim : 0;
  return {
    denseParams: dense,
    memoryParams: values + memories,
    flopsPerToken: flops,
    embeddingParams: embedding,
    activeDenseParams: active,
  };
}
