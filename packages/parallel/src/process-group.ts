/**
 * ProcessGroup: P ranks that run the same program (SPMD) and meet in collectives. Two backends
 * implement it with the same semantics: `local` (worker threads of one process, shared memory;
 * local-group.ts) and `mpi` (OpenMPI ranks under `mpirun`, an N-API addon; mpi-group.ts).
 *
 * Every collective is SYNCHRONOUS (the ValueTable contract is: tf.customGrad cannot await) and
 * every rank must call the same collectives in the same order. Each one has a timeout: a rank that
 * does not arrive makes the others throw a BackendError naming the collective (and, on the local
 * backend, the rank that is missing), never hang.
 *
 * Shapes (n = this rank's length, P = size):
 *   allGather(x [n])               → [P·n]       rank q's x at [q·n, (q+1)·n); every n equal
 *   allGatherV(x [n_p])            → data [Σ n_q], counts [P]
 *   allToAll(x [P·m])              → [P·m]       block q of x goes to rank q; block q of the result came from rank q
 *   allToAllV(x, counts [P])       → data, counts [P]   x = the blocks for ranks 0..P−1, in order
 *   reduceScatter(x [P·m] float32) → [m]         Σ_q block p of rank q's x
 *   allReduce(x [n] float32)       → [n]         Σ_q rank q's x, the same on every rank
 *   broadcast(x [n], root)         → [n]         root's x (other ranks pass a buffer of the same length)
 *   barrier()
 * Sums run over ranks in rank order on the local backend (bit-identical on every rank).
 */
import { ShapeError } from '@mnemo/core';

export type Numeric = Float32Array | Int32Array;

export interface GroupStats {
  /** collectives run */
  collectives: number;
  /** payload bytes this rank sent to other ranks (its own block excluded) */
  bytesSent: number;
}

export interface ProcessGroup {
  readonly backend: 'local' | 'mpi';
  readonly rank: number;
  readonly size: number;
  /** milliseconds any collective may wait for a peer */
  readonly timeoutMs: number;
  allGather<T extends Numeric>(x: T): T;
  allGatherV<T extends Numeric>(x: T): { data: T; counts: number[] };
  allToAll<T extends Numeric>(x: T): T;
  allToAllV<T extends Numeric>(x: T, counts: readonly number[]): { data: T; counts: number[] };
  reduceScatter(x: Float32Array): Float32Array;
  allReduce(x: Float32Array): Float32Array;
  broadcast<T extends Numeric>(x: T, root: number): T;
  barrier(): void;
  stats(): GroupStats;
  resetStats(): void;
  /** leave the group (idempotent); later collectives throw */
  close(): void;
}

/** A typed array of the same kind as `like` over `bytes` (copied when unaligned). */
export function viewAs<T extends Numeric>(like: T, bytes: Uint8Array): T {
  const C = like.constructor as { new (b: ArrayBufferLike, o: number, n: number): T; new (n: number): T };
  if (bytes.byteOffset % 4 === 0) return new C(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const out = new C(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

export function bytesOf(x: Numeric): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

export function checkNumeric(field: string, x: unknown): Numeric {
  if (!(x instanceof Float32Array) && !(x instanceof Int32Array)) {
    throw new ShapeError(field, `must be a Float32Array or Int32Array, got ${x === null ? 'null' : typeof x}`);
  }
  return x;
}

/** Check that x.length splits into P equal blocks; returns the block length. */
export function blockLength(field: string, x: Numeric, P: number): number {
  if (x.length % P !== 0) throw new ShapeError(field, `length ${x.length} must be a multiple of the group size ${P}`);
  return x.length / P;
}

export function checkCounts(field: string, counts: readonly number[], total: number, P: number): void {
  if (!Array.isArray(counts) || counts.length !== P) throw new ShapeError(field, `must list ${P} counts, one per rank`);
  let s = 0;
  for (const c of counts) {
    if (!Number.isInteger(c) || c < 0) throw new ShapeError(field, `counts must be integers ≥ 0, got ${c}`);
    s += c;
  }
  if (s !== total) throw new ShapeError(field, `counts sum to ${s} but the array holds ${total} values`);
}

/** Σ over blocks, in order: blocks [P][m] → [m] */
export function sumBlocks(blocks: readonly Float32Array[], m: number): Float32Array {
  const out = new Float32Array(m);
  for (const b of blocks) for (let i = 0; i < m; i++) out[i] = out[i]! + b[i]!;
  return out;
}
