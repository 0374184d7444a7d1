/**
 * The group this process belongs to, whatever launched it, so one worker file runs under both
 * backends:
 *   LocalGroup.run(P, file)        → openGroup() is the worker's `local` group
 *   mpirun -np P node file         → openGroup() is the rank's `mpi` group (needs the addon)
 *   plain `node file`              → a `local` group of one rank (every collective is a copy)
 * groupData() is the launcher's `data` (LocalGroup.run, or MpiGroup.run via MNEMO_GROUP_DATA);
 * reportResult() hands a value back to the launcher (a message; under MpiGroup.run a file per rank
 * in MNEMO_GROUP_RESULT_DIR; else a marked JSON line on stdout).
 */
import path from 'node:path';
import { writeFileAtomic } from '@mnemo/core';
import { inLocalGroup, localGroup, localGroupData, reportResult as reportLocal } from './local-group';
import { mpiGroup, underMpirun } from './mpi-group';
import type { ProcessGroup } from './process-group';
import { SoloGroup } from './solo-group';

export const RESULT_MARK = '@@mnemo-result ';

let solo: ProcessGroup | null = null;

export function openGroup(opts: { timeoutMs?: number } = {}): ProcessGroup {
  if (inLocalGroup()) return localGroup();
  if (underMpirun()) return mpiGroup(opts);
  solo ??= new SoloGroup(opts.timeoutMs ?? 30_000);
  return solo;
}

export function groupData<T = unknown>(): T {
  if (inLocalGroup()) return localGroupData<T>();
  const raw = process.env.MNEMO_GROUP_DATA;
  return (raw ? JSON.parse(raw) : undefined) as T;
}

export function reportResult(value: unknown): void {
  if (inLocalGroup()) {
    reportLocal(value);
    return;
  }
  const rank = underMpirun() ? Number(process.env.OMPI_COMM_WORLD_RANK ?? 0) : 0;
  const dir = process.env.MNEMO_GROUP_RESULT_DIR;
  if (dir) {
    // a file per rank: mpirun interleaves long stdout lines of different ranks
    writeFileAtomic(path.join(dir, `rank-${rank}.json`), JSON.stringify(value));
    return;
  }
  process.stdout.write(`${RESULT_MARK}${JSON.stringify({ rank, value })}\n`);
}
