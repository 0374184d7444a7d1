import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LocalGroup, MpiGroup, mpiAvailable, mpirunPath } from './index';

const worker = fileURLToPath(new URL('./test-workers/train-worker.ts', import.meta.url));
const lmWorker = fileURLToPath(new URL('./test-workers/lm-worker.ts', import.meta.url));
const STEPS = 20;
/**
 * Tolerance of the loss curves: the dense gradients are sums of per-rank partial gradients and the
 * weight gradients sums of partial dot products, so P = 2 differs from P = 1 by float32 rounding,
 * compounded over 20 Adam steps; 1e-4 relative (seen: ≤ 3e-7; loss 0.344 → 0.154).
 */
const RTOL = 1e-4;

async function losses(P: number, scheme: 'dim' | 'row', backend: 'local' | 'mpi'): Promise<number[]> {
  if (backend === 'local') {
    const res = await LocalGroup.run<{ losses: number[] }>(P, worker, { data: { scheme, steps: STEPS } });
    for (const r of res) expect(r.error, String(r.error?.stack)).toBeUndefined();
    expect(res[0]!.result!.losses).toEqual(res[P - 1]!.result!.losses); // every rank sees the same global loss
    return res[0]!.result!.losses;
  }
  const res = await MpiGroup.run<{ losses: number[] }>(P, worker, { data: { scheme, steps: STEPS } });
  expect(res.exitCode, res.stderr).toBe(0);
  return res.results[0]!.losses;
}

function expectClose(a: number[], b: number[]): void {
  expect(a.length).toBe(STEPS);
  for (let i = 0; i < STEPS; i++) expect(Math.abs(a[i]! - b[i]!) / Math.abs(b[i]!), `step ${i}: ${a[i]} vs ${b[i]}`).toBeLessThan(RTOL);
}

describe('20 training steps of a Memory+ layer: P = 2 gives the losses of P = 1 (same global batch)', () => {
  it('local backend, dim and row sharding', async () => {
    const ref = await losses(1, 'dim', 'local');
    expect(ref[STEPS - 1]!).toBeLessThan(ref[0]! * 0.9); // it trains
    expectClose(await losses(2, 'dim', 'local'), ref);
    expectClose(await losses(2, 'row', 'local'), ref);
  });

  const mpi = mpiAvailable();
  const reason = !mpirunPath() ? 'mpirun not on PATH' : !mpi.available ? mpi.reason : '';
  if (reason) console.log(`[parallel] skipping the mpi training test: ${reason}`);
  it.skipIf(reason !== '')('mpi backend, dim sharding', async () => {
    const ref = await losses(1, 'dim', 'local');
    expectClose(await losses(2, 'dim', 'mpi'), ref);
  });
});

describe('a LanguageModel (@mnemo/model) on a sharded pool', () => {
  it('trains 20 steps at P = 2 (dim sharding, local backend) with the losses of the unsharded model', async () => {
    const run = async (P: number, sharded: boolean) => {
      const res = await LocalGroup.run<{ losses: number[] }>(P, lmWorker, { data: { steps: STEPS, sharded } });
      for (const r of res) expect(r.error, String(r.error?.stack)).toBeUndefined();
      return res[0]!.result!.losses;
    };
    const ref = await run(1, false); // the model's own MemoryPool
    expect(ref[STEPS - 1]!).toBeLessThan(ref[0]! * 0.9);
    expectClose(await run(2, true), ref);
  });
});
