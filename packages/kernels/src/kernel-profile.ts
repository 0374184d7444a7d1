/**
 * Per-kernel wall-clock profile of the active tfjs backend: every registered kernel of the
 * backend is wrapped with a timer (kernels a kernel calls directly, e.g. wasm BatchMatMul's
 * Reshape, count inside their caller). The wasm and cpu backends run synchronously, so a kernel's
 * time is its real cost. `initBackend` turns it on when `MNEMO_PROFILE_KERNELS=1` and prints the
 * table at process exit (or call `kernelProfile()` / `resetKernelProfile()` yourself).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface KernelStat {
  kernel: string;
  calls: number;
  ms: number;
}

const stats = new Map<string, { calls: number; ms: number }>();
const wrapped = new Set<string>();

/** Wrap every kernel registered for `backend` (idempotent per backend). Returns how many. */
export function installKernelProfiler(backend: string): number {
  if (wrapped.has(backend)) return 0;
  wrapped.add(backend);
  let n = 0;
  for (const cfg of tf.getKernelsForBackend(backend)) {
    const inner = cfg.kernelFunc;
    const name = cfg.kernelName;
    tf.unregisterKernel(name, backend);
    tf.registerKernel({
      ...cfg,
      kernelFunc: (args) => {
        const t0 = performance.now();
        const out = inner(args);
        const s = stats.get(name) ?? { calls: 0, ms: 0 };
        s.calls++;
        s.ms += performance.now() - t0;
        stats.set(name, s);
        return out;
      },
    });
    n++;
  }
  return n;
}

/** Kernels by total time, largest first. */
export function kernelProfile(): KernelStat[] {
  return [...stats.entries()].map(([kernel, s]) => ({ kernel, ...s })).sort((a, b) => b.ms - a.ms);
}

export function resetKernelProfile(): void {
  stats.clear();
}

/** A fixed-width table of the profile: kernel, calls, ms, share of the kernels' total. */
export function formatKernelProfile(rows = kernelProfile(), top = 25): string {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const lines = [`kernel                          calls        ms      %   (kernels total ${total.toFixed(0)} ms)`];
  for (const r of rows.slice(0, top)) {
    lines.push(
      `${r.kernel.padEnd(30)} ${String(r.calls).padStart(7)} ${r.ms.toFixed(1).padStart(9)} ${((100 * r.ms) / (total || 1)).toFixed(1).padStart(6)}`,
    );
  }
  return lines.join('\n');
}
