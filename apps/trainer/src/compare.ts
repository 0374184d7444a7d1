/** `mnemo-train compare`: train several configs on the same data and tabulate them. */
import type { TrainerConfig } from './config';
import { type EvalResult, type RunSummary, runTraining } from './train';

export interface CompareRow {
  name: string;
  denseParams: number;
  memoryParams: number;
  flopsPerToken: number;
  tokensPerSec: number;
  valLoss: number;
  factLoss: number | null;
  recall: number | null;
  questions: number | null;
  /** right answers per attribute (capacity facts), else absent */
  byAttribute?: EvalResult['byAttribute'];
  /** the first memory layer's usage in the final evaluation, else absent */
  usage?: EvalResult['usage'];
}

/** The final evaluation's optional parts of a CompareRow. */
export function evalExtras(final: EvalResult | undefined): Pick<CompareRow, 'byAttribute' | 'usage'> {
  return { ...(final?.byAttribute ? { byAttribute: final.byAttribute } : {}), ...(final?.usage ? { usage: final.usage } : {}) };
}

/** A finished run's row. */
export function compareRow(cfg: TrainerConfig, s: RunSummary): CompareRow {
  return {
    name: cfg.name,
    denseParams: s.counts.denseParams,
    memoryParams: s.counts.memoryParams,
    flopsPerToken: s.counts.flopsPerToken,
    tokensPerSec: s.tokensPerSec,
    valLoss: s.final?.valLoss ?? Number.NaN,
    factLoss: s.final?.factLoss ?? null,
    recall: s.final?.recall ?? null,
    questions: s.final?.questions ?? null,
    ...evalExtras(s.final),
  };
}

export async function compare(configs: TrainerConfig[], opts: { quiet?: boolean } = {}): Promise<CompareRow[]> {
  const rows: CompareRow[] = [];
  for (const cfg of configs) rows.push(compareRow(cfg, await runTraining(cfg, { quiet: opts.quiet })));
  return rows;
}

const m = (x: number) => `${(x / 1e6).toFixed(2)} M`;

export function compareTable(rows: CompareRow[]): string {
  const head = '| model | dense params | memory params | FLOPs/token | tokens/s | val loss | val loss (fact text) | fact recall |';
  const sep = '| --- | --- | --- | --- | --- | --- | --- | --- |';
  const body = rows.map(
    (r) =>
      `| ${r.name} | ${m(r.denseParams)} | ${m(r.memoryParams)} | ${m(r.flopsPerToken)} | ${Math.round(r.tokensPerSec)} | ` +
      `${r.valLoss.toFixed(3)} | ${r.factLoss === null ? '–' : r.factLoss.toFixed(3)} | ` +
      `${r.recall === null ? '–' : `${(100 * r.recall).toFixed(1)}% of ${r.questions}`} |`,
  );
  return [head, sep, ...body].join('\n');
}
