/**
 * Analytic parameter and FLOP counts of a ModelConfig (no model is built).
 *
 * denseParams: every tensor the model's dense optimizer trains EXCEPT the memory layers' own
 *   tensors: token embedding, attention, norms, dense/MoE FFNs (all experts), the untied head.
 * memoryParams: the shared value pool N·dv, plus each memory layer's tensors (query projection
 *   Wq, bq; sub-keys H·n·dk; Memory+ W1, b1, W2, b2, or PKM's Wo when dv ≠ D).
 *   So Σ sizes of trainableVariables() = denseParams + memoryParams − N·dv.
 * flopsPerToken: forward, 2 FLOPs per multiply-add, matmuls only (norms, RoPE, softmax and
 *   activations are left out); attention scores and the weighted sum at a context of
 *   maxSeqLen/2; MoE counts the router and the 2 ACTIVE experts; memory layers use
 *   memoryLayerFlops (@mnemo/memory-layer); the LM head counts, the embedding lookup does not.
 */
import { memoryLayerFlops } from '@mnemo/memory-layer';
import type { ModelConfig } from './config';
import { memoryLayerConfigFor } from './memory-ffn';

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
  const swigluParams = (h: number) => 3 * D * h;
  let dense = embedding + D; // + final norm
  let active = dense;
  let memoryLayers = 0;
  let flops = 2 * D * V; // LM head
  c.ffn.forEach((kind, i) => {
    const norms = 2 * D;
    dense += attnParams + norms;
    active += attnParams + norms;
    flops += attnFlops;
    if (kind === 'dense') {
      dense += swigluParams(c.ffnHidden);
      active += swigluParams(c.ffnHidden);
      flops += 2 * swigluParams(c.ffnHidden);
    } else if (kind === 'moe') {
      const router = D * c.moe.experts;
      dense += router + c.moe.experts * swigluParams(c.moe.hidden);
      active += router + 2 * swigluParams(c.moe.hidden);
      flops += 2 * router + 2 * 2 * swigluParams(c.moe.hidden);
    } else {
      const m = memoryLayerConfigFor(c, i);
      const hq = m.heads * m.keyDim;
      memoryLayers += D * hq + hq + m.heads * m.numKeys * m.keyDim; // Wq, bq, sub-keys [H, 2, n, dk/2]
      if (m.gating === 'silu') memoryLayers += 2 * D * m.valueDim + m.valueDim + D; // W1, b1, W2, b2
      else if (m.valueDim !== D) memoryLayers += m.valueDim * D; // Wo
      flops += memoryLayerFlops(m);
    }
  });
  const hasMemory = c.ffn.some((k) => k === 'memory' || k === 'memoryPlus');
  const values = hasMemory ? c.memory.numKeys ** 2 * (c.memory.valueDim ?? D) : 0;
  return {
    denseParams: dense,
    memoryParams: values + memoryLayers,
    flopsPerToken: flops,
    embeddingParams: embedding,
    activeDenseParams: active,
  };
}
