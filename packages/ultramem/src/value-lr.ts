/**
 * Value learning-rate decay (UltraMem's largest single gain, docs/design.md §3.10): the value
 * table's LR starts at `start`× the base and decays linearly to 1× over the first `fraction` of
 * training.  lr_V(step) = lr · (1 + (start − 1) · max(0, 1 − step / (fraction · steps)))
 */
export function valueLrMultiplier(step: number, steps: number, start: number, fraction = 1): number {
  if (start === 1 || steps <= 0) return 1;
  return 1 + (start - 1) * Math.max(0, 1 - step / (fraction * steps));
}
