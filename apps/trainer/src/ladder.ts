/**
 * The UltraMem ablation ladder (UltraMem's Table 2, on the trainer's facts data): each rung adds
 * one change to the rung before, all at FLOPs/token within ±10% of Memory+ (0.90x dense):
 *   pkm → +no softmax → +half value width (dv = D/2 + projection) → +skip-layer (memories read
 *   the previous block's FFN input; their FFN slots hold no FFN) → +IVE (E = 4, product keys on
 *   the expanded grid) → +TDQKR (r = 2, one core) → +MCS (2 cores) → +value-LR decay (10× → 1×)
 *   = the ultramem preset; Memory+ and dense as references.
 * Rungs are configs (ladder()), tested in ladder.test.ts for the FLOPs match; bench/ultramem.ts trains them.
 */
import type { TrainerConfig } from './config';
import { preset } from './presets';

export interface Rung {
  label: string;
  cfg: TrainerConfig;
}

type Model = Record<string, unknown> & { memory: Record<string, unknown>; ffn: string[] };

/** The rungs for one seed, in order; `over` = preset overrides (steps, facts, seed, out). */
export function ladder(over: { steps?: number; facts?: number; seed?: number; out?: (label: string) => string } = {}): Rung[] {
  const base = (name: string, label: string) =>
    preset(name, { steps: over.steps, facts: over.facts, seed: over.seed, out: over.out?.(label) });
  const edit = (name: string, label: string, ...fs: ((m: Model) => void)[]): Rung => {
    const cfg = structuredClone(base(name, label)) as TrainerConfig & { model: Model };
    for (const f of fs) f(cfg.model);
    cfg.name = label;
    return { label, cfg };
  };
  const pkm = (m: Model) => Object.assign(m.memory, { scoreFn: 'softmax' });
  const raw = (m: Model) => Object.assign(m.memory, { scoreFn: 'none' });
  const half = (m: Model) => Object.assign(m.memory, { valueDim: 64 });
  const skip = (m: Model) => {
    m.skips = m.ffn.flatMap((k, i) => (k === 'memory' ? [{ read: i - 1, write: i, kind: 'memory' }] : []));
    m.ffn = m.ffn.map((k) => (k === 'memory' ? 'none' : k));
  };
  // UltraMem memories on the same skip sites, without value-LR decay, with a chosen scoring
  const ultra = (layer: Record<string, unknown>) => (m: Model) => {
    delete m.memory.valueLrDecay;
    Object.assign(m.ultramem as Record<string, unknown>, layer);
  };
  return [
    { label: 'dense', cfg: { ...base('dense', 'dense'), name: 'dense' } },
    { label: 'Memory+', cfg: { ...base('memoryPlus', 'Memory+'), name: 'Memory+' } },
    edit('memory', 'pkm', pkm),
    edit('memory', '+no softmax', raw),
    edit('memory', '+half vdim', raw, half),
    edit('memory', '+skip-layer', raw, half, skip),
    edit('ultramem', '+IVE', ultra({ scoring: 'pk', cores: 1, keyDim: 32 })),
    edit('ultramem', '+TDQKR', ultra({ scoring: 'tdqkr', cores: 1 })),
    edit('ultramem', '+MCS', ultra({ scoring: 'tdqkr', cores: 2 })),
    { label: '+value-LR decay (ultramem)', cfg: { ...base('ultramem', '+value-LR decay (ultramem)'), name: '+value-LR decay (ultramem)' } },
  ];
}
