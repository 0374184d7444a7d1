/**
 * The retrieval embedding, computed by the model itself (docs/design.md §4.5): the mean over the
 * text's tokens (the "Reference:" prefix excluded) of the residual stream entering block
 * `embedLayer`, unit-normalised.
 *
 *   e = normalise( mean_{j ≥ 1} h_l[j] )       h_l = the stream entering block l   [D]
 *
 * The default `embedLayer` 0 pools the token embeddings: a learned bag of words, which at this
 * project's model sizes retrieves by shared rare tokens (entity names) better than deeper,
 * contextual layers (docs/benchmarks/memory3.md measures both). References and queries are
 * embedded the same way: both get the prefix before them.
 */
import { ValueError } from '@mnemo/core';
import { type Memory3Options, type MemoryHost, REFERENCE_POSITIONS, resolveOptions } from './host';

/** Unit-norm mean of rows [from, T) of h [T, D]. */
export function meanPool(h: Float32Array, T: number, D: number, from: number): Float32Array {
  const e = new Float32Array(D);
  for (let t = from; t < T; t++) for (let d = 0; d < D; d++) e[d] = e[d]! + h[t * D + d]!;
  let n = 0;
  for (let d = 0; d < D; d++) n += e[d]! * e[d]!;
  n = Math.sqrt(n);
  if (n > 0) for (let d = 0; d < D; d++) e[d] = e[d]! / n;
  return e;
}

/** The embedding of a token span (a query: the last 64 tokens); longer spans keep their end. */
export function embedTokens(host: MemoryHost, tokens: number[], opts: Memory3Options): Float32Array {
  const o = resolveOptions(host, opts);
  if (tokens.length === 0) throw new ValueError('tokens', 'is empty; embed at least one token');
  const max = Math.min(REFERENCE_POSITIONS, host.config.maxSeqLen) - 1;
  const span = tokens.length > max ? tokens.slice(tokens.length - max) : tokens;
  const cap = host.captureKV([o.prefixId, ...span], { blocks: [], hidden: o.embedLayer });
  return meanPool(cap.hidden!, span.length + 1, host.config.dim, 1);
}
