/**
 * Why wasm is the default tfjs backend when tfjs-node is absent: matMul 1024 × 1024 × 1024 on
 * the cpu and wasm backends, in one run → docs/benchmarks/backends.{json,md}.
 */
import { BenchReport, measure } from '@mnemo/bench';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendName, initBackend } from '../src/index';

export async function runBackendsBench(quick: boolean): Promise<void> {
  const n = quick ? 256 : 1024;
  const report = new BenchReport('backends', {
    title: 'tfjs backends: matMul throughput',
    description: `tf.matMul of two ${n}×${n} float32 matrices (2·${n}³ FLOP), result downloaded with dataSync(); median time.`,
    command: 'npm run bench -w @mnemo/kernels',
  });
  const results: Record<string, number> = {};
  for (const backend of ['cpu', 'wasm'] as BackendName[]) {
    await initBackend({ backend, log: false });
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    const t = await measure(
      () => {
        const c = tf.matMul(a, b);
        c.dataSync();
        c.dispose();
      },
      { warmup: 1, repeats: backend === 'cpu' ? 3 : 10 },
    );
    results[backend] = t.median;
    report.addRow({ backend, 'median ms': t.median, 'GFLOP/s': (2 * n ** 3) / (t.median / 1e3) / 1e9 });
    tf.dispose([a, b]);
  }
  report.note(
    `wasm is ${(results.cpu! / results.wasm!).toFixed(1)}x the cpu backend here (single-threaded SIMD; Node cannot start its worker threads).`,
  );
  report.write();
}
