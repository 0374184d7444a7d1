/**
 * Optimizer configs for value tables (docs/design.md §2.8). Updates are SPARSE and per row: only
 * rows read by the batch are touched, and their state is updated only then ("lazy").
 *
 * For a touched row r with aggregated gradient g = Σ_{(b,j): ids[b,j]=r} w[b,j] · gOut[b]  // [dv]
 *   clip (optional): 'row'    g ← g · min(1, maxNorm / ‖g‖)                 (each row alone)
 *                    'global' g ← g · min(1, maxNorm / ‖[g_r for touched r]‖) (all touched rows)
 *   weight decay (optional, decoupled as in AdamW, touched rows only): V[r] ← V[r] · (1 − lr·wd)
 *   sgd:     V[r] ← V[r] − lr · g
 *   adagrad: A[r] ← A[r] + g²;  V[r] ← V[r] − lr · g / (√A[r] + eps)
 *   adam:    t[r] ← t[r] + 1 (per-row step count)
 *            m[r] ← β1 m[r] + (1−β1) g;  v[r] ← β2 v[r] + (1−β2) g²
 *            V[r] ← V[r] − lr · (m[r] / (1−β1^t[r])) / (√(v[r] / (1−β2^t[r])) + eps)
 *   adam, secondMoment 'row' (partial row-wise Adam): v_r is ONE number per row,
 *            v_r ← β2 v_r + (1−β2) · mean_c(g_c²); m per element as above (stored as bfloat16
 *            with momentDtype 'bfloat16', rounded once per update). Per touched row the state
 *            traffic drops from 8·dv to 4·dv (2·dv with bf16 m) bytes each way.
 */
import { ConfigError } from '@mnemo/core';

export type OptimizerKind = 'sgd' | 'adagrad' | 'adam';
export type ClipMode = 'row' | 'global';
export type SecondMoment = 'element' | 'row';
export type MomentDtype = 'float32' | 'bfloat16';

export interface ClipConfig {
  /** 'row': clip each touched row's gradient alone; 'global': one norm over all touched rows */
  mode: ClipMode;
  maxNorm: number;
}

export interface OptimizerConfig {
  kind: OptimizerKind;
  /** learning rate (a backward/step call may override it, e.g. for a schedule) */
  lr: number;
  /** Adam (β1, β2); default [0.9, 0.999] */
  betas?: [number, number];
  /** Adagrad/Adam denominator epsilon; default 1e-8 (Adam) / 1e-10 (Adagrad) */
  eps?: number;
  /** decoupled weight decay on touched rows; default 0 */
  weightDecay?: number;
  clip?: ClipConfig;
  /** Adam: 'element' (default, full Adam) or 'row' (one second moment per row) */
  secondMoment?: SecondMoment;
  /** Adam with secondMoment 'row': storage of m; default 'float32' */
  momentDtype?: MomentDtype;
}

/** Fully defaulted config. */
export interface ResolvedOptimizer {
  kind: OptimizerKind;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clip: ClipConfig | null;
  secondMoment: SecondMoment;
  momentDtype: MomentDtype;
}

export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['sgd', 'adagrad', 'adam'];

function finiteNonNeg(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(field, `must be a finite number ≥ 0, got ${String(v)}`);
  }
  return v;
}

export function resolveOptimizer(cfg: OptimizerConfig, field = 'optimizer'): ResolvedOptimizer {
  if (cfg === null || typeof cfg !== 'object') {
    throw new ConfigError(field, `must be an object like { kind: 'adam', lr: 1e-3 }, got ${String(cfg)}`);
  }
  if (!OPTIMIZER_KINDS.includes(cfg.kind)) {
    throw new ConfigError(`${field}.kind`, `must be one of ${OPTIMIZER_KINDS.join(', ')}, got ${String(cfg.kind)}`);
  }
  const lr = finiteNonNeg(`${field}.lr`, cfg.lr);
  const [beta1, beta2] = cfg.betas ?? [0.9, 0.999];
  for (const [i, b] of [beta1, beta2].entries()) {
    if (typeof b !== 'number' || !(b >= 0 && b < 1)) {
      throw new ConfigError(`${field}.betas[${i}]`, `must be in [0, 1), got ${String(b)}`);
    }
  }
  const eps = finiteNonNeg(`${field}.eps`, cfg.eps ?? (cfg.kind === 'adagrad' ? 1e-10 : 1e-8));
  const weightDecay = finiteNonNeg(`${field}.weightDecay`, cfg.weightDecay ?? 0);
  let clip: ClipConfig | null = null;
  if (cfg.clip !== undefined) {
    if (cfg.clip.mode !== 'row' && cfg.clip.mode !== 'global') {
      throw new ConfigError(`${field}.clip.mode`, `must be 'row' or 'global', got ${String(cfg.clip.mode)}`);
    }
    const maxNorm = finiteNonNeg(`${field}.clip.maxNorm`, cfg.clip.maxNorm);
    if (maxNorm === 0) throw new ConfigError(`${field}.clip.maxNorm`, 'must be > 0');
    clip = { mode: cfg.clip.mode, maxNorm };
  }
  const secondMoment = cfg.secondMoment ?? 'element';
  if (secondMoment !== 'element' && secondMoment !== 'row') {
    throw new ConfigError(`${field}.secondMoment`, `must be 'element' or 'row', got ${String(secondMoment)}`);
  }
  const momentDtype = cfg.momentDtype ?? 'float32';
  if (momentDtype !== 'float32' && momentDtype !== 'bfloat16') {
    throw new ConfigError(`${field}.momentDtype`, `must be 'float32' or 'bfloat16', got ${String(momentDtype)}`);
  }
  if (cfg.kind !== 'adam' && (cfg.secondMoment !== undefined || cfg.momentDtype !== undefined)) {
    throw new ConfigError(
      `${field}.${cfg.secondMoment !== undefined ? 'secondMoment' : 'momentDtype'}`,
      `is an Adam option; remove it for ${cfg.kind}`,
    );
  }
  if (momentDtype === 'bfloat16' && secondMoment !== 'row') {
    throw new ConfigError(`${field}.momentDtype`, "'bfloat16' needs secondMoment: 'row' (partial row-wise Adam)");
  }
  return { kind: cfg.kind, lr, beta1, beta2, eps, weightDecay, clip, secondMoment, momentDtype };
}

/** Codes shared with the C++ kernels (native/cpu/optimizers.h). */
export const OPT_CODE: Record<OptimizerKind, number> = { sgd: 0, adagrad: 1, adam: 2 };
export const CLIP_CODE = { none: 0, row: 1, global: 2 } as const;

/**
 * Packed parameters for a kernel call,
 * [kind, lr, beta1, beta2, eps, weightDecay, clipCode, maxNorm, rowWise, momentBf16].
 */
export function packOptimizer(o: ResolvedOptimizer, lr: number): Float64Array {
  return Float64Array.of(
    OPT_CODE[o.kind],
    lr,
    o.beta1,
    o.beta2,
    o.eps,
    o.weightDecay,
    o.clip ? CLIP_CODE[o.clip.mode] : 0,
    o.clip ? o.clip.maxNorm : 0,
    o.secondMoment === 'row' ? 1 : 0,
    o.momentDtype === 'bfloat16' ? 1 : 0,
  );
}
