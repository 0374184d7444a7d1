/**
 * Bench worker (LocalGroup.run or mpirun): for each scheme, time the sharded table's lookup
 * (forward) and training step (forward + backward with the fused Adam update) on this rank's
 * B tokens of uniform ids, count the bytes sent per step, the shard's memory, and the link's
 * bandwidth (a large all-to-all) and latency (barrier). Rank 0 reports; all ranks agree on times
 * through a max all-reduce of each sample (the step is as slow as its slowest rank).
 */
import { mulberry32 } from '@mnemo/core';
import { ShardedPool, groupData, openGroup, reportResult } from '../src/index';

interface Job {
  N: number;
  dv: number;
  B: number;
  K: number;
  reps: number;
}
const { N, dv, B, K, reps } = groupData<Job>();
const group = openGroup();
const P = group.size;
const rand = mulberry32(100 + group.rank);

/** The slowest rank's time of fn, ms. */
function timed(fn: () => void): number {
  group.barrier();
  const t0 = performance.now();
  fn();
  const t = Float32Array.of(performance.now() - t0);
  const all = group.allGather(t);
  return Math.max(...all);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const out: Record<string, unknown> = { P, backend: group.backend };
for (const scheme of ['dim', 'row'] as const) {
  const pool = ShardedPool.create(group, { rows: N, dim: dv, optimizer: { kind: 'adam', lr: 1e-3 }, scheme });
  const t = pool.table;
  const batches = Array.from({ length: 3 }, () => ({
    ids: Int32Array.from({ length: B * K }, () => Math.floor(rand() * N)),
    w: Float32Array.from({ length: B * K }, () => rand()),
    g: Float32Array.from({ length: B * dv }, () => rand() - 0.5),
  }));
  const fwd: number[] = [];
  const step: number[] = [];
  let bytes = 0;
  for (let i = 0; i < reps + 1; i++) {
    const b = batches[i % batches.length]!;
    const f = timed(() => t.forward(b.ids, b.w, K));
    let sent = 0;
    const s = timed(() => {
      group.resetStats();
      t.forward(b.ids, b.w, K);
      t.backward(b.ids, b.w, b.g, K);
      sent = group.stats().bytesSent;
    });
    if (i > 0) {
      fwd.push(f);
      step.push(s);
      bytes += sent;
    }
  }
  const stats = pool.shard.stats();
  out[scheme] = {
    forwardMs: median(fwd),
    stepMs: median(step),
    bytesPerStep: bytes / reps,
    shardBytes: stats.bytes,
    shardValueBytes: stats.valueBytes,
  };
  pool.dispose();
}
// link: one all-to-all of 8 MiB per rank, and barrier latency
const big = new Float32Array(2 ** 21);
const a2a: number[] = [];
const bar: number[] = [];
for (let i = 0; i < 5; i++) {
  a2a.push(timed(() => group.allToAll(big)));
  bar.push(timed(() => group.barrier()));
}
out.link = { bandwidth: P > 1 ? (big.byteLength * (P - 1)) / P / (median(a2a) / 1e3) : null, latencyMs: median(bar) };
if (group.rank === 0) reportResult(out);
else reportResult(null);
group.close();
