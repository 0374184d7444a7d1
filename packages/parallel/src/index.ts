/**
 * @mnemo/parallel: value pools sharded over P ranks (docs/design.md §5) behind memory-layer's
 * ValuePool, on a ProcessGroup with two backends (worker threads with shared memory; OpenMPI).
 */
export type { GroupStats, Numeric, ProcessGroup } from './process-group';
export { LocalGroup, type LocalRankResult, type LocalRunOptions, inLocalGroup, localGroup } from './local-group';
export {
  MpiGroup,
  type MpiRunOptions,
  type MpiRunResult,
  mpiAddonPath,
  mpiAvailable,
  mpiGroup,
  mpirunPath,
  underMpirun,
} from './mpi-group';
export { SoloGroup } from './solo-group';
export { RESULT_MARK, groupData, openGroup, reportResult } from './group';
