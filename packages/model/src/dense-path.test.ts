/**
 * The model on both dense paths of the wasm backend (@mnemo/kernels: native OpenBLAS vs the
 * tfjs-wasm kernel): the loss, its gradients and the server's batched decode step agree, and the
 * decode step really runs on the native path (its BatchMatMul calls and the fused RMSNorm, softmax
 * and gate kernels are counted). Skips with the reason when the native path is unavailable (no
 * addon or no BLAS).
 * Tolerance: 1e-4 relative to the largest value (float32 sums in a different order, through
 * several layers).
 */
import { mulberry32 } from '@mnemo/core';
import { fusedOpCalls, initBackend, nativeDense, nativeDenseCalls, setDensePath } from '@mnemo/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffnPlan, parseModelConfig } from './config';
import { LanguageModel } from './model';

const native = nativeDense();
if (!native.addon) console.log(`[dense-path.test] skipped: ${native.reason}`);

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let s = 1e-12;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return m / s;
}

describe.runIf(native.addon)('native vs wasm dense path', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: false });
  });
  afterAll(() => setDensePath());

  const cfg = (kind: 'dense' | 'memoryPlus') =>
    parseModelConfig({
      vocabSize: 97,
      dim: 48,
      layers: 3,
      heads: 4,
      kvHeads: 2,
      maxSeqLen: 40,
      ffnHidden: 96,
      ffn: ffnPlan(kind, 3, kind === 'memoryPlus' ? 1 : undefined),
      memory: { numKeys: 8, heads: 2, topK: 4, keyDim: 16 },
      seed: 3,
    });

  it.each(['dense', 'memoryPlus'] as const)('%s: loss and gradients agree', (kind) => {
    const r = mulberry32(4);
    const ids = tf.tensor2d(
      Int32Array.from({ length: 3 * 33 }, () => Math.floor(r() * 97)),
      [3, 33],
      'int32',
    );
    // a model per path (same seed): a Memory+ backward updates its value rows in place
    const run = (p: 'native' | 'wasm') => {
      setDensePath(p);
      const m = new LanguageModel(cfg(kind));
      const vars = m.trainableVariables();
      const { value, grads } = tf.variableGrads(() => m.loss(ids, { training: false }), vars);
      const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync().slice()) };
      tf.dispose([value, ...Object.values(grads)]);
      const names = vars.map((v) => v.name);
      m.dispose();
      return { ...out, names };
    };
    const calls = nativeDenseCalls();
    const fused = fusedOpCalls();
    const a = run('native');
    expect(nativeDenseCalls()).toBeGreaterThan(calls);
    // RMSNorm of every block and the final one, attention softmax, the gate (SwiGLU or Memory+'s),
    // each forward and backward, on the fused kernels
    expect(fusedOpCalls() - fused).toBeGreaterThanOrEqual(2 * (2 * 3 + 1 + 3 + 3));
    const fusedAfter = fusedOpCalls();
    const b = run('wasm');
    expect(fusedOpCalls()).toBe(fusedAfter);
    expect(Math.abs(a.loss - b.loss) / Math.abs(b.loss)).toBeLessThan(1e-5);
    expect(a.grads.length).toBeGreaterThan(0);
    for (let i = 0; i < a.grads.length; i++) expect(relErr(a.grads[i]!, b.grads[i]!), a.names[i]).toBeLessThan(1e-4);
    ids.dispose();
  });

  it("the batched decode step (the server scheduler's) runs native and agrees with wasm", () => {
    const m = new LanguageModel(cfg('dense'));
    const prompts = [[5, 9, 11], [1, 2, 3, 4, 5, 6, 7], [42]];
    const decode = (p: 'native' | 'wasm') => {
      setDensePath(p);
      const caches = prompts.map((pr) => {
        const c = m.newCache();
        m.prefill(pr, c);
        return c;
      });
      const before = nativeDenseCalls();
      const out = [m.decodeBatch([7, 8, 9], caches), m.decodeBatch([10, 11, 12], caches)];
      const calls = nativeDenseCalls() - before;
      for (const c of caches) c.dispose();
      return { out, calls };
    };
    const a = decode('native');
    const b = decode('wasm');
    expect(a.calls).toBeGreaterThan(0);
    expect(b.calls).toBe(0);
    for (let s = 0; s < 2; s++) for (let i = 0; i < 3; i++) expect(relErr(a.out[s]![i]!, b.out[s]![i]!)).toBeLessThan(1e-4);
    m.dispose();
  });
});
