/** The one line printed on screen per periodic evaluation during training. */
import type { EvalResult } from './train';

export function evalLine(name: string, step: number, steps: number, r: EvalResult): string {
  const parts = [`[${name}] eval @ step ${step}/${steps}: val loss ${r.valLoss.toFixed(3)}`];
  if (r.factLoss !== undefined) parts.push(`fact loss ${r.factLoss.toFixed(3)}`);
  if (r.recall !== undefined) parts.push(`recall ${(100 * r.recall).toFixed(1)}%${r.questions !== undefined ? ` of ${r.questions}` : ''}`);
  return parts.join(' · ');
}
