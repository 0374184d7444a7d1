/**
 * Tensor backend selection: the ONE place in Mnemo that decides which tfjs backend runs.
 *
 * Order for `auto`:
 *   1. `tensorflow` from `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`, when one is
 *      installed AND loads (its native libtensorflow is present);
 *   2. `wasm` (SIMD, single-threaded): the fastest backend that installs from npm alone; measured
 *      ~30x the plain `cpu` backend at matmul (see docs/benchmarks/backends.md);
 *   3. `cpu` (pure JS), the last resort.
 * Override with `initBackend({ backend })`, the `MNEMO_BACKEND` environment variable, or the apps'
 * `--backend` flag. An explicit choice that cannot load is an error, never a silent fallback.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, ConfigError } from '@mnemo/core';
import { formatKernelProfile, installKernelProfiler } from './kernel-profile';
import { nativeAvailable } from './native';
import { installWasmNoCopy } from './wasm-copies';
import { installWasmElementwise } from './wasm-elementwise';
import { type DenseInfo, installWasmMatMul, setDensePath } from './wasm-matmul';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** the tfjs backend now active */
  name: BackendName;
  /** the npm package that provides it */
  provider: string;
  /** what was asked for (`auto` unless overridden) */
  requested: BackendChoice;
  /** why each better backend was skipped, in order */
  skipped: string[];
  /** wasm only: the path of its dense math (BatchMatMul), see wasm-matmul.ts */
  dense?: DenseInfo;
}

export interface InitBackendOptions {
  /** default: `MNEMO_BACKEND` or `auto` */
  backend?: BackendChoice | string;
  /** wasm only: dense path (default: `MNEMO_DENSE` or `auto`: native BLAS when it loads, else wasm) */
  dense?: string;
  /** where the one-line "which backend runs" message goes; `false` silences it */
  log?: ((line: string) => void) | false;
}

const require_ = createRequire(import.meta.url);
let current: BackendInfo | undefined;

/**
 * tfjs-core registers no gradients by itself (the `@tensorflow/tfjs` bundle does): load it once,
 * so `tf.grads` works for every op. It shares our tfjs-core instance (same version, deduped).
 */
export function ensureGradients(): void {
  if (tf.getGradient('Sum')) return;
  require_('@tensorflow/tfjs');
  if (!tf.getGradient('Sum')) {
    throw new BackendError(
      `@tensorflow/tfjs registered its gradients on another @tensorflow/tfjs-core than ours (${tf.version_core}); ` +
        'install matching versions so npm dedupes tfjs-core',
    );
  }
}

/** Parse a backend name from config/env/CLI, naming `field` on error. */
export function parseBackendChoice(value: string | undefined, field = 'backend'): BackendChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'tfjs-node' || v === 'node' || v === 'gpu' || v === 'tfjs-node-gpu') return 'tensorflow';
  if ((BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendName;
  throw new ConfigError(field, `unknown backend '${value}'; use one of auto, ${BACKEND_NAMES.join(', ')}`);
}

function tryTensorflow(): { provider: string } | { reason: string } {
  const reasons: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require_(pkg);
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      reasons.push(`${pkg}: ${msg}`);
      continue;
    }
    if (tf.findBackend('tensorflow')) return { provider: pkg };
    reasons.push(
      `${pkg}: loaded but registered no 'tensorflow' backend on this @tensorflow/tfjs-core ` +
        `(${tf.version_core}); install matching versions so npm dedupes tfjs-core`,
    );
  }
  return { reason: reasons.join('; ') };
}

async function tryWasm(): Promise<{ provider: string } | { reason: string }> {
  try {
    const wasm = require_('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    // Threads need a Worker from a blob URL, which Node does not start: force single-threaded SIMD.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    const dist = path.dirname(require_.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(dist + path.sep);
    return { provider: '@tensorflow/tfjs-backend-wasm' };
  } catch (e) {
    return { reason: `@tensorflow/tfjs-backend-wasm: ${(e as Error).message.split('\n')[0]}` };
  }
}

function tryCpu(): { provider: string } | { reason: string } {
  try {
    require_('@tensorflow/tfjs-backend-cpu');
    return { provider: '@tensorflow/tfjs-backend-cpu' };
  } catch (e) {
    return { reason: `@tensorflow/tfjs-backend-cpu: ${(e as Error).message.split('\n')[0]}` };
  }
}

async function activate(name: BackendName): Promise<{ provider: string } | { reason: string }> {
  const loaded = name === 'tensorflow' ? tryTensorflow() : name === 'wasm' ? await tryWasm() : tryCpu();
  if ('reason' in loaded) return loaded;
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return { reason: `${loaded.provider}: tf.setBackend('${name}') returned false` };
    await tf.ready();
    if (name === 'wasm') {
      installWasmMatMul();
      installWasmNoCopy();
      installWasmElementwise();
    }
    if (process.env.MNEMO_PROFILE_KERNELS === '1' && installKernelProfiler(name) > 0) {
      process.on('exit', () => process.stderr.write(`[mnemo] kernel profile (${name}):\n${formatKernelProfile()}\n`));
    }
  } catch (e) {
    return { reason: `${loaded.provider}: ${(e as Error).message.split('\n')[0]}` };
  }
  return loaded;
}

/**
 * Choose and activate the tfjs backend (idempotent: a second call with the same request returns
 * the active backend). Prints one line saying which backend runs, unless `log: false`.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  ensureGradients();
  const fromEnv = opts.backend === undefined && process.env.MNEMO_BACKEND !== undefined;
  const requested = parseBackendChoice(opts.backend ?? process.env.MNEMO_BACKEND, fromEnv ? 'MNEMO_BACKEND' : 'backend');
  if (current && requested === current.requested && tf.getBackend() === current.name) {
    if (current.name === 'wasm' && (opts.dense !== undefined || process.env.MNEMO_DENSE !== undefined)) {
      current = { ...current, dense: setDensePath(opts.dense) };
    }
    return current;
  }
  const order: BackendName[] = requested === 'auto' ? [...BACKEND_NAMES] : [requested];
  const skipped: string[] = [];
  for (const name of order) {
    const r = await activate(name);
    if ('reason' in r) {
      skipped.push(`${name}: ${r.reason}`);
      continue;
    }
    const dense = name === 'wasm' ? setDensePath(opts.dense) : undefined;
    current = { name, provider: r.provider, requested, skipped, ...(dense ? { dense } : {}) };
    const log = opts.log === undefined ? (l: string) => process.stderr.write(`${l}\n`) : opts.log;
    if (log) {
      const why = skipped.length ? ` (skipped ${skipped.map((s) => s.split(':')[0]).join(', ')})` : '';
      const d = dense ? `; dense math: ${dense.path} (${dense.reason})` : '';
      const k = nativeAvailable();
      const kernels = `; memory kernels: ${k.available ? `native, ${k.reason}` : `TypeScript (${k.reason})`}`;
      log(`[mnemo] tensor backend: ${name} via ${r.provider}${why}${d}${kernels}`);
    }
    return current;
  }
  throw new BackendError(
    `no tensor backend could start for '${requested}': ${skipped.join(' | ')}. ` +
      `Use MNEMO_BACKEND=auto, or install the missing package.`,
  );
}

/** The backend chosen by the last `initBackend`, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}
