/** One rank of `mnemo-train --memory-parallel P --parallel-backend local` (a worker thread; parallel.ts). */
import { groupData, openGroup, reportResult } from '@mnemo/parallel';
import type { TrainerConfig } from './config';
import type { ParallelFlags } from './parallel';
import { type TrainOptions, runTraining } from './train';

const { cfg, scheme, opts } = groupData<{ cfg: TrainerConfig; scheme: ParallelFlags['scheme']; opts: TrainOptions }>();
const group = openGroup();
const summary = await runTraining(cfg, { ...opts, parallel: { group, scheme } });
reportResult(group.rank === 0 ? summary : null);
group.close();
