/** A ProcessGroup of one rank: every collective returns (a copy of) its input. */
import { ConfigError, ShapeError } from '@mnemo/core';
import { type GroupStats, type Numeric, type ProcessGroup, checkCounts, checkNumeric } from './process-group';

export class SoloGroup implements ProcessGroup {
  readonly backend = 'local' as const;
  readonly rank = 0;
  readonly size = 1;
  private count = 0;
  constructor(readonly timeoutMs: number) {}
  private copy<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    this.count++;
    return x.slice() as T;
  }
  allGather<T extends Numeric>(x: T): T {
    return this.copy(x);
  }
  allGatherV<T extends Numeric>(x: T): { data: T; counts: number[] } {
    return { data: this.copy(x), counts: [x.length] };
  }
  allToAll<T extends Numeric>(x: T): T {
    return this.copy(x);
  }
  allToAllV<T extends Numeric>(x: T, counts: readonly number[]): { data: T; counts: number[] } {
    checkCounts('counts', counts, x.length, 1);
    return { data: this.copy(x), counts: [x.length] };
  }
  reduceScatter(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'reduceScatter sums a Float32Array');
    return this.copy(x);
  }
  allReduce(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'allReduce sums a Float32Array');
    return this.copy(x);
  }
  broadcast<T extends Numeric>(x: T, root: number): T {
    if (root !== 0) throw new ConfigError('root', `must be 0 in a group of one, got ${root}`);
    return this.copy(x);
  }
  barrier(): void {
    this.count++;
  }
  stats(): GroupStats {
    return { collectives: this.count, bytesSent: 0 };
  }
  resetStats(): void {
    this.count = 0;
  }
  close(): void {}
}
