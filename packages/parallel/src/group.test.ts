import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LocalGroup, MpiGroup, mpiAvailable, mpirunPath } from './index';

const worker = fileURLToPath(new URL('./test-workers/group-worker.ts', import.meta.url));

interface Collected {
  ag: number[];
  agv: { data: number[]; counts: number[] };
  a2a: number[];
  a2av: { data: number[]; counts: number[] };
  rs: number[];
  ar: number[];
  bc: number[];
  bigOk: boolean;
  stats: { collectives: number; bytesSent: number };
}

/** What rank r of P must get from every collective of group-worker.ts. */
function expected(P: number, r: number): Omit<Collected, 'stats' | 'bigOk'> {
  const ranks = Array.from({ length: P }, (_, q) => q);
  return {
    ag: ranks.flatMap((q) => [q, 10 * q]),
    agv: { data: ranks.flatMap((q) => Array.from({ length: q + 1 }, (_, i) => Math.fround(q + i / 10))), counts: ranks.map((q) => q + 1) },
    a2a: ranks.flatMap((q) => [100 * q + 2 * r, 100 * q + 2 * r + 1]),
    a2av: { data: ranks.flatMap((q) => Array.from({ length: r + 1 }, () => 1000 * q + r)), counts: ranks.map(() => r + 1) },
    rs: [0, 1, 2].map((i) => ranks.reduce((s, q) => s + 3 * r + i + q, 0)),
    ar: [ranks.reduce((s, q) => s + q, 0), P, P / 2],
    bc: [7, 8, 9],
  };
}

function check(P: number, got: (Collected | undefined)[]): void {
  for (let r = 0; r < P; r++) {
    const g = got[r];
    expect(g, `rank ${r} reported`).toBeDefined();
    const { stats, bigOk, ...rest } = g!;
    expect(rest).toEqual(expected(P, r));
    expect(bigOk).toBe(true);
    expect(stats.collectives).toBeGreaterThanOrEqual(9);
  }
}

describe('local backend', () => {
  for (const P of [1, 2, 4]) {
    it(`every collective at P = ${P}`, async () => {
      // bigN · 4 bytes > the 4 KiB initial slab: the slab must grow and be re-announced
      const res = await LocalGroup.run<Collected>(P, worker, {
        data: { mode: 'collectives', bigN: 5000 },
        slabBytes: 4096,
        timeoutMs: 20_000,
      });
      for (const r of res) expect(r.error, String(r.error)).toBeUndefined();
      check(
        P,
        res.map((r) => r.result),
      );
    });
  }

  it('a rank that exits mid-step makes the others throw a BackendError naming it', async () => {
    const t0 = Date.now();
    const res = await LocalGroup.run<{ threw: boolean; name: string; message: string }>(3, worker, {
      data: { mode: 'die' },
      timeoutMs: 10_000,
    });
    expect(res[1]!.exitCode).toBe(3);
    for (const r of [0, 2]) {
      expect(res[r]!.result?.threw).toBe(true);
      expect(res[r]!.result?.name).toBe('BackendError');
      expect(res[r]!.result?.message).toMatch(/allGather \(collective #2\): rank 1 exited \(code 3\)/);
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('a peer still starting up is waited for: the collective timeout counts from when all have joined', async () => {
    const res = await LocalGroup.run<{ sum: number; ms: number }>(2, worker, { data: { mode: 'slow-start' }, timeoutMs: 300 });
    for (const r of res) expect(r.error, String(r.error)).toBeUndefined();
    expect(res.map((r) => r.result?.sum)).toEqual([3, 3]);
    // rank 0 waited through rank 1's 1.5 s start (5x the timeout) without timing out
    expect(res[0]!.result!.ms).toBeGreaterThanOrEqual(1000);
  });

  it('a rank that stalls makes the others time out naming it', async () => {
    const res = await LocalGroup.run<{ threw: boolean; name: string; message: string; ms: number }>(2, worker, {
      data: { mode: 'stall' },
      timeoutMs: 400,
    });
    expect(res[0]!.error, String(res[0]!.error)).toBeUndefined();
    const r0 = res[0]!.result!;
    expect(r0.threw).toBe(true);
    expect(r0.name).toBe('BackendError');
    expect(r0.message).toMatch(/allReduce \(collective #2\) timed out after 400 ms on rank 0: rank 1 did not arrive/);
    expect(r0.ms).toBeGreaterThanOrEqual(390);
    expect(r0.ms).toBeLessThan(5000);
  });
});

const mpi = mpiAvailable();
const mpirun = mpirunPath();
const mpiReason = !mpirun ? 'mpirun not on PATH' : !mpi.available ? mpi.reason : '';
if (mpiReason) console.log(`[parallel] skipping the mpi backend tests: ${mpiReason}`);

describe.skipIf(mpiReason !== '')('mpi backend', () => {
  for (const P of [2, 4]) {
    it(`every collective at P = ${P} under mpirun`, async () => {
      const res = await MpiGroup.run<Collected>(P, worker, { data: { mode: 'collectives', bigN: 5000 }, timeoutMs: 20_000 });
      expect(res.exitCode, res.stderr).toBe(0);
      check(P, res.results);
    });
  }

  it('a rank that stalls makes the others throw at the deadline and the job ends', async () => {
    const res = await MpiGroup.run<{ threw: boolean; name: string; message: string }>(2, worker, {
      data: { mode: 'stall' },
      timeoutMs: 500,
    });
    const r0 = res.results[0];
    expect(r0?.threw, res.stdout + res.stderr).toBe(true);
    expect(r0?.name).toBe('BackendError');
    expect(r0?.message).toMatch(/allReduce \(collective #2\) timed out after 500 ms on MPI rank 0 of 2/);
    expect(res.exitCode).not.toBe(0);
  });

  it('a rank that exits mid-step ends the job with an error, no hang', async () => {
    const res = await MpiGroup.run<{ threw: boolean; name: string; message: string }>(3, worker, {
      data: { mode: 'die' },
      timeoutMs: 2000,
      jobTimeoutMs: 30_000,
    });
    expect(res.timedOut, 'the job hung until runMpi killed it').toBe(false);
    expect(res.exitCode === 0 && res.signal === null).toBe(false); // ended with an error code or by a signal
    expect(res.ms).toBeLessThan(30_000);
    // either a survivor hit its deadline (and says so), or mpirun ended the job first (and says so)
    const survivors = [res.results[0], res.results[2]].filter((r) => r !== undefined);
    for (const r of survivors) expect(r!.message).toMatch(/allGather \(collective #\d+\) timed out after 2000 ms on MPI rank [02] of 3/);
    expect(survivors.length > 0 || /exit|abort|ORTE|terminat/i.test(res.stderr), res.stderr).toBe(true);
  });
});
