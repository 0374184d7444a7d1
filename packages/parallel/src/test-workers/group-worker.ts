/**
 * Test worker for the ProcessGroup tests: every collective on rank-dependent data, the results
 * reported back. Runs under LocalGroup.run (data from localGroupData) or mpirun (argv[2] = JSON).
 */
import { workerData } from 'node:worker_threads';
import { openGroup, reportResult, groupData } from './entry';

// 'slow-start': local rank 1 spends 1.5 s before it builds its group (a worker loading big code)
const early = workerData as { rank?: number; timeoutMs?: number; data?: { mode?: string } } | undefined;
if (early?.data?.mode === 'slow-start' && early.rank === 1) {
  const until = Date.now() + 1500;
  while (Date.now() < until) {}
}
const group = await openGroup();
const { mode, bigN } = groupData<{ mode: string; bigN?: number }>();
const P = group.size;
const r = group.rank;
if (mode === 'collectives') {
  const ag = group.allGather(Int32Array.from([r, 10 * r]));
  const agv = group.allGatherV(Float32Array.from({ length: r + 1 }, (_, i) => r + i / 10));
  const a2a = group.allToAll(Int32Array.from({ length: 2 * P }, (_, i) => 100 * r + i)); // block q = [2q, 2q+1]
  // rank r sends q+1 values to rank q
  const counts = Array.from({ length: P }, (_, q) => q + 1);
  const a2av = group.allToAllV(Int32Array.from(counts.flatMap((c, q) => Array.from({ length: c }, () => 1000 * r + q))), counts);
  const rs = group.reduceScatter(Float32Array.from({ length: 3 * P }, (_, i) => i + r));
  const ar = group.allReduce(Float32Array.from([r, 1, 0.5]));
  const bc = group.broadcast(r === P - 1 ? Float32Array.from([7, 8, 9]) : new Float32Array(3), P - 1);
  group.barrier();
  // a payload larger than the initial slab: the slab grows
  const big = group.allGather(Float32Array.from({ length: bigN ?? 1 }, (_, i) => r + i));
  const bigOk = big.every((v, i) => v === Math.floor(i / (bigN ?? 1)) + (i % (bigN ?? 1)));
  reportResult({
    ag: [...ag],
    agv: { data: [...agv.data], counts: agv.counts },
    a2a: [...a2a],
    a2av: { data: [...a2av.data], counts: a2av.counts },
    rs: [...rs],
    ar: [...ar],
    bc: [...bc],
    bigOk,
    stats: group.stats(),
  });
} else if (mode === 'die') {
  // rank 1 leaves in the middle of the second collective; the others must throw
  group.barrier();
  if (r === 1) process.exit(3);
  try {
    group.allGather(Int32Array.from([r]));
    reportResult({ threw: false });
  } catch (e) {
    reportResult({ threw: true, name: (e as Error).constructor.name, message: (e as Error).message });
  }
} else if (mode === 'slow-start') {
  const t0 = Date.now();
  const sum = group.allReduce(Float32Array.from([r + 1]));
  reportResult({ sum: sum[0], ms: Date.now() - t0 });
} else if (mode === 'stall') {
  // rank 1 never arrives (busy elsewhere); the others must time out naming it
  group.barrier();
  if (r === 1) {
    const until = Date.now() + 3 * group.timeoutMs;
    while (Date.now() < until) {}
    reportResult({ stalled: true });
  } else {
    const t0 = Date.now();
    try {
      group.allReduce(Float32Array.from([r]));
      reportResult({ threw: false });
    } catch (e) {
      reportResult({ threw: true, name: (e as Error).constructor.name, message: (e as Error).message, ms: Date.now() - t0 });
    }
  }
}
group.close();
