/**
 * @mnemo/parallel: value pools sharded over P ranks (docs/design.md §5) behind memory-layer's
 * ValuePool, on a ProcessGroup with two backends (worker threads with shared memory; OpenMPI).
 */
export type { GroupStats, Numeric, ProcessGroup } from './process-group';
export { inLocalGroup, localGroup } from './local-group';
export { LocalGroup, type LocalRankResult, type LocalRunOptions } from './local-launch';
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
export { DimShardedTable, type ShardedTableOptions, checkDimOptimizer } from './dim-sharded';
export { RowShardedTable, checkRowOptimizer, localRows } from './row-sharded';
export { ShardedPool, type ShardedPoolOptions } from './sharded-pool';
export { type PoolManifest, type ShardScheme, isShardedPool, manifestFile, readPoolManifest, shardFile } from './manifest';
export { type CostInput, type CostReport, type LinkFigures, type SchemeCost, costModel, memoryPerRank, stepTime } from './cost-model';
export { allReduceGradients, allReduceScalar } from './data-parallel';
export { type ReshardResult, reshardPool } from './reshard';
export { POOL_FILE, checkpointShards, reshardCheckpoint } from './reshard-checkpoint';
export { PoolService, type PoolServiceOptions } from './pool-service';
