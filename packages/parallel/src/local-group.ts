/**
 * The `local` ProcessGroup backend: P worker threads of one process (one machine; the tests).
 *
 *   const results = await LocalGroup.run(4, new URL('./my-worker.js', import.meta.url), { data }); // local-launch.ts
 *   // in my-worker.js:  const group = localGroup();  …collectives…;  reportResult(value);
 *
 * Shared memory. One control block (Int32Array over a SharedArrayBuffer) holds
 *   [0]                 epoch: bumped (and notified) on every arrival and on a worker's exit
 *   seq[P]              phases each rank has entered (2 per collective)
 *   dead[P]             exit code + 1 of a worker that ended (set by the launcher), 0 while alive
 *   gen[P]              generation of each rank's slab
 *   joined[P]           1 once a rank has built its group (a worker still booting is not late yet)
 *   hdr[P][P][2]        (byte offset, byte length) of the chunk rank s sends to rank d, in s's slab
 * and each rank owns a data slab (a SharedArrayBuffer it writes, its peers read). A collective is
 * one exchange: write my chunks into my slab and their headers, arrive (phase 2c+1), wait until every
 * rank has arrived, copy my chunk out of each peer's slab, arrive (2c+2) and wait again so no slab
 * is overwritten while a peer reads it. Waiting is Atomics.wait on the epoch word with the time left
 * before the deadline; a rank that has not arrived by then is named in a BackendError. The deadline
 * counts from when every rank has joined: a peer still loading its code (seconds on a busy machine)
 * gets STARTUP_MS to join, so a short collective timeout is not eaten by worker start-up. A slab that
 * is too small is replaced by a bigger one, announced to each peer on a MessagePort that the peer
 * reads synchronously (receiveMessageOnPort) when it sees the new generation.
 */
import { type MessagePort, isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { BackendError, ConfigError, ShapeError, UsageError } from '@mnemo/core';
import {
  type GroupStats,
  type Numeric,
  type ProcessGroup,
  blockLength,
  bytesOf,
  checkCounts,
  checkNumeric,
  sumBlocks,
  viewAs,
} from './process-group';

export interface LocalInit {
  __mnemoLocalGroup: true;
  rank: number;
  size: number;
  timeoutMs: number;
  control: SharedArrayBuffer;
  slabs: SharedArrayBuffer[];
  /** ports[q]: to rank q (I announce my new slabs) — null for myself */
  out: (MessagePort | null)[];
  /** ports[q]: from rank q (q announces its new slabs) */
  in: (MessagePort | null)[];
  data: unknown;
}

/** How long a rank waits for a peer worker to load its code and build its group. */
const STARTUP_MS = 120_000;

class LocalProcessGroup implements ProcessGroup {
  readonly backend = 'local' as const;
  readonly rank: number;
  readonly size: number;
  readonly timeoutMs: number;
  private readonly ctl: Int32Array;
  private readonly slabs: SharedArrayBuffer[];
  private readonly gens: number[];
  private phase = 0;
  private count = 0;
  private sent = 0;
  private closed = false;
  private readonly init: LocalInit;
  /** until when a peer that has not joined yet is waited for */
  private readonly joinDeadline: number;

  constructor(init: LocalInit) {
    this.init = init;
    this.rank = init.rank;
    this.size = init.size;
    this.timeoutMs = init.timeoutMs;
    this.ctl = new Int32Array(init.control);
    this.slabs = [...init.slabs];
    this.gens = init.slabs.map(() => 0);
    this.joinDeadline = performance.now() + Math.max(STARTUP_MS, init.timeoutMs);
    Atomics.store(this.ctl, this.joinedAt(this.rank), 1);
    Atomics.add(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
  }

  private seqAt(q: number): number {
    return 1 + q;
  }
  private deadAt(q: number): number {
    return 1 + this.size + q;
  }
  private genAt(q: number): number {
    return 1 + 2 * this.size + q;
  }
  private joinedAt(q: number): number {
    return 1 + 3 * this.size + q;
  }
  private hdrAt(s: number, d: number): number {
    return 1 + 4 * this.size + (s * this.size + d) * 2;
  }

  /** Arrive at phase `target` and wait for every rank to reach it. */
  private meet(target: number, what: string): void {
    const ctl = this.ctl;
    Atomics.store(ctl, this.seqAt(this.rank), target);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    let deadline = performance.now() + this.timeoutMs;
    let joining = true;
    for (;;) {
      const epoch = Atomics.load(ctl, 0);
      const missing: number[] = [];
      for (let q = 0; q < this.size; q++) if (Atomics.load(ctl, this.seqAt(q)) < target) missing.push(q);
      if (missing.length === 0) return;
      for (const q of missing) {
        const dead = Atomics.load(ctl, this.deadAt(q));
        if (dead !== 0) {
          this.closed = true;
          throw new BackendError(`${what}: rank ${q} exited (code ${dead - 1}) before arriving; this rank ${this.rank} stops`);
        }
      }
      if (joining) {
        const late = missing.filter((q) => Atomics.load(ctl, this.joinedAt(q)) === 0);
        if (late.length === 0) {
          // every rank is up: the collective's own timeout runs from now if start-up held us
          joining = false;
          deadline = Math.max(deadline, performance.now() + this.timeoutMs);
        } else if (performance.now() > this.joinDeadline) {
          this.closed = true;
          throw new BackendError(
            `${what} on rank ${this.rank}: rank${late.length > 1 ? 's' : ''} ${late.join(', ')} did not start within ${Math.max(STARTUP_MS, this.timeoutMs)} ms`,
          );
        }
      }
      const left = (joining ? this.joinDeadline : deadline) - performance.now();
      if (left <= 0) {
        this.closed = true;
        throw new BackendError(
          `${what} timed out after ${this.timeoutMs} ms on rank ${this.rank}: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not arrive`,
        );
      }
      Atomics.wait(ctl, 0, epoch, left);
    }
  }

  /**
   * The core of every collective: chunks[d] goes to rank d (null = nothing); `read(s, bytes)` is
   * called for each source rank in rank order with a view of what s sent me (valid only during
   * the call: it points into s's slab). Returns the byte length received from each rank.
   */
  private exchange(name: string, chunks: (Uint8Array | null)[], read: (s: number, bytes: Uint8Array, lengths: number[]) => void): number[] {
    if (this.closed) throw new BackendError(`${name}: the process group of rank ${this.rank} is closed`);
    this.count++;
    const what = `${name} (collective #${this.count})`;
    const P = this.size;
    // lay out distinct chunks in my slab (a chunk sent to several ranks is written once)
    const offsets = new Map<Uint8Array, number>();
    let total = 0;
    for (const c of chunks) {
      if (c && !offsets.has(c)) {
        offsets.set(c, total);
        total += (c.byteLength + 7) & ~7;
      }
    }
    this.ensureSlab(total);
    const mine = new Uint8Array(this.slabs[this.rank]!);
    for (const [c, off] of offsets) mine.set(c, off);
    for (let d = 0; d < P; d++) {
      const c = chunks[d];
      Atomics.store(this.ctl, this.hdrAt(this.rank, d), c ? offsets.get(c)! : 0);
      Atomics.store(this.ctl, this.hdrAt(this.rank, d) + 1, c ? c.byteLength : 0);
      if (c && d !== this.rank) this.sent += c.byteLength;
    }
    this.meet(++this.phase, what);
    const lengths: number[] = [];
    for (let s = 0; s < P; s++) lengths.push(Atomics.load(this.ctl, this.hdrAt(s, this.rank) + 1));
    for (let s = 0; s < P; s++) {
      const off = Atomics.load(this.ctl, this.hdrAt(s, this.rank));
      read(s, new Uint8Array(this.slabOf(s), off, lengths[s]!), lengths);
    }
    this.meet(++this.phase, what);
    return lengths;
  }

  /** Exchange and concatenate what every rank sent me, in rank order, into one new array. */
  private exchangeConcat<T extends Numeric>(name: string, like: T, chunks: (Uint8Array | null)[]): { data: T; counts: number[] } {
    let out: T | null = null;
    let at = 0;
    const lengths = this.exchange(name, chunks, (_s, bytes, lens) => {
      out ??= new (like.constructor as new (n: number) => T)(lens.reduce((a, l) => a + l, 0) / 4);
      new Uint8Array(out.buffer, out.byteOffset + at, bytes.byteLength).set(bytes);
      at += bytes.byteLength;
    });
    return { data: out ?? new (like.constructor as new (n: number) => T)(0), counts: lengths.map((l) => l / 4) };
  }

  /** Exchange and sum the float32 blocks every rank sent me (rank order) into [m]. */
  private exchangeSum(name: string, m: number, chunks: (Uint8Array | null)[]): Float32Array {
    const out = new Float32Array(m);
    let bad = -1;
    const lengths = this.exchange(name, chunks, (s, bytes) => {
      if (bytes.byteLength !== m * 4) {
        bad = s; // thrown after the exchange, so no peer is left waiting
        return;
      }
      const v = new Float32Array(bytes.buffer, bytes.byteOffset, m);
      for (let i = 0; i < m; i++) out[i] = out[i]! + v[i]!;
    });
    if (bad >= 0) throw new ShapeError(name, `rank ${bad} sent ${lengths[bad]! / 4} values, this rank expects ${m}`);
    return out;
  }

  private ensureSlab(bytes: number): void {
    const cur = this.slabs[this.rank]!;
    if (cur.byteLength >= bytes) return;
    const next = new SharedArrayBuffer(Math.max(bytes, cur.byteLength * 2));
    const gen = this.gens[this.rank]! + 1;
    for (const port of this.init.out) port?.postMessage({ gen, slab: next });
    this.slabs[this.rank] = next;
    this.gens[this.rank] = gen;
    Atomics.store(this.ctl, this.genAt(this.rank), gen);
  }

  private slabOf(s: number): SharedArrayBuffer {
    const want = Atomics.load(this.ctl, this.genAt(s));
    while (this.gens[s]! < want) {
      const msg = receiveMessageOnPort(this.init.in[s]!);
      if (!msg) throw new BackendError(`rank ${s} announced slab generation ${want} but sent no slab`);
      const m = msg.message as { gen: number; slab: SharedArrayBuffer };
      this.slabs[s] = m.slab;
      this.gens[s] = m.gen;
    }
    return this.slabs[s]!;
  }

  allGather<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    const { data, counts } = this.exchangeConcat('allGather', x, Array(this.size).fill(bytesOf(x)));
    for (const [q, c] of counts.entries()) {
      if (c !== x.length) throw new ShapeError('allGather', `rank ${q} sent ${c} values, this rank ${x.length}; use allGatherV`);
    }
    return data;
  }

  allGatherV<T extends Numeric>(x: T): { data: T; counts: number[] } {
    checkNumeric('x', x);
    return this.exchangeConcat('allGatherV', x, Array(this.size).fill(bytesOf(x)));
  }

  allToAll<T extends Numeric>(x: T): T {
    checkNumeric('x', x);
    const m = blockLength('allToAll', x, this.size);
    const b = bytesOf(x);
    const { data, counts } = this.exchangeConcat(
      'allToAll',
      x,
      Array.from({ length: this.size }, (_, q) => b.subarray(q * m * 4, (q + 1) * m * 4)),
    );
    for (const [q, c] of counts.entries())
      if (c !== m) throw new ShapeError('allToAll', `rank ${q} sent a block of ${c} values, this rank ${m}`);
    return data;
  }

  allToAllV<T extends Numeric>(x: T, counts: readonly number[]): { data: T; counts: number[] } {
    checkNumeric('x', x);
    checkCounts('counts', counts, x.length, this.size);
    const b = bytesOf(x);
    let off = 0;
    const chunks = counts.map((c) => {
      const s = b.subarray(off * 4, (off + c) * 4);
      off += c;
      return s;
    });
    return this.exchangeConcat('allToAllV', x, chunks);
  }

  reduceScatter(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'reduceScatter sums a Float32Array');
    const m = blockLength('reduceScatter', x, this.size);
    const b = bytesOf(x);
    return this.exchangeSum(
      'reduceScatter',
      m,
      Array.from({ length: this.size }, (_, q) => b.subarray(q * m * 4, (q + 1) * m * 4)),
    );
  }

  allReduce(x: Float32Array): Float32Array {
    if (!(x instanceof Float32Array)) throw new ShapeError('x', 'allReduce sums a Float32Array');
    return this.exchangeSum('allReduce', x.length, Array(this.size).fill(bytesOf(x)));
  }

  broadcast<T extends Numeric>(x: T, root: number): T {
    checkNumeric('x', x);
    if (!Number.isInteger(root) || root < 0 || root >= this.size)
      throw new ConfigError('root', `must be a rank in [0, ${this.size}), got ${root}`);
    const { data } = this.exchangeConcat('broadcast', x, Array(this.size).fill(this.rank === root ? bytesOf(x) : null));
    if (data.length !== x.length) throw new ShapeError('broadcast', `root sent ${data.length} values, this rank expects ${x.length}`);
    return data;
  }

  barrier(): void {
    this.exchange('barrier', Array(this.size).fill(null), () => {});
  }

  stats(): GroupStats {
    return { collectives: this.count, bytesSent: this.sent };
  }

  resetStats(): void {
    this.count = 0;
    this.sent = 0;
  }

  close(): void {
    this.closed = true;
  }
}

/** True inside a worker started by LocalGroup.run. */
export function inLocalGroup(): boolean {
  return !isMainThread && (workerData as LocalInit | null)?.__mnemoLocalGroup === true;
}

let current: LocalProcessGroup | null = null;

/** This worker's ProcessGroup (inside a worker started by LocalGroup.run). */
export function localGroup(): ProcessGroup {
  if (!inLocalGroup()) throw new UsageError('localGroup(): call it inside a worker started by LocalGroup.run');
  current ??= new LocalProcessGroup(workerData as LocalInit);
  return current;
}

/** The `data` LocalGroup.run passed to this worker. */
export function localGroupData<T = unknown>(): T {
  if (!inLocalGroup()) throw new UsageError('localGroupData(): call it inside a worker started by LocalGroup.run');
  return (workerData as LocalInit).data as T;
}

/** Send this worker's result back to LocalGroup.run (structured clone; typed arrays are fine). */
export function reportResult(value: unknown): void {
  parentPort?.postMessage({ __mnemoResult: value });
}
