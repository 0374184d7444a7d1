/** One rank of `mnemo-train --memory-parallel P --parallel-backend local` (a worker thread; parallel.ts). */
import { groupData, openGroup, reportResult } from '@mnemo/parallel';
import type { TrainerConfig } from './config';
import type { ParallelFlags } from './parallel';
import { type TrainOptions, runTraining } from './train';

const { cfg, scheme, opts } = groupData<{ cfg: TrainerConfig; scheme: ParallelFlags['scheme']; opts: TrainOptions }>();
const group = openGroup();
// not a top-level await: the CJS build cannot hold one; an error is rethrown so the worker fails (LocalGroup reports it)
runTraining(cfg, { ...opts, parallel: { group, scheme } }).then(
  (summary) => {
    reportResult(group.rank === 0 ? summary : null);
    group.close();
  },
  (e) => {
    group.close();
    setImmediate(() => {
      throw e;
    });
  },
);
