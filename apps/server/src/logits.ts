/**
 * Logit processing before sampling, and log-probabilities.
 *
 *   l'[v] = l[v] + logit_bias[v] − presence_penalty·[count[v] > 0] − frequency_penalty·count[v]
 *
 * where count[v] is how often v was already generated in this sequence (the prompt does not
 * count, as in OpenAI's definition). Sampling (temperature, top_p) then runs on l'. Reported
 * logprobs are log-softmax(l'): the distribution after bias and penalties, before temperature
 * and top_p.
 */

export interface LogitAdjustments {
  /** token id → added to its logit (−100 bans a token, +100 all but forces it) */
  logitBias?: ReadonlyMap<number, number>;
  presencePenalty?: number;
  frequencyPenalty?: number;
}

/** The adjusted logits [V] (a copy; `logits` itself is returned when nothing applies). */
export function adjustLogits(logits: Float32Array, adj: LogitAdjustments, counts: ReadonlyMap<number, number>): Float32Array {
  const pres = adj.presencePenalty ?? 0;
  const freq = adj.frequencyPenalty ?? 0;
  const bias = adj.logitBias;
  const penalize = (pres !== 0 || freq !== 0) && counts.size > 0;
  if (!penalize && !(bias && bias.size > 0)) return logits;
  const out = new Float32Array(logits);
  if (bias) for (const [id, b] of bias) if (id < out.length) out[id] = out[id]! + b;
  if (penalize) for (const [id, n] of counts) if (id < out.length) out[id] = out[id]! - pres - freq * n;
  return out;
}

/** log Σ exp(l) over the vocabulary, stable. */
export function logSumExp(logits: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const l of logits) if (l > max) max = l;
  if (max === Number.NEGATIVE_INFINITY) return max;
  let s = 0;
  for (const l of logits) s += Math.exp(l - max);
  return max + Math.log(s);
}

export interface TokenLogprob {
  id: number;
  logprob: number;
  /** the `k` most likely tokens at this position, most likely first */
  top: Array<{ id: number; logprob: number }>;
}

/** log p(id) and the top-k alternatives under softmax(logits). */
export function tokenLogprob(logits: Float32Array, id: number, k: number): TokenLogprob {
  const lse = logSumExp(logits);
  const top: Array<{ id: number; logprob: number }> = [];
  if (k > 0) {
    // keep the k largest in a small sorted array (k ≤ 20)
    const ids: number[] = [];
    for (let v = 0; v < logits.length; v++) {
      const l = logits[v]!;
      if (ids.length === k && l <= logits[ids[k - 1]!]!) continue;
      let i = Math.min(ids.length, k - 1);
      if (ids.length < k) ids.push(v);
      while (i > 0 && logits[ids[i - 1]!]! < l) {
        ids[i] = ids[i - 1]!;
        i--;
      }
      ids[i] = v;
    }
    for (const v of ids) top.push({ id: v, logprob: logits[v]! - lse });
  }
  return { id, logprob: logits[id]! - lse, top };
}
